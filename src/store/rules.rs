//! Each room's rules as stored (identity mode): who holds which role, who is banned or muted.
//! [`Rules`] reads them on the pool; [`RulesTx`] reads and changes them inside a write
//! transaction, where every change is made with the MODERATION event that records it.

use std::collections::HashMap;

use async_trait::async_trait;

use super::{RoomRecord, StoreError};
use crate::domain::{Action, Moderation, Role, RoomId, Sanction, Timestamp, Visibility};

/// One name's place in a room as stored: its role, and its ban and mute (expired or not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Admission {
    pub role: Option<Role>,
    pub ban: Option<Sanction>,
    pub mute: Option<Sanction>,
}

impl Admission {
    pub fn banned_at(&self, now: Timestamp) -> bool {
        self.ban.is_some_and(|ban| ban.in_force(now))
    }

    pub fn muted_at(&self, now: Timestamp) -> bool {
        self.mute.is_some_and(|mute| mute.in_force(now))
    }
}

/// A role held in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRecord {
    pub name: String,
    pub role: Role,
    pub granted_by: String,
    pub granted_at: Timestamp,
}

/// A ban or a mute in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SanctionRecord {
    pub name: String,
    pub until: Option<Timestamp>,
    /// A ban's reason (mutes have none).
    pub reason: Option<String>,
    pub by: String,
    pub at: Timestamp,
}

/// Which sanctions a list reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanctionKind {
    Ban,
    Mute,
}

/// Reads of the rooms' rules, on the pool.
#[async_trait]
pub trait Rules: Send + Sync + 'static {
    /// A room, and `name`'s place in it, read in one statement; None when there is no room.
    async fn admission(
        &self,
        room_id: RoomId,
        name: &str,
    ) -> Result<Option<(RoomRecord, Admission)>, StoreError>;

    /// The role `name` holds in each of these rooms (rooms where it holds none are left out).
    async fn roles_in(
        &self,
        rooms: &[RoomId],
        name: &str,
    ) -> Result<HashMap<RoomId, Role>, StoreError>;

    /// Up to `limit` rooms created before `before`, newest first, that `viewer` may see:
    /// public ones and private ones where it holds a role (None: every room).
    async fn visible_rooms(
        &self,
        before: Option<i64>,
        limit: u32,
        viewer: Option<&str>,
    ) -> Result<Vec<RoomRecord>, StoreError>;

    /// A room's roles, owners first, then by name.
    async fn roles(&self, room_id: RoomId) -> Result<Vec<RoleRecord>, StoreError>;

    /// A room's bans or mutes in force at `now`, by name.
    async fn sanctions(
        &self,
        room_id: RoomId,
        kind: SanctionKind,
        now: Timestamp,
    ) -> Result<Vec<SanctionRecord>, StoreError>;
}

/// The rules' steps inside a write transaction.
#[async_trait]
pub(crate) trait RulesTx: Send {
    /// Each of these rooms' visibility and how many owners it has.
    async fn room_rules(
        &mut self,
        rooms: &[RoomId],
    ) -> Result<HashMap<RoomId, (Visibility, u32)>, StoreError>;

    /// Each of these names' place in its room (names with none are left out).
    async fn admissions(
        &mut self,
        keys: &[(RoomId, String)],
    ) -> Result<HashMap<(RoomId, String), Admission>, StoreError>;

    /// Makes the change a MODERATION event records, stamped `at`: a role granted or revoked,
    /// a ban or mute set or lifted (a kick changes nothing stored).
    async fn moderate(
        &mut self,
        room_id: RoomId,
        moderation: &Moderation,
        at: Timestamp,
    ) -> Result<(), StoreError>;
}

/// A name's place in a room from a row with the columns `role`, `banned`, `ban_until`,
/// `muted` and `mute_until`, the same on either backend.
pub(crate) fn read_admission<'r, R>(row: &'r R) -> Result<Admission, StoreError>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<&'r str>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let sanction = |flag, until| -> Result<Option<Sanction>, StoreError> {
        let until: Option<i64> = row.try_get(until)?;
        Ok(row.try_get::<bool, _>(flag)?.then(|| Sanction {
            until: until.map(Timestamp::from_millis),
        }))
    };
    Ok(Admission {
        role: read_role(row.try_get("role")?)?,
        ban: sanction("banned", "ban_until")?,
        mute: sanction("muted", "mute_until")?,
    })
}

