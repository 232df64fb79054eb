//! The SQL of every write, on the writer's own connection: rooms created and deleted, the
//! steps of a batch (their order is the batch logic's), and deleted rooms' events purged a
//! chunk at a time. `BEGIN IMMEDIATE` takes SQLite's one write lock when a transaction starts
//! (sent with its first statement), so locking a batch's rooms is only reading their newest
//! seqs. A batch is three calls to SQLite's thread: BEGIN with the rooms' seqs and the resends
//! looked up, the rooms' new seqs with the events, and COMMIT.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::{Either, Executor, QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::ROWS_PER_STATEMENT;
use super::batch::{
    json_memberships, json_positions, json_room_seqs, json_rooms, push_find_resent,
    push_insert_events, push_raise_read_marker,
};
use super::rows::{event_from_row, in_list, parse_room_id};
use crate::domain::{Event, InstanceId, ReadMarker, RoomId, Seq, Timestamp};
use crate::store::{Delivered, Entered, Membership, ResendKey, StoreError, WriteTx, parse_seq};

/// Read markers raised per call: each is a statement of its own, and the prepared statements
/// of a call's text are kept (one text per count), so their number stays small.
const MARKERS_PER_CALL: usize = 64;
/// SQLite's primary result code for a violated constraint (including a trigger's RAISE).
const SQLITE_CONSTRAINT: i32 = 19;

/// A transaction on the writer's connection, holding SQLite's write lock once begun.
pub(super) struct SqliteTx<'c> {
    conn: &'c mut SqliteConnection,
    /// Whether `BEGIN IMMEDIATE` was sent. It goes with the transaction's first statement, as
    /// one call: each call is a round trip to SQLite's thread, waking it and then this one.
    begun: bool,
}

impl<'c> SqliteTx<'c> {
    pub(super) fn new(conn: &'c mut SqliteConnection) -> Self {
        Self { conn, begun: false }
    }

    /// The connection, inside the transaction: begun first if it was not.
    pub(super) async fn conn(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        if !self.begun {
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut *self.conn)
                .await?;
            self.begun = true;
        }
        Ok(&mut *self.conn)
    }

    /// What the next statement starts with: the transaction's `BEGIN IMMEDIATE` if it was not
    /// sent, counted as sent (should the call fail, the connection is discarded).
    fn begin_with_next(&mut self) -> &'static str {
        match std::mem::replace(&mut self.begun, true) {
            true => "",
            false => "BEGIN IMMEDIATE; ",
        }
    }
}

pub(super) fn membership_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Membership, StoreError> {
    let instance: &str = row.try_get("instance_id")?;
    Ok(Membership {
        room_id: parse_room_id(row.try_get("room_id")?)?,
        instance: Uuid::try_parse(instance)
            .map(InstanceId::from_uuid)
            .map_err(|_| StoreError::Corrupt(format!("instance id {instance:?}")))?,
        session: row.try_get("session_id")?,
    })
}

/// The cut-off for "silent for `silence`", in epoch milliseconds.
pub(super) fn silent_since(silence: Duration) -> i64 {
    let silence = i64::try_from(silence.as_millis()).unwrap_or(i64::MAX);
    Timestamp::now().millis().saturating_sub(silence)
}

