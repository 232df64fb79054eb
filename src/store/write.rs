//! What a backend supplies for writing: its write connection, and the SQL of each step of a
//! write transaction, whose order `transaction` decides once for both backends.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::rules::RulesTx;
use super::{Delivered, RoomRecord, StoreError};
use crate::domain::{
    Event, EventKind, InstanceId, NewRoom, ReadMarker, Retention, RoomId, Seq, SessionId, Timestamp,
};

/// The deleted room a purge step takes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NextPurge {
    /// This room's events through `last` are to go; those through `purged_through` have.
    Due {
        room_id: RoomId,
        last: Seq,
        purged_through: Seq,
    },
    /// Deleted rooms wait for their delay.
    Waiting,
    /// No deleted room has events left.
    None,
}

/// A backend's write connection: what is not a batch of events, and transactions for the
/// batch logic. It reconnects by itself; [`WriteConnection::discard`] drops a connection whose
/// state is unknown (a step failed or did not answer in time), so it is never used again.
#[async_trait]
pub(crate) trait WriteConnection: Send {
    /// Begins a transaction that may take the write locks of rooms.
    async fn begin(&mut self) -> Result<Box<dyn WriteTx + '_>, StoreError>;

    /// Drops the connection; the next call opens a new one.
    fn discard(&mut self);

    /// Creates a room stamped `now`, or later: never before the newest room; its owner (if
    /// any) gets the role in the same transaction.
    async fn create_room(
        &mut self,
        room: &NewRoom,
        now: Timestamp,
    ) -> Result<RoomRecord, StoreError>;

    async fn ping(&mut self) -> Result<(), StoreError>;

    /// Sets a room's retention; None when there is no such room.
    async fn set_retention(
        &mut self,
        room_id: RoomId,
        retention: Retention,
    ) -> Result<Option<RoomRecord>, StoreError>;
}

/// The SQL of each step of a write transaction; `transaction` decides their order. Dropped
/// without [`WriteTx::commit`] or [`WriteTx::rollback`], the connection is left inside the
/// transaction: the caller then discards it.
#[async_trait]
pub(crate) trait WriteTx: Upkeep + Changes + RulesTx {
    /// Takes the write lock of each room that exists, in sorted order (so writers that touch
    /// the same rooms wait for each other and never deadlock), and returns its newest seq.
    async fn lock_rooms(&mut self, rooms: &[RoomId]) -> Result<HashMap<RoomId, Seq>, StoreError>;

