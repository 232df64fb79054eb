//! The writer's own connection: opened when first needed (and again after it was dropped),
//! and what it does outside a batch: creating rooms, setting their retention, pings.

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

use super::rows::room_from_row;
use super::writer::SqliteTx;
use crate::domain::{Moderation, NewRoom, Retention, RoomId, Timestamp};
use crate::store::rules::RulesTx;
use crate::store::{RoomRecord, StoreError, WriteConnection, WriteTx};

pub struct SqliteWriteConnection {
    options: SqliteConnectOptions,
    connection: Option<SqliteConnection>,
}

impl SqliteWriteConnection {
    pub(super) fn new(options: SqliteConnectOptions, connection: SqliteConnection) -> Self {
        Self {
            options,
            connection: Some(connection),
        }
    }

    async fn connection(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        if self.connection.is_none() {
            self.connection = Some(SqliteConnection::connect_with(&self.options).await?);
        }
        self.connection
            .as_mut()
            .ok_or_else(|| StoreError::Corrupt("no write connection".into()))
    }

    async fn transaction(&mut self) -> Result<SqliteTx<'_>, StoreError> {
        Ok(SqliteTx::new(self.connection().await?))
    }
}

#[async_trait]
impl WriteConnection for SqliteWriteConnection {
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
        let row = sqlx::query(concat!(
            "INSERT INTO rooms (room_id, name, created_at, visibility) VALUES (?1, ?2, \
             MAX(?3, COALESCE((SELECT created_at FROM rooms ORDER BY position DESC LIMIT 1), ?3)), \
             ?4) RETURNING ",
            room_columns!()
        ))
        .bind(RoomId::random().to_string())
        .bind(room.name.as_str())
        .bind(now.millis())
        .bind(room.visibility.as_str())
        .fetch_one(tx.conn().await?)
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
            "UPDATE rooms SET retention_max_age = ?, retention_max_events = ? WHERE room_id = ? \
             RETURNING ",
            room_columns!()
        ))
        .bind(retention.max_age_seconds.map(limit))
        .bind(retention.max_events.map(limit))
        .bind(room_id.to_string())
        .fetch_optional(self.connection().await?)
        .await?;
        row.as_ref().map(room_from_row).transpose()
    }
}

/// A retention limit as stored (SQL has no unsigned 64-bit integer; limits fit in 63 bits).
fn limit(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