#[async_trait]
impl WriteTx for SqliteTx<'_> {
    async fn control(&mut self, statement: &'static str) -> Result<(), StoreError> {
        sqlx::raw_sql(statement).execute(self.conn().await?).await?;
        Ok(())
    }

    /// A transaction never begun has nothing to commit.
    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        match self.begun {
            true => self.control("COMMIT").await,
            false => Ok(()),
        }
    }

    async fn rollback(mut self: Box<Self>) -> Result<(), StoreError> {
        match self.begun {
            true => self.control("ROLLBACK").await,
            false => Ok(()),
        }
    }

    async fn lock_rooms(&mut self, rooms: &[RoomId]) -> Result<HashMap<RoomId, Seq>, StoreError> {
        Ok(self.lock_rooms_finding_resent(rooms, &[]).await?.0)
    }

    /// One call: the transaction's BEGIN if it was not sent, the rooms' newest seqs, then the
    /// resent events, told apart by the statement they come after.
    async fn lock_rooms_finding_resent(
        &mut self,
        rooms: &[RoomId],
        keys: &[ResendKey<'_>],
    ) -> Result<(HashMap<RoomId, Seq>, Vec<Event>), StoreError> {
        let begin = self.begin_with_next();
        let mut query = QueryBuilder::<Sqlite>::new(begin);
        query.push(
            "SELECT room_id, last_seq FROM rooms \
             WHERE room_id IN (SELECT value FROM json_each(",
        );
        query.push_bind(json_rooms(rooms)).push("))");
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            query.push("; ");
            push_find_resent(&mut query, chunk);
        }
        let rooms_statement = usize::from(!begin.is_empty());
        let mut finished = 0;
        let mut last = HashMap::with_capacity(rooms.len());
        let mut resent = Vec::new();
        let mut results = self.conn.fetch_many(query.build());
        while let Some(result) = results.try_next().await? {
            match result {
                Either::Left(_) => finished += 1,
                Either::Right(row) if finished == rooms_statement => {
                    let room_id = parse_room_id(row.try_get(0)?)?;
                    last.insert(room_id, parse_seq(row.try_get(1)?)?);
                }
                Either::Right(row) => resent.push(event_from_row(&row)?),
            }
        }
        Ok((last, resent))
    }

    /// One call: the rooms' newest seqs, then the events.
    async fn store_events(
        &mut self,
        last_seqs: &[(RoomId, Seq)],
        events: &[&Event],
    ) -> Result<(), StoreError> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "UPDATE rooms SET last_seq = taken.value ->> 1 FROM json_each(",
        );
        query
            .push_bind(json_room_seqs(last_seqs))
            .push(") AS taken WHERE rooms.room_id = taken.value ->> 0");
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            query.push("; ");
            push_insert_events(&mut query, chunk);
        }
        self.conn().await?.execute(query.build()).await?;
        Ok(())
    }

    /// One statement for all of them, so a storm of LEAVEs (a restart's sessions ending) is
    /// one call to SQLite's thread, not one per member.
    async fn end_memberships(
        &mut self,
        members: &[Membership],
    ) -> Result<HashSet<Membership>, StoreError> {
        if members.is_empty() {
            return Ok(HashSet::new());
        }
        let rows = sqlx::query(
            "DELETE FROM members WHERE (instance_id, session_id, room_id) IN \
             (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)) \
             RETURNING instance_id, session_id, room_id",
        )
        .bind(json_memberships(members))
        .fetch_all(self.conn().await?)
        .await?;
        rows.iter().map(membership_from_row).collect()
    }

    async fn add_memberships(&mut self, members: &[Entered<'_>]) -> Result<(), StoreError> {
        for chunk in members.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO members \
                 (instance_id, session_id, room_id, sender, entered_at, bot) ",
            );
            insert.push_values(chunk, |mut row, entered| {
                row.push_bind(entered.member.instance.to_string())
                    .push_bind(entered.member.session)
                    .push_bind(entered.member.room_id.to_string())
                    .push_bind(entered.sender.to_owned())
                    .push_bind(entered.at.millis())
                    .push_bind(entered.bot);
            });
            insert.build().execute(self.conn().await?).await?;
        }
        Ok(())
    }

    /// A statement per marker (each may rise or not, and one sender may read twice in a
    /// batch), all in one call: each marker's answer is what its statement returned.
    async fn raise_read_markers(
        &mut self,
        markers: &[ReadMarker],
    ) -> Result<Vec<Option<Seq>>, StoreError> {
        let mut risen = Vec::with_capacity(markers.len());
        for chunk in markers.chunks(MARKERS_PER_CALL) {
            let mut query = QueryBuilder::<Sqlite>::new("");
            for marker in chunk {
                push_raise_read_marker(&mut query, marker);
            }
            let mut answers = vec![None; chunk.len()];
            let mut finished = 0;
            let mut results = self.conn().await?.fetch_many(query.build());
            while let Some(result) = results.try_next().await? {
                match (result, answers.get_mut(finished)) {
                    (Either::Left(_), _) => finished += 1,
                    (Either::Right(row), Some(answer)) => {
                        *answer = Some(parse_seq(row.try_get(0)?)?);
                    }
                    (Either::Right(_), None) => {
                        return Err(StoreError::Corrupt("a read marker's extra row".into()));
                    }
                }
            }
            risen.extend(answers);
        }
        Ok(risen)
    }

    /// One statement for every position, which go as JSON to `json_each` (ids are UUIDs).
    async fn store_positions(&mut self, positions: &[Delivered]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhook_positions (webhook_id, room_id, delivered_seq) \
             SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?1) \
             WHERE EXISTS (SELECT 1 FROM webhooks WHERE webhook_id = value ->> 0) \
             ON CONFLICT (webhook_id, room_id) DO UPDATE SET \
             delivered_seq = MAX(delivered_seq, excluded.delivered_seq), \
             last_error = NULL, failing_since = NULL",
        )
        .bind(json_positions(positions))
        .execute(self.conn().await?)
        .await?;
        Ok(())
    }

    async fn stored_ids(&mut self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StoreError> {
        let mut found = HashSet::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut query =
                QueryBuilder::<Sqlite>::new("SELECT message_id FROM events WHERE message_id IN ");
            let listed = chunk.iter().map(Uuid::to_string);
            for row in in_list(&mut query, listed, "")
                .fetch_all(self.conn().await?)
                .await?
            {
                let id: &str = row.try_get(0)?;
                found.extend(Uuid::try_parse(id).ok());
            }
        }
        Ok(found)
    }

    /// A violated constraint, including a trigger's RAISE.
    fn refuses_the_event(&self, error: &StoreError) -> bool {
        let StoreError::Database(sqlx::Error::Database(error)) = error else {
            return false;
        };
        let code = error.code().and_then(|code| code.parse::<i32>().ok());
        code.is_some_and(|code| code & 0xff == SQLITE_CONSTRAINT)
    }
}
