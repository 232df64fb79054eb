//! Webhooks in PostgreSQL, shared by every instance: leases run on the database's clock, so
//! instances whose clocks differ still agree on whose a webhook is.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::domain::{InstanceId, RoomId, Timestamp, WebhookId};
use crate::store::webhooks::{filter_columns, read_filter, read_position};
use crate::store::{RoomPosition, StoreError, WebhookRecord, WebhookStore};

/// A room's newest seq: a deleted room's last, while its events are still stored.
macro_rules! last_seqs {
    () => {
        "(SELECT room_id, last_seq FROM rooms UNION ALL SELECT room_id, last_seq FROM room_purges)"
    };
}

pub(super) struct PgWebhooks {
    pub(super) pool: PgPool,
}

fn webhook_from_row(row: &PgRow) -> Result<WebhookRecord, StoreError> {
    let id: Uuid = row.try_get("webhook_id")?;
    Ok(WebhookRecord {
        webhook_id: WebhookId::parse(&id.to_string())
            .map_err(|_| StoreError::Corrupt(format!("webhook id {id}")))?,
        url: row.try_get("url")?,
        filter: read_filter(row.try_get("rooms")?, row.try_get("types")?)?,
        sealed_secret: row.try_get("sealed_secret")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
    })
}

fn position_from_row(row: &PgRow) -> Result<RoomPosition, StoreError> {
    read_position(
        RoomId::from_uuid(row.try_get("room_id")?),
        (row.try_get("delivered")?, row.try_get("last_seq")?),
        row.try_get("last_error")?,
        row.try_get("failing_since")?,
    )
}

#[async_trait]
impl WebhookStore for PgWebhooks {
    async fn create_webhook(&self, webhook: &WebhookRecord) -> Result<(), StoreError> {
        let (rooms, types) = filter_columns(&webhook.filter);
        let id = webhook.webhook_id.uuid();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO webhooks (webhook_id, url, rooms, types, sealed_secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(&webhook.url)
        .bind(&rooms)
        .bind(types)
        .bind(&webhook.sealed_secret)
        .bind(webhook.created_at.millis())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO webhook_positions (webhook_id, room_id, delivered_seq) \
             SELECT $1, room_id, last_seq FROM rooms WHERE $2::text IS NULL \
             OR room_id::text IN (SELECT jsonb_array_elements_text($2::jsonb))",
        )
        .bind(id)
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
        let row = sqlx::query("SELECT * FROM webhooks WHERE webhook_id = $1")
            .bind(id.uuid())
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
             WHERE p.webhook_id = $1 ORDER BY p.room_id::text"
        ))
        .bind(id.uuid())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(position_from_row).collect()
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM webhooks WHERE webhook_id = $1")
            .bind(id.uuid())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn claim(
        &self,
        id: WebhookId,
        instance: InstanceId,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let claimed = sqlx::query(
            "UPDATE webhooks SET lease_instance = $2, \
             lease_until = clock_timestamp() + make_interval(secs => $3) WHERE webhook_id = $1 \
             AND (lease_instance = $2 OR lease_instance IS NULL OR lease_until < clock_timestamp())",
        )
        .bind(id.uuid())
        .bind(instance.uuid())
        .bind(lease.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    async fn release(&self, id: WebhookId, instance: InstanceId) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhooks SET lease_instance = NULL WHERE webhook_id = $1 AND lease_instance = $2",
        )
        .bind(id.uuid())
        .bind(instance.uuid())
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
             ON w.rooms IS NULL \
             OR r.room_id::text IN (SELECT jsonb_array_elements_text(w.rooms::jsonb)) \
             LEFT JOIN webhook_positions AS p \
             ON p.webhook_id = w.webhook_id AND p.room_id = r.room_id \
             WHERE w.webhook_id = $1 AND r.last_seq > COALESCE(p.delivered_seq, 0)"
        ))
        .bind(id.uuid())
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
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM webhooks WHERE webhook_id = $1) \
             ON CONFLICT (webhook_id, room_id) DO UPDATE SET last_error = excluded.last_error, \
             failing_since = COALESCE(webhook_positions.failing_since, excluded.failing_since)",
        )
        .bind(id.uuid())
        .bind(position.room_id.uuid())
        .bind(position.delivered_seq.get())
        .bind(&position.last_error)
        .bind(at.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
