//! Webhooks in the SQLite file, which one process owns: its lease is only a record of which
//! run delivers.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use super::rows::parse_room_id;
use crate::domain::{InstanceId, Timestamp, WebhookId};
use crate::store::webhooks::{filter_columns, read_filter, read_position};
use crate::store::{RoomPosition, StoreError, WebhookRecord, WebhookStore};

/// A room's newest seq: a deleted room's last, while its events are still stored.
macro_rules! last_seqs {
    () => {
        "(SELECT room_id, last_seq FROM rooms UNION ALL SELECT room_id, last_seq FROM room_purges)"
    };
}

pub(super) struct SqliteWebhooks {
    pub(super) pool: SqlitePool,
}

fn webhook_from_row(row: &SqliteRow) -> Result<WebhookRecord, StoreError> {
    let id: &str = row.try_get("webhook_id")?;
    Ok(WebhookRecord {
        webhook_id: WebhookId::parse(id)
            .map_err(|_| StoreError::Corrupt(format!("webhook id {id:?}")))?,
        url: row.try_get("url")?,
        filter: read_filter(row.try_get("rooms")?, row.try_get("types")?)?,
        sealed_secret: row.try_get("sealed_secret")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
    })
}

fn position_from_row(row: &SqliteRow) -> Result<RoomPosition, StoreError> {
    read_position(
        parse_room_id(row.try_get("room_id")?)?,
        (row.try_get("delivered")?, row.try_get("last_seq")?),
        row.try_get("last_error")?,
        row.try_get("failing_since")?,
    )
}

#[async_trait]
impl WebhookStore for SqliteWebhooks {
    async fn create_webhook(&self, webhook: &WebhookRecord) -> Result<(), StoreError> {
        let (rooms, types) = filter_columns(&webhook.filter);
        let id = webhook.webhook_id.to_string();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO webhooks (webhook_id, url, rooms, types, sealed_secret, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&webhook.url)
        .bind(&rooms)
        .bind(types)
        .bind(&webhook.sealed_secret)
        .bind(webhook.created_at.millis())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO webhook_positions (webhook_id, room_id, delivered_seq) \
             SELECT ?1, room_id, last_seq FROM rooms \
             WHERE ?2 IS NULL OR room_id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&id)
        .bind(&rooms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM webhooks ORDER BY created_at, webhook_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(webhook_from_row).collect()
    }

    async fn webhook(&self, id: WebhookId) -> Result<Option<WebhookRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM webhooks WHERE webhook_id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(webhook_from_row).transpose()
    }

    async fn positions(&self, id: WebhookId) -> Result<Vec<RoomPosition>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT p.room_id, p.delivered_seq AS delivered, \
             COALESCE(r.last_seq, p.delivered_seq) AS last_seq, p.last_error, p.failing_since \
             FROM webhook_positions AS p LEFT JOIN ",
            last_seqs!(),
            " AS r ON r.room_id = p.room_id \
             WHERE p.webhook_id = ? ORDER BY p.room_id"
        ))
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(position_from_row).collect()
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM webhook_positions WHERE webhook_id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE webhook_id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() == 1)
    }

    /// Always taken: one process owns the file, so a lease left in it was left by an earlier
    /// run of this one (killed before it could give it up), and delivery resumes at once.
    async fn claim(
        &self,
        id: WebhookId,
        instance: InstanceId,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let until = Timestamp::now()
            .millis()
            .saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let claimed = sqlx::query(
            "UPDATE webhooks SET lease_instance = ?, lease_until = ? WHERE webhook_id = ?",
        )
        .bind(instance.to_string())
        .bind(until)
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    async fn release(&self, id: WebhookId, instance: InstanceId) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhooks SET lease_instance = NULL WHERE webhook_id = ? AND lease_instance = ?",
        )
        .bind(id.to_string())
        .bind(instance.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn behind(&self, id: WebhookId) -> Result<Vec<RoomPosition>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT r.room_id, COALESCE(p.delivered_seq, 0) AS delivered, r.last_seq, \
             p.last_error, p.failing_since FROM webhooks AS w JOIN ",
            last_seqs!(),
            " AS r \
             ON w.rooms IS NULL OR r.room_id IN (SELECT value FROM json_each(w.rooms)) \
             LEFT JOIN webhook_positions AS p \
             ON p.webhook_id = w.webhook_id AND p.room_id = r.room_id \
             WHERE w.webhook_id = ? AND r.last_seq > COALESCE(p.delivered_seq, 0)"
        ))
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(position_from_row).collect()
    }

    async fn failed(
        &self,
        position: &RoomPosition,
        id: WebhookId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhook_positions \
             (webhook_id, room_id, delivered_seq, last_error, failing_since) \
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM webhooks WHERE webhook_id = ?1) \
             ON CONFLICT (webhook_id, room_id) DO UPDATE SET last_error = excluded.last_error, \
             failing_since = COALESCE(failing_since, excluded.failing_since)",
        )
        .bind(id.to_string())
        .bind(position.room_id.to_string())
        .bind(position.delivered_seq.get())
        .bind(&position.last_error)
        .bind(at.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
