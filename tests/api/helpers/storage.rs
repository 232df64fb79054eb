//! Storage reached from beside the server: SQL on a side connection, events refused by a
//! trigger, the writer's lock held, rooms filled straight through storage.

use super::*;

/// A connection to the server's storage beside the server's own, for tests that reach under
/// the service.
pub enum Side {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Side {
    /// Runs SQL, one statement or several.
    pub async fn execute(&mut self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_owned());
        let done = match self {
            Side::Sqlite(conn) => sqlx::raw_sql(sql).execute(conn).await.map(drop),
            Side::Postgres(conn) => sqlx::raw_sql(sql).execute(conn).await.map(drop),
        };
        done.expect("side statement");
    }

    async fn count(&mut self, sql: String) -> i64 {
        let sql = AssertSqlSafe(sql);
        match self {
            Side::Sqlite(conn) => sqlx::query_scalar(sql).fetch_one(conn).await,
            Side::Postgres(conn) => sqlx::query_scalar(sql).fetch_one(conn).await,
        }
        .expect("a count")
    }
}

impl TestApp {
    pub async fn side(&self) -> Side {
        let url = self.data.url();
        match BACKEND {
            Backend::Sqlite => Side::Sqlite(SqliteConnection::connect(&url).await.expect("side")),
            Backend::Postgres => Side::Postgres(PgConnection::connect(&url).await.expect("side")),
        }
    }

    /// Runs SQL on a side connection.
    pub async fn sql(&self, statement: &str) {
        self.side().await.execute(statement).await;
    }

    /// Makes storage refuse every event that matches `condition` (SQL over `NEW`), as a failing
    /// disk or a violated constraint would, until [`TestApp::accept_events`].
    pub async fn refuse_events(&self, condition: &str) {
        self.sql(&match BACKEND {
            Backend::Sqlite => format!(
                "CREATE TRIGGER refuse_events BEFORE INSERT ON events WHEN {condition} \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            ),
            Backend::Postgres => format!(
                "CREATE FUNCTION refuse_events() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF {condition} THEN RAISE EXCEPTION 'refused by the test'; END IF; \
                 RETURN NEW; END $$; \
                 CREATE TRIGGER refuse_events BEFORE INSERT ON events \
                 FOR EACH ROW EXECUTE FUNCTION refuse_events();"
            ),
        })
        .await;
    }

    pub async fn accept_events(&self) {
        self.sql(match BACKEND {
            Backend::Sqlite => "DROP TRIGGER refuse_events",
            Backend::Postgres => {
                "DROP TRIGGER refuse_events ON events; DROP FUNCTION refuse_events()"
            }
        })
        .await;
    }

    /// Holds what the server's writer needs to store anything (SQLite's write lock, or the
    /// rooms table of PostgreSQL) on a side connection, so the writer waits for it and whatever
    /// clients send meanwhile queues up behind it.
    pub async fn hold_write_lock(&self) -> WriteLock {
        let mut side = self.side().await;
        side.execute(match BACKEND {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN; LOCK TABLE rooms IN EXCLUSIVE MODE",
        })
        .await;
        WriteLock { side }
    }

    /// Stores `count` TALKs in a room straight through storage (setup only).
    pub async fn fill_room(&self, room_id: &str, count: u64) {
        self.sql(&match BACKEND {
            Backend::Sqlite => format!(
                "WITH RECURSIVE n(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM n WHERE seq < {count}) \
                 INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at) \
                 SELECT '{room_id}', seq, lower(hex(randomblob(16))), 'TALK', 'filler', 'x', NULL, 0 FROM n"
            ),
            Backend::Postgres => format!(
                "INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at) \
                 SELECT '{room_id}', seq, gen_random_uuid(), 'TALK', 'filler', 'x', NULL, 0 \
                 FROM generate_series(1, {count}) AS seq"
            ),
        })
        .await;
        self.sql(&format!(
            "UPDATE rooms SET last_seq = {count} WHERE room_id = '{room_id}'"
        ))
        .await;
    }

    /// How many of a room's stored events hold `text` in their message: after a delete, none
    /// of its TALK's may.
    pub async fn rows_holding(&self, room_id: &str, text: &str) -> i64 {
        let sql = format!(
            "SELECT COUNT(*) FROM events WHERE room_id = '{room_id}' AND message LIKE '%{text}%'"
        );
        self.side().await.count(sql).await
    }

    /// How many events storage holds for a room, deleted or not.
    pub async fn stored_events(&self, room_id: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM events WHERE room_id = '{room_id}'");
        self.side().await.count(sql).await
    }
}

/// What the writer needs, held on a side connection until released.
pub struct WriteLock {
    side: Side,
}

impl WriteLock {
    pub async fn release(mut self) {
        self.side.execute("COMMIT").await;
    }
}
