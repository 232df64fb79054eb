//! Every write of one instance, on its writer's own connection. Several instances write at
//! once, so a batch locks the rows of the rooms it touches in one fixed order (sorted ids)
//! before it takes their seqs: two instances committing batches that touch the same rooms wait
//! for each other, never deadlock. Every statement has a fixed shape (arrays through `UNNEST`,
//! never a `VALUES` list as long as the batch), so the prepared-statement cache holds a handful
//! of statements, whatever the batch sizes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use sqlx::{Acquire, PgConnection, Row};
use uuid::Uuid;

use super::{parse_seq, room_from_row};
use crate::domain::{Event, InstanceId, NewEvent, RoomId, RoomName, Seq, Timestamp};
use crate::store::{
    Batches, MemberKey, Pending, Refused, RoomRecord, StoreError, StoreWriter, append_batch,
    departures, entering_rows, exhausted, leaving_rows, refuse_non_members, stored_events,
};

/// The advisory lock rooms are created under, so each is stamped no earlier than the one
/// before it, whichever instance creates them.
const ROOM_CREATION_LOCK: i64 = 0x6368_6174_726f_6f6d;

pub struct PgWriter {
    pool: PgPool,
    instance: Uuid,
}

impl PgWriter {
    pub(super) fn new(pool: PgPool, instance: InstanceId) -> Self {
        Self {
            pool,
            instance: instance.uuid(),
        }
    }
}

