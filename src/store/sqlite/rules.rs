//! The SQL of the rooms' rules on SQLite: reads on the pool, and the steps of a write
//! transaction, each one call to SQLite's thread whatever the batch holds (a call is a round
//! trip inside the write lock).

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::ROWS_PER_STATEMENT;
use super::SqliteStore;
use super::batch::json_rooms;
use super::rows::{in_rooms, parse_room_id, room_from_row};
use super::writer::SqliteTx;
use crate::domain::{Moderation, Role, RoomId, Timestamp, Visibility};
use crate::store::rules::{
    Admission, ModerationSql, RoleRecord, Rules, RulesTx, SanctionKind, SanctionRecord,
    admission_columns, moderation_query, read_admission, read_role, read_role_record,
    read_sanction,
};
use crate::store::{RoomRecord, StoreError};

const ROLES: &str = "SELECT name, role, granted_by, granted_at FROM room_roles WHERE room_id = ? \
     ORDER BY CASE role WHEN 'owner' THEN 0 WHEN 'moderator' THEN 1 ELSE 2 END, name";
const BANS: &str = "SELECT name, until, reason, banned_by AS by_name, banned_at AS at \
     FROM room_bans WHERE room_id = ? AND (until IS NULL OR until > ?) ORDER BY name";
const MUTES: &str = "SELECT name, until, NULL AS reason, muted_by AS by_name, muted_at AS at \
     FROM room_mutes WHERE room_id = ? AND (until IS NULL OR until > ?) ORDER BY name";

/// The statements of each MODERATION event's change.
const MODERATION: ModerationSql = ModerationSql {
    grant: "INSERT INTO room_roles (room_id, name, role, granted_by, granted_at) \
            VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id, name) DO UPDATE \
            SET role = excluded.role, granted_by = excluded.granted_by, \
                granted_at = excluded.granted_at",
    ban: "INSERT INTO room_bans (room_id, name, until, reason, banned_by, banned_at) \
          VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (room_id, name) DO UPDATE \
          SET until = excluded.until, reason = excluded.reason, \
              banned_by = excluded.banned_by, banned_at = excluded.banned_at",
    mute: "INSERT INTO room_mutes (room_id, name, until, muted_by, muted_at) \
           VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id, name) DO UPDATE \
           SET until = excluded.until, muted_by = excluded.muted_by, muted_at = excluded.muted_at",
    revoke: "DELETE FROM room_roles WHERE room_id = ? AND name = ?",
    unban: "DELETE FROM room_bans WHERE room_id = ? AND name = ?",
    unmute: "DELETE FROM room_mutes WHERE room_id = ? AND name = ?",
};

#[async_trait]
impl Rules for SqliteStore {
    async fn admission(
        &self,
        room_id: RoomId,
        name: &str,
    ) -> Result<Option<(RoomRecord, Admission)>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            room_columns!(),
            ", ",
            admission_columns!("?2"),
            " FROM rooms WHERE room_id = ?1"
        ))
        .bind(room_id.to_string())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((room_from_row(&row)?, read_admission(&row)?)))
            .transpose()
    }

    async fn roles_in(
        &self,
        rooms: &[RoomId],
        name: &str,
    ) -> Result<HashMap<RoomId, Role>, StoreError> {
        let mut query =
            QueryBuilder::<Sqlite>::new("SELECT room_id, role FROM room_roles WHERE name = ");
        query.push_bind(name).push(" AND room_id IN ");
        let rows = in_rooms(&mut query, rooms, "")
            .fetch_all(&self.pool)
            .await?;
        let mut roles = HashMap::with_capacity(rows.len());
        for row in rows {
            if let Some(role) = read_role(row.try_get("role")?)? {
                roles.insert(parse_room_id(row.try_get("room_id")?)?, role);
            }
        }
        Ok(roles)
    }

    async fn visible_rooms(
        &self,
        before: Option<i64>,
        limit: u32,
        viewer: Option<&str>,
    ) -> Result<Vec<RoomRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            room_columns!(),
            " FROM rooms WHERE position < ?1 AND (visibility = 'public' OR ?3 IS NULL \
               OR EXISTS (SELECT 1 FROM room_roles AS g \
                          WHERE g.room_id = rooms.room_id AND g.name = ?3)) \
             ORDER BY position DESC LIMIT ?2"
        ))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .bind(viewer)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(room_from_row).collect()
    }

    async fn roles(&self, room_id: RoomId) -> Result<Vec<RoleRecord>, StoreError> {
        let rows = sqlx::query(ROLES)
            .bind(room_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(read_role_record).collect()
    }

    async fn sanctions(
        &self,
        room_id: RoomId,
        kind: SanctionKind,
        now: Timestamp,
    ) -> Result<Vec<SanctionRecord>, StoreError> {
        let query = match kind {
            SanctionKind::Ban => BANS,
            SanctionKind::Mute => MUTES,
        };
        let rows = sqlx::query(query)
            .bind(room_id.to_string())
            .bind(now.millis())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(read_sanction).collect()
    }
}

#[async_trait]
impl RulesTx for SqliteTx<'_> {
    async fn room_rules(
        &mut self,
        rooms: &[RoomId],
    ) -> Result<HashMap<RoomId, (Visibility, u32)>, StoreError> {
        let rows = sqlx::query(
            "SELECT room_id, visibility, (SELECT COUNT(*) FROM room_roles AS g \
               WHERE g.room_id = rooms.room_id AND g.role = 'owner') AS owners \
             FROM rooms WHERE room_id IN (SELECT value FROM json_each(?))",
        )
        .bind(json_rooms(rooms))
        .fetch_all(self.conn().await?)
        .await?;
        let mut rules = HashMap::with_capacity(rows.len());
        for row in rows {
            let visibility: &str = row.try_get("visibility")?;
            let visibility = Visibility::parse(visibility)
                .ok_or_else(|| StoreError::Corrupt(format!("visibility {visibility:?}")))?;
            let owners: i64 = row.try_get("owners")?;
            let room_id = parse_room_id(row.try_get("room_id")?)?;
            rules.insert(room_id, (visibility, u32::try_from(owners).unwrap_or(0)));
        }
        Ok(rules)
    }

    /// Names are the clients', so they are bound, joined to their rooms by key.
    async fn admissions(
        &mut self,
        keys: &[(RoomId, String)],
    ) -> Result<HashMap<(RoomId, String), Admission>, StoreError> {
        let mut found = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(concat!(
                "SELECT rooms.room_id, asked.column2 AS name, ",
                admission_columns!("asked.column2"),
                " FROM ("
            ));
            query.push_values(chunk, |mut row, (room_id, name)| {
                row.push_bind(room_id.to_string()).push_bind(name.clone());
            });
            query.push(") AS asked JOIN rooms ON rooms.room_id = asked.column1");
            for row in query.build().fetch_all(self.conn().await?).await? {
                let room_id = parse_room_id(row.try_get("room_id")?)?;
                found.insert((room_id, row.try_get("name")?), read_admission(&row)?);
            }
        }
        Ok(found)
    }

    async fn moderate(
        &mut self,
        room_id: RoomId,
        moderation: &Moderation,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        if let Some(query) = moderation_query(&MODERATION, room_id.to_string(), moderation, at) {
            query.execute(self.conn().await?).await?;
        }
        Ok(())
    }
}