    /// [`WriteTx::lock_rooms`], and the stored events each of these (room, sender,
    /// clientMsgId) names, where there is one (among those a resend repeats: not ENTERs and
    /// LEAVEs). One step, so a backend may ask both at once.
    async fn lock_rooms_finding_resent(
        &mut self,
        rooms: &[RoomId],
        keys: &[ResendKey<'_>],
    ) -> Result<(HashMap<RoomId, Seq>, Vec<Event>), StoreError>;

    /// Stores these events (at least one) and sets each room's newest seq: one step, so a
    /// backend may send both at once.
    async fn store_events(
        &mut self,
        last_seqs: &[(RoomId, Seq)],
        events: &[&Event],
    ) -> Result<(), StoreError>;

    /// Ends these memberships, returning those that were stored.
    async fn end_memberships(
        &mut self,
        members: &[Membership],
    ) -> Result<HashSet<Membership>, StoreError>;

    /// Stores these memberships, each with the name its ENTER carried and when it was stored.
    async fn add_memberships(&mut self, members: &[Entered<'_>]) -> Result<(), StoreError>;

    /// Raises each sender's read marker in its room to its seq (no higher than the room's
    /// newest event), where that is higher than the stored one. Returns the new value of each
    /// that rose; a marker of a room that does not exist is not stored.
    async fn raise_read_markers(
        &mut self,
        markers: &[ReadMarker],
    ) -> Result<Vec<Option<Seq>>, StoreError>;

    /// Stores webhooks' delivery positions (each only ever rising), skipping those of a
    /// webhook deleted meanwhile.
    async fn store_positions(&mut self, positions: &[Delivered]) -> Result<(), StoreError>;

    /// Which of these message ids are stored.
    async fn stored_ids(&mut self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StoreError>;

    /// Runs a transaction-control statement, which both backends spell alike.
    async fn control(&mut self, statement: &'static str) -> Result<(), StoreError>;

    /// Whether this error refuses one event (a constraint or a trigger) rather than failing.
    fn refuses_the_event(&self, error: &StoreError) -> bool;

    async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.control("SAVEPOINT event").await
    }

    async fn release_savepoint(&mut self) -> Result<(), StoreError> {
        self.control("RELEASE SAVEPOINT event").await
    }

    async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        self.control("ROLLBACK TO SAVEPOINT event").await
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.control("COMMIT").await
    }

    async fn rollback(mut self: Box<Self>) -> Result<(), StoreError> {
        self.control("ROLLBACK").await
    }
}

/// The steps of the transactions that are not a batch of events: reaping a dead instance,
/// deleting a room and purging its events.
#[async_trait]
pub(crate) trait Upkeep: Send {
    /// Forgets an instance if it is silent for `silence` (None: whatever its heartbeat);
    /// false when it is alive. An instance already forgotten counts as silent: a reap that
    /// stopped part way left its members for anyone to reap.
    async fn forget_instance(
        &mut self,
        instance: InstanceId,
        silence: Option<Duration>,
    ) -> Result<bool, StoreError>;

    /// Up to `limit` memberships of an instance, with their names and whether each is a bot's.
    async fn members_of(
        &mut self,
        instance: InstanceId,
        limit: usize,
    ) -> Result<Vec<(Membership, String, bool)>, StoreError>;

    /// Deletes a room's row, returning its last seq; None when there is no such room.
    async fn delete_room_row(&mut self, room_id: RoomId) -> Result<Option<Seq>, StoreError>;

    /// Forgets a deleted room's memberships, read markers, reactions, roles, bans and mutes.
    async fn forget_room(&mut self, room_id: RoomId) -> Result<(), StoreError>;

    /// Records that a deleted room's events, through `last`, are to be purged.
    async fn schedule_purge(&mut self, room_id: RoomId, last: Seq) -> Result<(), StoreError>;

    /// The next deleted room whose events may be purged (deleted at least `delay` ago, and
    /// purged by nobody else meanwhile).
    async fn next_purge(&mut self, delay: Duration) -> Result<NextPurge, StoreError>;

    /// Deletes a room's events through `upto`, and records how far its purge got (forgetting
    /// it when `done`).
    async fn purge_through(
        &mut self,
        room_id: RoomId,
        upto: Seq,
        done: bool,
    ) -> Result<(), StoreError>;

    /// The room most in need of erasing under its retention (`default_age`, in seconds, for
    /// rooms with none of their own): one with events past either limit besides its newest.
    /// None when there is none, or another instance is erasing.
    async fn next_erasure(
        &mut self,
        default_age: Option<u64>,
        now: Timestamp,
    ) -> Result<Option<Erasable>, StoreError>;

    /// When each of up to `limit` of a room's events after `after` was stored, ascending.
    async fn sent_times(
        &mut self,
        room_id: RoomId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<(Seq, Timestamp)>, StoreError>;

    /// Erases a room's events through `through`, and the reactions on them, and records it.
    async fn erase_through(&mut self, room_id: RoomId, through: Seq) -> Result<(), StoreError>;
}

/// The steps of a batch that check and change the TALKs its EDITs, DELETEs, REACTs, UNREACTs
/// and replies name; their order and rules are `transaction`'s.
#[async_trait]
pub(crate) trait Changes: Send {
    /// The stored events at these (room, seq), whatever their kind.
    async fn find_targets(&mut self, keys: &[(RoomId, Seq)]) -> Result<Vec<Target>, StoreError>;

    /// How many senders reacted with each emoji on each of these TALKs.
    async fn reaction_counts(
        &mut self,
        talks: &[(RoomId, Seq)],
    ) -> Result<Vec<(RoomId, Seq, String, u32)>, StoreError>;

    /// Which of these reactions are stored, with the REACT that made each.
    async fn reactions_present(
        &mut self,
        keys: &[ReactionKey],
    ) -> Result<Vec<(ReactionKey, Seq)>, StoreError>;

    /// Gives each EDIT's TALK its text, stamped with the EDIT's `sentAt` (one EDIT per TALK).
    async fn edit_talks(&mut self, edits: &[&Event]) -> Result<(), StoreError>;

    /// Erases the text of these TALKs and of their EDITs (marking them deleted), and forgets
    /// their reactions.
    async fn erase_talks(&mut self, talks: &[(RoomId, Seq)]) -> Result<(), StoreError>;

    /// Stores these reactions, each with the REACT that made it.
    async fn add_reactions(&mut self, added: &[(ReactionKey, Seq)]) -> Result<(), StoreError>;

    async fn remove_reactions(&mut self, removed: &[ReactionKey]) -> Result<(), StoreError>;
}

/// A room whose events lie past its retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Erasable {
    pub room_id: RoomId,
    pub last_seq: Seq,
    pub erased_through: Seq,
    /// Its limits, the server's default age standing in for none of its own.
    pub retention: Retention,
}

/// A stored event a change or a reply names, as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub room_id: RoomId,
    pub seq: Seq,
    pub kind: EventKind,
    pub sender: String,
    pub deleted: bool,
}

/// A reaction: on the TALK at (room, seq), this emoji, by this sender.
pub(crate) type ReactionKey = (RoomId, Seq, String, String);

/// A membership an ENTER begins: the sender it entered as, and when the ENTER was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entered<'a> {
    pub member: Membership,
    pub sender: &'a str,
    pub at: Timestamp,
    /// A bot's: the LEAVE stored for it if its instance dies says so too.
    pub bot: bool,
}

/// What makes a TALK the same message sent again: its room, sender and `clientMsgId`.
pub(crate) type ResendKey<'a> = (RoomId, &'a str, &'a str);

/// A session's membership of a room, as stored: who it belongs to is the instance it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Membership {
    pub room_id: RoomId,
    pub instance: InstanceId,
    pub session: i64,
}

impl Membership {
    pub fn new(room_id: RoomId, instance: InstanceId, session: SessionId) -> Self {
        // SQL has no unsigned 64-bit integer, and ids count up from 1.
        let session = i64::try_from(session).unwrap_or(i64::MAX);
        Self {
            room_id,
            instance,
            session,
        }
    }
}