#[async_trait]
impl Batches for PgWriter {
    /// The fast path: the whole batch in one transaction.
    async fn together(
        &self,
        batch: &mut [Pending],
    ) -> Result<Vec<Result<(), Refused>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let outcomes = store_batch(&mut tx, self.instance, batch).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    /// The slow path, after the fast one failed: each event under a savepoint of its own, so an
    /// event the database refuses is rolled back alone and the others still commit together.
    async fn one_by_one(
        &self,
        batch: &mut [Pending],
    ) -> Result<Vec<Result<(), Refused>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for pending in batch.chunks_mut(1) {
            let mut savepoint = (&mut tx).begin().await?;
            let outcome = match store_batch(&mut savepoint, self.instance, pending).await {
                Ok(mut one) => one.pop().unwrap_or(Err(Refused::RoomGone)),
                Err(error) if refuses_the_event(&error) => {
                    let room_id = pending[0].event.room_id;
                    tracing::warn!(%error, %room_id, "the database refused an event");
                    Err(Refused::Rejected)
                }
                Err(error) => return Err(error),
            };
            match outcome {
                Ok(()) => savepoint.commit().await?,
                Err(_) => savepoint.rollback().await?,
            }
            outcomes.push(outcome);
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// Whether the database refused this one event (an integrity constraint, class 23, or a
/// trigger's exception, P0001), rather than failed.
fn refuses_the_event(error: &StoreError) -> bool {
    let StoreError::Database(sqlx::Error::Database(error)) = error else {
        return false;
    };
    error
        .code()
        .is_some_and(|code| code.starts_with("23") || code == "P0001")
}

/// Locks the batch's rooms in sorted order, gives each event its room's next seq, and stores
/// the events with the memberships they change; an event whose room is gone is refused, and so
/// is the LEAVE of a session that is no member.
async fn store_batch(
    conn: &mut PgConnection,
    instance: Uuid,
    batch: &mut [Pending],
) -> Result<Vec<Result<(), Refused>>, StoreError> {
    let mut rooms: Vec<Uuid> = batch.iter().map(|p| p.event.room_id.uuid()).collect();
    rooms.sort_unstable();
    rooms.dedup();
    let locked = sqlx::query(
        "SELECT room_id, last_seq FROM rooms WHERE room_id = ANY($1) ORDER BY room_id FOR UPDATE",
    )
    .bind(&rooms)
    .fetch_all(&mut *conn)
    .await?;
    let mut last: HashMap<Uuid, Seq> = HashMap::with_capacity(locked.len());
    for row in &locked {
        last.insert(
            row.try_get("room_id")?,
            parse_seq(row.try_get("last_seq")?)?,
        );
    }
    let present = end_memberships(conn, instance, &leaving_rows(batch)).await?;
    let mut outcomes = refuse_non_members(batch, &present);
    for (pending, outcome) in batch.iter_mut().zip(outcomes.iter_mut()) {
        let event = &mut pending.event;
        if outcome.is_err() {
            continue;
        }
        let Some(seq) = last.get_mut(&event.room_id.uuid()) else {
            *outcome = Err(Refused::RoomGone);
            continue;
        };
        *seq = seq.next().ok_or_else(|| exhausted(event.room_id))?;
        event.seq = *seq;
    }
    let (ids, seqs): (Vec<Uuid>, Vec<i64>) = last.iter().map(|(id, seq)| (*id, seq.get())).unzip();
    sqlx::query(
        "UPDATE rooms SET last_seq = taken.last_seq \
         FROM UNNEST($1::uuid[], $2::bigint[]) AS taken (room_id, last_seq) \
         WHERE rooms.room_id = taken.room_id",
    )
    .bind(ids)
    .bind(seqs)
    .execute(&mut *conn)
    .await?;
    let stored: Vec<&Pending> = batch
        .iter()
        .zip(&outcomes)
        .filter_map(|(pending, outcome)| outcome.is_ok().then_some(pending))
        .collect();
    insert_events(conn, &stored).await?;
    add_memberships(conn, instance, &entering_rows(batch, &outcomes)).await?;
    Ok(outcomes)
}

async fn insert_events(conn: &mut PgConnection, stored: &[&Pending]) -> Result<(), StoreError> {
    let events = stored.iter().map(|pending| &pending.event);
    sqlx::query(
        "INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], \
                              $6::text[], $7::text[], $8::bigint[])",
    )
    .bind(events.clone().map(|e| e.room_id.uuid()).collect::<Vec<_>>())
    .bind(events.clone().map(|e| e.seq.get()).collect::<Vec<_>>())
    .bind(events.clone().map(|e| e.message_id).collect::<Vec<_>>())
    .bind(events.clone().map(|e| e.kind.as_str()).collect::<Vec<_>>())
    .bind(events.clone().map(|e| e.sender.as_str()).collect::<Vec<_>>())
    .bind(events.clone().map(|e| e.message.as_str()).collect::<Vec<_>>())
    .bind(events.clone().map(|e| e.client_msg_id.as_deref()).collect::<Vec<_>>())
    .bind(events.map(|e| e.sent_at.millis()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ends the given memberships, returning those that were stored (the others' LEAVEs are
/// refused).
async fn end_memberships(
    conn: &mut PgConnection,
    instance: Uuid,
    leaving: &[MemberKey],
) -> Result<HashSet<MemberKey>, StoreError> {
    if leaving.is_empty() {
        return Ok(HashSet::new());
    }
    let rows = sqlx::query(
        "DELETE FROM members USING UNNEST($2::bigint[], $3::uuid[]) AS gone (session_id, room_id) \
         WHERE members.instance_id = $1 AND members.session_id = gone.session_id \
           AND members.room_id = gone.room_id \
         RETURNING members.session_id, members.room_id",
    )
    .bind(instance)
    .bind(
        leaving
            .iter()
            .map(|(session, _)| *session)
            .collect::<Vec<_>>(),
    )
    .bind(
        leaving
            .iter()
            .map(|(_, room)| room.uuid())
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let room_id = RoomId::from_uuid(row.try_get("room_id")?);
            Ok((row.try_get("session_id")?, room_id))
        })
        .collect()
}

/// Stores the memberships the batch's ENTERs begin.
async fn add_memberships(
    conn: &mut PgConnection,
    instance: Uuid,
    entering: &[(MemberKey, &str)],
) -> Result<(), StoreError> {
    if entering.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO members (instance_id, session_id, room_id, sender) \
         SELECT $1, * FROM UNNEST($2::bigint[], $3::uuid[], $4::text[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(instance)
    .bind(
        entering
            .iter()
            .map(|((session, _), _)| *session)
            .collect::<Vec<_>>(),
    )
    .bind(
        entering
            .iter()
            .map(|((_, room), _)| room.uuid())
            .collect::<Vec<_>>(),
    )
    .bind(
        entering
            .iter()
            .map(|(_, sender)| *sender)
            .collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

#[async_trait]
impl StoreWriter for PgWriter {
    async fn create_room(
        &mut self,
        name: &RoomName,
        now: Timestamp,
    ) -> Result<RoomRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ROOM_CREATION_LOCK)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(
            "INSERT INTO rooms (room_id, name, created_at) VALUES ($1, $2, \
             GREATEST($3, COALESCE((SELECT created_at FROM rooms ORDER BY position DESC LIMIT 1), $3))) \
             RETURNING room_id, name, created_at, last_seq, position",
        )
        .bind(RoomId::random().uuid())
        .bind(name.as_str())
        .bind(now.millis())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        room_from_row(&row)
    }

    async fn append(
        &mut self,
        batch: Vec<NewEvent>,
    ) -> Result<Vec<Result<Event, Refused>>, StoreError> {
        append_batch(self, batch).await
    }

    async fn delete_room(&mut self, room_id: RoomId) -> Result<Option<Seq>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let last: Option<i64> =
            sqlx::query_scalar("DELETE FROM rooms WHERE room_id = $1 RETURNING last_seq")
                .bind(room_id.uuid())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(last) = last else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM members WHERE room_id = $1")
            .bind(room_id.uuid())
            .execute(&mut *tx)
            .await?;
        if last > 0 {
            sqlx::query("INSERT INTO room_purges (room_id, last_seq) VALUES ($1, $2)")
                .bind(room_id.uuid())
                .bind(last)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        parse_seq(last).map(Some)
    }

    async fn purge_step(&mut self, limit: u32) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Another instance may be purging too: each takes a deleted room nobody else holds.
        let pending = sqlx::query(
            "SELECT room_id, last_seq, purged_through FROM room_purges LIMIT 1 \
             FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(pending) = pending else {
            return Ok(false);
        };
        let room_id: Uuid = pending.try_get("room_id")?;
        let last = parse_seq(pending.try_get("last_seq")?)?;
        let upto = parse_seq(pending.try_get("purged_through")?)?
            .saturating_add(limit)
            .min(last);
        sqlx::query("DELETE FROM events WHERE room_id = $1 AND seq <= $2")
            .bind(room_id)
            .bind(upto.get())
            .execute(&mut *tx)
            .await?;
        let progress = if upto == last {
            sqlx::query("DELETE FROM room_purges WHERE room_id = $1").bind(room_id)
        } else {
            sqlx::query("UPDATE room_purges SET purged_through = $2 WHERE room_id = $1")
                .bind(room_id)
                .bind(upto.get())
        };
        progress.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn register(&mut self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (instance_id, heartbeat_at) VALUES ($1, clock_timestamp()) \
             ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = clock_timestamp()",
        )
        .bind(self.instance)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn heartbeat(&mut self) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE instances SET heartbeat_at = clock_timestamp() WHERE instance_id = $1",
        )
        .bind(self.instance)
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn dead_instances(&mut self, silence: Duration) -> Result<Vec<InstanceId>, StoreError> {
        let dead: Vec<Uuid> = sqlx::query_scalar(
            "SELECT instance_id FROM instances WHERE instance_id <> $1 \
             AND heartbeat_at < clock_timestamp() - make_interval(secs => $2)",
        )
        .bind(self.instance)
        .bind(seconds(silence))
        .fetch_all(&self.pool)
        .await?;
        Ok(dead.into_iter().map(InstanceId::from_uuid).collect())
    }

    async fn reap(
        &mut self,
        instance: InstanceId,
        silence: Option<Duration>,
    ) -> Result<Vec<Event>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let forgotten = sqlx::query(
            "DELETE FROM instances WHERE instance_id = $1 \
             AND ($2::float8 IS NULL OR heartbeat_at < clock_timestamp() - make_interval(secs => $2))",
        )
        .bind(instance.uuid())
        .bind(silence.map(seconds))
        .execute(&mut *tx)
        .await?;
        if forgotten.rows_affected() == 0 && silence.is_some() {
            return Ok(Vec::new());
        }
        let members = sqlx::query(
            "DELETE FROM members WHERE instance_id = $1 RETURNING room_id, session_id, sender",
        )
        .bind(instance.uuid())
        .fetch_all(&mut *tx)
        .await?;
        let mut gone = Vec::with_capacity(members.len());
        for row in &members {
            let room_id = RoomId::from_uuid(row.try_get("room_id")?);
            gone.push((room_id, row.try_get("session_id")?, row.try_get("sender")?));
        }
        let mut leaves = departures(gone)?;
        let outcomes = store_batch(&mut tx, self.instance, &mut leaves).await?;
        tx.commit().await?;
        let stored = stored_events(leaves, outcomes);
        Ok(stored.into_iter().filter_map(Result::ok).collect())
    }
}