/// A role as a row spells it.
pub(crate) fn read_role(raw: Option<&str>) -> Result<Option<Role>, StoreError> {
    raw.map(|raw| Role::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("role {raw:?}"))))
        .transpose()
}

/// A ban or mute from a row with `name`, `until`, `reason`, `by_name` and `at`.
pub(crate) fn read_sanction<'r, R>(row: &'r R) -> Result<SanctionRecord, StoreError>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(SanctionRecord {
        name: row.try_get("name")?,
        until: row
            .try_get::<Option<i64>, _>("until")?
            .map(Timestamp::from_millis),
        reason: row.try_get("reason")?,
        by: row.try_get("by_name")?,
        at: Timestamp::from_millis(row.try_get("at")?),
    })
}

/// A role from a row with `name`, `role`, `granted_by` and `granted_at`.
pub(crate) fn read_role_record<'r, R>(row: &'r R) -> Result<RoleRecord, StoreError>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<&'r str>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(RoleRecord {
        name: row.try_get("name")?,
        role: read_role(row.try_get("role")?)?
            .ok_or_else(|| StoreError::Corrupt("role".to_owned()))?,
        granted_by: row.try_get("granted_by")?,
        granted_at: Timestamp::from_millis(row.try_get("granted_at")?),
    })
}

/// The columns [`read_admission`] reads, for the room in `rooms` and the name bound as
/// `name` (a placeholder, spelled as the backend spells it).
macro_rules! admission_columns {
    ($name:literal) => {
        concat!(
            "(SELECT role FROM room_roles AS g WHERE g.room_id = rooms.room_id AND g.name = ",
            $name,
            ") AS role, \
             EXISTS (SELECT 1 FROM room_bans AS b WHERE b.room_id = rooms.room_id AND b.name = ",
            $name,
            ") AS banned, \
             (SELECT until FROM room_bans AS b WHERE b.room_id = rooms.room_id AND b.name = ",
            $name,
            ") AS ban_until, \
             EXISTS (SELECT 1 FROM room_mutes AS m WHERE m.room_id = rooms.room_id AND m.name = ",
            $name,
            ") AS muted, \
             (SELECT until FROM room_mutes AS m WHERE m.room_id = rooms.room_id AND m.name = ",
            $name,
            ") AS mute_until"
        )
    };
}
pub(crate) use admission_columns;

/// Each backend's spelling of the statements [`moderation_query`] binds.
pub(crate) struct ModerationSql {
    /// (room, name, role, by, at)
    pub grant: &'static str,
    /// (room, name, until, reason, by, at)
    pub ban: &'static str,
    /// (room, name, until, by, at)
    pub mute: &'static str,
    /// (room, name), each
    pub revoke: &'static str,
    pub unban: &'static str,
    pub unmute: &'static str,
}

/// The statement that makes the change a MODERATION event records, stamped `at`, its values
/// bound in the order both backends' statements take them; None for a kick, which changes
/// nothing stored.
pub(crate) fn moderation_query<'a, DB, R>(
    sql: &ModerationSql,
    room_id: R,
    moderation: &Moderation,
    at: Timestamp,
) -> Option<sqlx::query::Query<'a, DB, <DB as sqlx::Database>::Arguments>>
where
    DB: sqlx::Database,
    R: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    String: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    Option<String>: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    Option<i64>: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    i64: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let named = |statement: &'static str| {
        sqlx::query(statement)
            .bind(room_id)
            .bind(moderation.target.clone())
    };
    let until = moderation.until.map(Timestamp::millis);
    let query = match moderation.action {
        Action::Grant => {
            named(sql.grant).bind(moderation.role.map(|role| role.as_str().to_owned()))
        }
        Action::Ban => named(sql.ban).bind(until).bind(moderation.reason.clone()),
        Action::Mute => named(sql.mute).bind(until),
        Action::Revoke => return Some(named(sql.revoke)),
        Action::Unban => return Some(named(sql.unban)),
        Action::Unmute => return Some(named(sql.unmute)),
        Action::Kick => return None,
    };
    Some(query.bind(moderation.by.clone()).bind(at.millis()))
}
