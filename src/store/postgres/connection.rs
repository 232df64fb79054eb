//! The writer's own connection: opened when first needed (and again after it was dropped),
//! and what it does outside a batch: creating rooms, setting their retention, pings.

use async_trait::async_trait;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use super::writer::PgTx;
use super::{CONNECT_TIMEOUT, room_from_row};
use crate::domain::{Moderation, NewRoom, Retention, RoomId, Timestamp};
use crate::store::rules::RulesTx;
use crate::store::{RoomRecord, StoreError, WriteConnection, WriteTx};

/// The advisory lock rooms are created under, so each is stamped no earlier than the one
/// before it, whichever instance creates them.
const ROOM_CREATION_LOCK: i64 = 0x6368_6174_726f_6f6d;

pub struct PgWriteConnection {
    options: PgConnectOptions,
    connection: Option<PgConnection>,
}

impl PgWriteConnection {
    pub(super) fn new(options: PgConnectOptions) -> Self {
        Self {
            options,
            connection: None,
        }
    }

    async fn connection(&mut self) -> Result<&mut PgConnection, StoreError> {
        if self.connection.is_none() {
            let connecting = PgConnection::connect_with(&self.options);
            let connection = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                .await
                .map_err(|_| StoreError::TimedOut(CONNECT_TIMEOUT))??;
            self.connection = Some(connection);
        }
        self.connection
            .as_mut()
            .ok_or(StoreError::TimedOut(CONNECT_TIMEOUT))
    }

    async fn transaction(&mut self) -> Result<PgTx<'_>, StoreError> {
        let conn = self.connection().await?;
        sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
        Ok(PgTx { conn })
    }
}

#[async_trait]
impl WriteConnection for PgWriteConnection {
    async fn begin(&mut self) -> Result<Box<dyn WriteTx + '_>, StoreError> {
        Ok(Box::new(self.transaction().await?))
    }

    fn discard(&mut self) {
        self.connection = None;
    }

    async fn create_room(
        &mut self,
        room: &NewRoom,
        now: Timestamp,
    ) -> Result<RoomRecord, StoreError> {
        let mut tx = self.transaction().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ROOM_CREATION_LOCK)
            .execute(&mut *tx.conn)
            .await?;
        let row = sqlx::query(
            concat!("INSERT INTO rooms (room_id, name, created_at, visibility) VALUES ($1, $2, \
             GREATEST($3, COALESCE((SELECT created_at FROM rooms ORDER BY position DESC LIMIT 1), $3)), \
             $4) RETURNING ", room_columns!()),
        )
        .bind(RoomId::random().uuid())
        .bind(room.name.as_str())
        .bind(now.millis())
        .bind(room.visibility.as_str())
        .fetch_one(&mut *tx.conn)
        .await?;
        let record = room_from_row(&row)?;
        if let Some(owner) = &room.owner {
            let grant = Moderation::owner(owner);
            tx.moderate(record.room_id, &grant, record.created_at)
                .await?;
        }
        Box::new(tx).commit().await?;
        Ok(record)
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        self.connection().await?.ping().await?;
        Ok(())
    }

    async fn set_retention(
        &mut self,
        room_id: RoomId,
        retention: Retention,
    ) -> Result<Option<RoomRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE rooms SET retention_max_age = $1, retention_max_events = $2 \
             WHERE room_id = $3 RETURNING ",
            room_columns!()
        ))
        .bind(retention.max_age_seconds.map(limit))
        .bind(retention.max_events.map(limit))
        .bind(room_id.uuid())
        .fetch_optional(self.connection().await?)
        .await?;
        row.as_ref().map(room_from_row).transpose()
    }
}

/// A retention limit as stored (SQL has no unsigned 64-bit integer; limits fit in 63 bits).
fn limit(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
