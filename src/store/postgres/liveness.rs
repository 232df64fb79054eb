//! This instance's heartbeat in PostgreSQL, and the instances that went silent.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::InstanceId;
use crate::store::{Liveness, StoreError};

/// This instance's heartbeat, on a pool of one connection of its own.
pub(super) struct PgLiveness {
    pub(super) pool: PgPool,
    pub(super) instance: Uuid,
}

#[async_trait]
impl Liveness for PgLiveness {
    async fn register(&self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (instance_id, heartbeat_at) VALUES ($1, clock_timestamp()) \
             ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = clock_timestamp()",
        )
        .bind(self.instance)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn heartbeat(&self) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE instances SET heartbeat_at = clock_timestamp() WHERE instance_id = $1",
        )
        .bind(self.instance)
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn dead_instances(&self, silence: Duration) -> Result<Vec<InstanceId>, StoreError> {
        let dead: Vec<Uuid> = sqlx::query_scalar(
            "SELECT instance_id FROM instances WHERE instance_id <> $1 \
             AND heartbeat_at < clock_timestamp() - make_interval(secs => $2) \
             UNION SELECT DISTINCT instance_id FROM members AS m WHERE instance_id <> $1 \
             AND NOT EXISTS (SELECT 1 FROM instances AS i WHERE i.instance_id = m.instance_id)",
        )
        .bind(self.instance)
        .bind(silence.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        Ok(dead.into_iter().map(InstanceId::from_uuid).collect())
    }
}
