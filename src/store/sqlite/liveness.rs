//! This process's heartbeat in the SQLite file, and the earlier runs of it that went silent.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use uuid::Uuid;

use super::writer::silent_since;
use crate::domain::{InstanceId, Timestamp};
use crate::store::{Liveness, StoreError};

/// This process's record in the file, on the reading pool: the file has one process at a
/// time, whose earlier runs are reaped at start.
pub(super) struct SqliteLiveness {
    pub(super) pool: SqlitePool,
    pub(super) instance: String,
}

#[async_trait]
impl Liveness for SqliteLiveness {
    async fn register(&self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (instance_id, heartbeat_at) VALUES (?1, ?2) \
             ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = ?2",
        )
        .bind(&self.instance)
        .bind(Timestamp::now().millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn heartbeat(&self) -> Result<bool, StoreError> {
        let renewed = sqlx::query("UPDATE instances SET heartbeat_at = ? WHERE instance_id = ?")
            .bind(Timestamp::now().millis())
            .bind(&self.instance)
            .execute(&self.pool)
            .await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn dead_instances(&self, silence: Duration) -> Result<Vec<InstanceId>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT instance_id FROM instances WHERE instance_id != ?1 AND heartbeat_at < ?2 \
             UNION SELECT DISTINCT instance_id FROM members AS m WHERE instance_id != ?1 \
             AND NOT EXISTS (SELECT 1 FROM instances AS i WHERE i.instance_id = m.instance_id)",
        )
        .bind(&self.instance)
        .bind(silent_since(silence))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|raw| {
                Uuid::try_parse(raw)
                    .map(InstanceId::from_uuid)
                    .map_err(|_| StoreError::Corrupt(format!("instance id {raw:?}")))
            })
            .collect()
    }
}
