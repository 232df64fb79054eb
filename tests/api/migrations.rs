//! Upgrading a populated PostgreSQL database: this release's migrations run on a database of
//! the previous release's schema holding a million events, with no statement or lock limit
//! cutting them short, while a second instance starting at the same moment waits its turn.

use std::borrow::Cow;
use std::sync::Arc;

use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::helpers::{Data, spawn_app_on};
use crate::test_database::TestDatabase;

/// Events in the populated database.
const EVENTS: u32 = 1_000_000;
/// Rooms they are spread over.
const ROOMS: u32 = 100;

/// The previous release's schema (its one migration), filled: rooms, events with resent
/// TALKs among them (ids repeated, which this release's unique index must first clear) and
/// members whose ENTERs are somewhere in their rooms' history.
async fn previous_release_with_a_million_events(url: &str) {
    let all = sqlx::migrate!("./migrations/postgres");
    let previous = Migrator {
        migrations: Cow::Owned(all.migrations[..1].to_vec()),
        ..all
    };
    let mut connection = PgConnection::connect(url).await.expect("connects");
    previous
        .run(&mut connection)
        .await
        .expect("the previous schema");
    let fill = format!(
        "INSERT INTO rooms (room_id, name, created_at, last_seq) \
           SELECT md5('room' || r)::uuid, 'room ' || r, r, {per_room} FROM generate_series(1, {ROOMS}) AS r;
         INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at) \
           SELECT md5('room' || (n % {ROOMS} + 1))::uuid, n / {ROOMS} + 1, gen_random_uuid(), \
                  CASE WHEN n % 1000 < 10 THEN 'ENTER' ELSE 'TALK' END, \
                  'user-' || (n % 37), 'message ' || n, \
                  CASE WHEN n % 3 = 0 THEN 'c-' || (n / 3700 % 50) END, n \
           FROM generate_series(0, {last}) AS n;
         INSERT INTO members (instance_id, session_id, room_id, sender) \
           SELECT gen_random_uuid(), m, md5('room' || (m % {ROOMS} + 1))::uuid, 'user-' || (m % 37) \
           FROM generate_series(1, 300) AS m;",
        per_room = EVENTS / ROOMS,
        last = EVENTS - 1,
    );
    sqlx::raw_sql(AssertSqlSafe(fill))
        .execute(&mut connection)
        .await
        .expect("a million events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_events_upgrade_while_a_second_instance_starts_at_once() {
    let database = TestDatabase::create().await;
    previous_release_with_a_million_events(&database.url).await;
    let data = Arc::new(Data::Database(database));

    let (first, second) = tokio::join!(
        spawn_app_on(data.clone(), |_| {}),
        spawn_app_on(data.clone(), |_| {})
    );
    for app in [&first, &second] {
        assert_eq!(app.get("/readyz").await.status(), 200);
    }
    let room = first
        .get("/api/rooms?limit=1")
        .await
        .json::<serde_json::Value>()
        .await
        .expect("rooms");
    let room_id = room["items"][0]["roomId"]
        .as_str()
        .expect("a room")
        .to_owned();
    let history = second.history(&room_id, "").await;
    assert_eq!(history.len(), 50);
    assert_eq!(
        history.last().expect("events")["seq"],
        u64::from(EVENTS / ROOMS)
    );

    let mut alice = first.connect().await;
    alice.join(&room_id, "alice").await;
    let mut bob = second.connect().await;
    bob.join(&room_id, "bob").await;
    alice
        .talk_with_id(&room_id, "alice", "after the upgrade", "c-0")
        .await;
    let said = loop {
        let event = alice.next_json().await;
        if event["clientMsgId"] == "c-0" {
            break event;
        }
    };
    assert_eq!(said["seq"], u64::from(EVENTS / ROOMS) + 3);
}
