//! How a batch of events is stored, written once for both backends; each backend only supplies
//! the SQL of each step ([`WriteTx`]).
//!
//! A batch is one transaction: lock its rooms in sorted order, end the memberships its LEAVEs
//! end (a LEAVE of a session that is no member is refused, so nobody leaves twice), look up
//! the TALKs its resends repeat (under the room's lock, which every writer of the room takes
//! first, so two racing resends are one after the other; a unique key backs that up), give
//! each other event its room's next seq, insert the events, store the memberships its ENTERs
//! begin, and raise the read markers it carries.
//! When that fails before COMMIT, nothing was stored and the batch is tried once more, each
//! event under a savepoint of its own, so an event the database refuses fails alone.
//!
//! A COMMIT that fails or goes unanswered may still have landed. Such a batch is never run
//! again: storage is asked, under the same room locks (so the COMMIT in doubt has finished one
//! way or the other), whether its events are there, and nobody hears about the batch before
//! that is known. When storage does not answer, the batch comes back [`Unwritten::InDoubt`],
//! for the caller to ask again ([`StoreWriter::settle`]) while it refuses what else comes. Every step and the COMMIT have a deadline, and a connection that failed or
//! fell silent is dropped, never reused.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use uuid::Uuid;

use super::{
    Entered, Membership, NextPurge, Purge, Refused, ResendKey, RoomRecord, StoreError,
    WriteConnection, WriteTx,
};
use crate::domain::{
    Event, EventKind, InstanceId, NewEvent, ReadMarker, RoomId, RoomName, Sender, Seq, Timestamp,
};

/// The longest a transaction's statements, and then its COMMIT, may take before the
/// connection counts as lost. Longer than the server's own lock and statement timeouts, so
/// that the server's clean error comes first when it can.
pub const DEADLINE: Duration = Duration::from_secs(8);
/// How often storage is asked again whether a COMMIT in doubt landed, while it does not answer.
pub const ASK_AGAIN: Duration = Duration::from_millis(500);

/// Writes, on one connection of its own, used by one task at a time.
pub struct StoreWriter {
    connection: Box<dyn WriteConnection>,
    instance: InstanceId,
}

/// An event stamped for storage (its seq still to be given), with the membership it changes.
#[derive(Debug)]
struct Pending {
    event: Event,
    member: Option<Membership>,
}

/// What to do in one transaction.
#[derive(Debug, Clone, Copy)]
enum Work {
    /// The whole batch at once.
    Together,
    /// Each event under a savepoint of its own.
    OneByOne,
    /// A LEAVE for each of up to `limit` members of an instance that is gone (still silent
    /// for `silence`, if given), and the instance forgotten.
    Reap {
        instance: InstanceId,
        silence: Option<Duration>,
        limit: usize,
    },
}

type Outcomes = Vec<Result<(), Refused>>;
/// The new value of each read marker that rose.
type Risen = Vec<Option<Seq>>;

/// What a batch came to: each event as stored, or why it was not; and the new value of each
/// read marker that rose.
#[derive(Debug)]
pub struct Written {
    pub events: Vec<Result<Event, Refused>>,
    pub reads: Vec<Option<Seq>>,
}

/// Why a batch is not [`Written`].
#[derive(Debug)]
pub enum Unwritten {
    /// Nothing of it was stored.
    Failed(StoreError),
    /// Its COMMIT went unanswered and storage could not say yet whether it landed: nobody may
    /// hear of it before [`StoreWriter::settle`] knows.
    InDoubt(InDoubt),
}

/// A batch whose COMMIT is in doubt: what it would have stored, to look for.
#[derive(Debug)]
pub struct InDoubt {
    batch: Vec<Pending>,
    outcomes: Outcomes,
    risen: Risen,
    error: StoreError,
}

/// How one transaction ended.
enum Ended {
    Committed(Outcomes, Risen),
    /// Nothing of it was stored; `prompt` when the failure came back at once (not a deadline),
    /// so trying again is worth it.
    RolledBack {
        error: StoreError,
        prompt: bool,
    },
    InDoubt(Outcomes, Risen, StoreError),
}

impl StoreWriter {
    pub(crate) fn new(connection: Box<dyn WriteConnection>, instance: InstanceId) -> Self {
        Self {
            connection,
            instance,
        }
    }

    /// Stores a batch in one transaction, giving each event its room's next `seq`, and the
    /// membership each ENTER or LEAVE changes. One result per input, in input order; an event
    /// the database refuses fails alone. An error means nothing of the batch was stored.
    pub async fn append(
        &mut self,
        batch: Vec<NewEvent>,
    ) -> Result<Vec<Result<Event, Refused>>, StoreError> {
        let mut written = self.write(batch, &[]).await;
        while let Err(Unwritten::InDoubt(doubt)) = written {
            tokio::time::sleep(ASK_AGAIN).await;
            written = self.settle(doubt).await;
        }
        match written {
            Ok(written) => Ok(written.events),
            Err(Unwritten::Failed(error)) => Err(error),
            Err(Unwritten::InDoubt(doubt)) => Err(doubt.error),
        }
    }

    /// [`StoreWriter::append`], raising these read markers in the same transaction.
    pub async fn write(
        &mut self,
        batch: Vec<NewEvent>,
        reads: &[ReadMarker],
    ) -> Result<Written, Unwritten> {
        let mut batch: Vec<Pending> = batch.into_iter().map(|new| self.stamp(new)).collect();
        let mut ended = self.attempt(&mut batch, reads, Work::Together).await;
        if let Ended::RolledBack {
            error,
            prompt: true,
        } = ended
        {
            tracing::warn!(%error, batch = batch.len(), "a batch failed; storing it event by event");
            ended = self.attempt(&mut batch, reads, Work::OneByOne).await;
        }
        match ended {
            Ended::Committed(outcomes, risen) => Ok(written(batch, outcomes, risen)),
            Ended::RolledBack { error, .. } => Err(Unwritten::Failed(error)),
            Ended::InDoubt(outcomes, risen, error) => Err(Unwritten::InDoubt(InDoubt {
                batch,
                outcomes,
                risen,
                error,
            })),
        }
    }

    /// Asks storage once more whether a COMMIT in doubt landed.
    pub async fn settle(&mut self, doubt: InDoubt) -> Result<Written, Unwritten> {
        let InDoubt {
            batch,
            outcomes,
            risen,
            error,
        } = doubt;
        match self.landed(&batch, &outcomes).await {
            Some(true) => Ok(written(batch, outcomes, risen)),
            Some(false) => Err(Unwritten::Failed(error)),
            None => Err(Unwritten::InDoubt(InDoubt {
                batch,
                outcomes,
                risen,
                error,
            })),
        }
    }

    /// Forgets an instance, if it is still silent for `silence` (None: whatever its heartbeat),
    /// and stores a LEAVE for each of up to `limit` of its members, in one transaction.
    /// Returns the stored LEAVEs (none when it is alive, or has no members left), and whether
    /// members may be left.
    pub async fn reap(
        &mut self,
        instance: InstanceId,
        silence: Option<Duration>,
        limit: usize,
    ) -> Result<(Vec<Event>, bool), StoreError> {
        let mut leaves = Vec::new();
        let work = Work::Reap {
            instance,
            silence,
            limit,
        };
        match self.attempt(&mut leaves, &[], work).await {
            Ended::Committed(outcomes, _) => {
                let more = leaves.len() >= limit;
                let stored = stored_events(leaves, outcomes);
                Ok((stored.into_iter().filter_map(Result::ok).collect(), more))
            }
            Ended::RolledBack { error, .. } => Err(error),
            // Asked once, storage could not say: the instance is reaped again later (by the
            // others, or by the next heartbeat), and LEAVEs it may have stored reach members
            // through the gap fill of the room's next event.
            Ended::InDoubt(_, _, error) => Err(error),
        }
    }

    pub async fn create_room(
        &mut self,
        name: &RoomName,
        now: Timestamp,
    ) -> Result<RoomRecord, StoreError> {
        let created = within(self.connection.create_room(name, now)).await;
        self.kept_if_ok(created)
    }

    /// Deletes a room and its memberships at once, returning its last seq (None when there was
    /// no such room); its events are removed afterwards by [`StoreWriter::purge_step`], a
    /// bounded chunk at a time.
    pub async fn delete_room(&mut self, room_id: RoomId) -> Result<Option<Seq>, StoreError> {
        let deleted = within(async {
            let mut tx = self.connection.begin().await?;
            let Some(last) = tx.delete_room_row(room_id).await? else {
                tx.rollback().await?;
                return Ok(None);
            };
            tx.forget_room(room_id).await?;
            if last > Seq::ZERO {
                tx.schedule_purge(room_id, last).await?;
            }
            tx.commit().await?;
            Ok(Some(last))
        })
        .await;
        self.kept_if_ok(deleted)
    }

    /// Deletes up to `limit` events of a room deleted at least `delay` ago.
    pub async fn purge_step(&mut self, limit: u32, delay: Duration) -> Result<Purge, StoreError> {
        let purged = within(async {
            let mut tx = self.connection.begin().await?;
            let (room_id, last, purged_through) = match tx.next_purge(delay).await? {
                NextPurge::Due {
                    room_id,
                    last,
                    purged_through,
                } => (room_id, last, purged_through),
                waiting_or_none => {
                    tx.rollback().await?;
                    return Ok(match waiting_or_none {
                        NextPurge::Waiting => Purge::Waiting,
                        _ => Purge::Done,
                    });
                }
            };
            let upto = purged_through.saturating_add(limit).min(last);
            tx.purge_through(room_id, upto, upto == last).await?;
            tx.commit().await?;
            Ok(Purge::Purged)
        })
        .await;
        self.kept_if_ok(purged)
    }

    /// A cheap round trip on this connection, for readiness.
    pub async fn ping(&mut self) -> Result<(), StoreError> {
        let answered = within(self.connection.ping()).await;
        self.kept_if_ok(answered)
    }

    fn stamp(&self, new: NewEvent) -> Pending {
        let member = new
            .session
            .map(|session| Membership::new(new.room_id, self.instance, session));
        Pending {
            member,
            event: Event::stored(new, Seq::ZERO, message_id(), Timestamp::now()),
        }
    }

    /// A connection whose last call failed is in an unknown state: the next call opens another.
    fn kept_if_ok<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.connection.discard();
        }
        result
    }

    /// One transaction, then, if its COMMIT failed, what storage says became of it. (Read
    /// markers alone cannot tell: a batch of only those counts as not landed, and raising them
    /// again changes nothing, so at worst their READ notices are not sent.)
    async fn attempt(
        &mut self,
        batch: &mut Vec<Pending>,
        reads: &[ReadMarker],
        work: Work,
    ) -> Ended {
        let (outcomes, risen, error) =
            match transact(&mut *self.connection, batch, reads, work).await {
                Transacted::Committed(outcomes, risen) => {
                    return Ended::Committed(outcomes, risen);
                }
                Transacted::RolledBack(error) => {
                    self.connection.discard();
                    let prompt = !matches!(error, StoreError::TimedOut(_));
                    return Ended::RolledBack { error, prompt };
                }
                Transacted::InDoubt(outcomes, risen, error) => (outcomes, risen, error),
            };
        self.connection.discard();
        tracing::warn!(%error, "a COMMIT went unanswered; asking storage whether it landed");
        match self.landed(batch, &outcomes).await {
            Some(true) => Ended::Committed(outcomes, risen),
            Some(false) => Ended::RolledBack {
                error,
                prompt: true,
            },
            None => Ended::InDoubt(outcomes, risen, error),
        }
    }

    /// Whether the events a COMMIT in doubt would have stored are stored; None when storage
    /// does not answer. It takes the rooms' locks first, so the COMMIT has finished.
    async fn landed(
        &mut self,
        batch: &[Pending],
        outcomes: &[Result<(), Refused>],
    ) -> Option<bool> {
        let ids: Vec<Uuid> = batch
            .iter()
            .zip(outcomes)
            .filter(|(_, outcome)| outcome.is_ok())
            .map(|(pending, _)| pending.event.message_id)
            .collect();
        if ids.is_empty() {
            return Some(false);
        }
        let rooms = rooms_of(batch);
        let asked = within(async {
            let mut tx = self.connection.begin().await?;
            tx.lock_rooms(&rooms).await?;
            let found = tx.stored_ids(&ids).await?;
            tx.rollback().await?;
            Ok(found)
        })
        .await;
        match asked {
            Ok(found) => {
                tracing::info!(
                    landed = !found.is_empty(),
                    "storage said what became of a COMMIT in doubt"
                );
                Some(!found.is_empty())
            }
            Err(error) => {
                self.connection.discard();
                tracing::warn!(%error, "cannot tell yet whether a COMMIT landed");
                None
            }
        }
    }
}

fn written(batch: Vec<Pending>, outcomes: Outcomes, risen: Risen) -> Written {
    Written {
        events: stored_events(batch, outcomes),
        reads: risen,
    }
}

/// How one transaction went, as far as this side can tell.
enum Transacted {
    Committed(Outcomes, Risen),
    /// It failed before COMMIT was sent: nothing of it was stored.
    RolledBack(StoreError),
    /// Its COMMIT failed or went unanswered: it may have landed.
    InDoubt(Outcomes, Risen, StoreError),
}

async fn transact(
    connection: &mut dyn WriteConnection,
    batch: &mut Vec<Pending>,
    reads: &[ReadMarker],
    work: Work,
) -> Transacted {
    let prepared = within(async {
        let mut tx = connection.begin().await?;
        let outcomes = match work {
            Work::Together => store_batch(&mut *tx, batch).await?,
            Work::OneByOne => one_by_one(&mut *tx, batch).await?,
            Work::Reap {
                instance,
                silence,
                limit,
            } => reap(&mut *tx, batch, instance, silence, limit).await?,
        };
        // After the events, so a marker may name the newest of them.
        let risen = match reads.is_empty() {
            true => Vec::new(),
            false => tx.raise_read_markers(reads).await?,
        };
        Ok((tx, outcomes, risen))
    })
    .await;
    let (tx, outcomes, risen) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return Transacted::RolledBack(error),
    };
    match within(tx.commit()).await {
        Ok(()) => Transacted::Committed(outcomes, risen),
        Err(error) => Transacted::InDoubt(outcomes, risen, error),
    }
}

/// Runs a storage call under [`DEADLINE`].
pub(super) async fn within<T>(
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(DEADLINE, call)
        .await
        .unwrap_or(Err(StoreError::TimedOut(DEADLINE)))
}

/// Locks the batch's rooms, gives each event its room's next seq, and stores the events with
/// the memberships they change; an event whose room is gone is refused, and so is the LEAVE
/// of a session that is no member, and a TALK that repeats one stored before (or earlier in
/// the batch), which comes back as that one.
async fn store_batch(tx: &mut dyn WriteTx, batch: &mut [Pending]) -> Result<Outcomes, StoreError> {
    let mut last = tx.lock_rooms(&rooms_of(batch)).await?;
    let present = tx.end_memberships(&leaving(batch)).await?;
    let mut outcomes = refuse_non_members(batch, &present);
    let keys: Vec<ResendKey> = batch.iter().filter_map(|p| resend_key(&p.event)).collect();
    let mut firsts: HashMap<OwnedKey, Event> = match keys.is_empty() {
        true => HashMap::new(),
        false => tx
            .find_talks(&keys)
            .await?
            .into_iter()
            .filter_map(keyed)
            .collect(),
    };
    let mut taken = HashMap::new();
    for (pending, outcome) in batch.iter_mut().zip(outcomes.iter_mut()) {
        if outcome.is_err() {
            continue;
        }
        let key = resend_key(&pending.event).map(owned);
        if let Some(first) = key.as_ref().and_then(|key| firsts.get(key)) {
            *outcome = Err(Refused::Duplicate(Box::new(first.clone())));
            continue;
        }
        let room_id = pending.event.room_id;
        let Some(seq) = last.get_mut(&room_id) else {
            *outcome = Err(Refused::RoomGone);
            continue;
        };
        *seq = seq.next().ok_or_else(|| exhausted(room_id))?;
        pending.event.seq = *seq;
        taken.insert(room_id, *seq);
        if let Some(key) = key {
            firsts.insert(key, pending.event.clone());
        }
    }
    let taken: Vec<(RoomId, Seq)> = taken.into_iter().collect();
    tx.set_last_seqs(&taken).await?;
    let stored: Vec<&Event> = batch
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(pending, _)| &pending.event)
        .collect();
    tx.insert_events(&stored).await?;
    tx.add_memberships(&entering(batch, &outcomes)).await?;
    Ok(outcomes)
}

/// A new event's `messageId`: a UUIDv7, ordered by time, so the unique index on message ids
/// takes each batch's ids at its end, a page or two, where random v4 ids dirtied a page of
/// their own per event (and that page was written to the WAL at every commit).
fn message_id() -> Uuid {
    Uuid::now_v7()
}

/// A [`ResendKey`] that owns its strings.
type OwnedKey = (RoomId, String, String);

/// What makes a TALK a resend of another: its room, sender and `clientMsgId`.
fn resend_key(event: &Event) -> Option<ResendKey<'_>> {
    let id = event.client_msg_id.as_deref()?;
    (event.kind == EventKind::Talk).then_some((event.room_id, event.sender.as_str(), id))
}

fn owned((room_id, sender, id): ResendKey) -> OwnedKey {
    (room_id, sender.to_owned(), id.to_owned())
}

fn keyed(event: Event) -> Option<(OwnedKey, Event)> {
    Some((resend_key(&event).map(owned)?, event))
}

/// Each event under a savepoint of its own: one the database refuses is rolled back alone and
/// the others still commit together. Every room is locked first, in sorted order, as a whole
/// batch would lock them.
async fn one_by_one(tx: &mut dyn WriteTx, batch: &mut [Pending]) -> Result<Outcomes, StoreError> {
    tx.lock_rooms(&rooms_of(batch)).await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for pending in batch.chunks_mut(1) {
        tx.savepoint().await?;
        let outcome = match store_batch(tx, pending).await {
            Ok(mut one) => one.pop().unwrap_or(Err(Refused::RoomGone)),
            Err(error) if tx.refuses_the_event(&error) => {
                let room_id = pending[0].event.room_id;
                tracing::warn!(%error, %room_id, "the database refused an event");
                Err(Refused::Rejected)
            }
            Err(error) => return Err(error),
        };
        if outcome.is_err() {
            tx.rollback_to_savepoint().await?;
        }
        tx.release_savepoint().await?;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Claims a silent instance and stores a LEAVE for each of its members into `leaves`. The
/// instance's row is locked first, then its members' rooms in sorted order, then their
/// memberships: the order every batch takes them in (batches never touch the instance's row).
async fn reap(
    tx: &mut dyn WriteTx,
    leaves: &mut Vec<Pending>,
    instance: InstanceId,
    silence: Option<Duration>,
    limit: usize,
) -> Result<Outcomes, StoreError> {
    if !tx.forget_instance(instance, silence).await? {
        return Ok(Vec::new());
    }
    let mut members = tx.members_of(instance, limit).await?;
    members.sort();
    for (member, name) in members {
        let sender = Sender::parse(&name)
            .map_err(|_| StoreError::Corrupt(format!("member name {name:?}")))?;
        leaves.push(Pending {
            member: Some(member),
            event: Event::stored(
                NewEvent::departure(member.room_id, sender),
                Seq::ZERO,
                message_id(),
                Timestamp::now(),
            ),
        });
    }
    store_batch(tx, leaves).await
}

/// The batch's rooms, sorted, each once.
fn rooms_of(batch: &[Pending]) -> Vec<RoomId> {
    let mut rooms: Vec<RoomId> = batch.iter().map(|p| p.event.room_id).collect();
    rooms.sort_unstable();
    rooms.dedup();
    rooms
}

/// Each event of a batch as stored, or why it was not.
fn stored_events(batch: Vec<Pending>, outcomes: Outcomes) -> Vec<Result<Event, Refused>> {
    batch
        .into_iter()
        .zip(outcomes)
        .map(|(pending, outcome)| outcome.map(|()| pending.event))
        .collect()
}

/// The stored memberships the batch's LEAVEs end: those of sessions that entered before it.
fn leaving(batch: &[Pending]) -> Vec<Membership> {
    let mut entering = HashSet::new();
    let mut leaving = Vec::new();
    for pending in batch {
        let Some(member) = pending.member else {
            continue;
        };
        match pending.event.kind {
            EventKind::Enter => {
                entering.insert(member);
            }
            EventKind::Leave if !entering.contains(&member) => leaving.push(member),
            EventKind::Leave | EventKind::Talk => {}
        }
    }
    leaving
}

/// Walks the batch in order from the memberships found stored (`present`): a LEAVE of a
/// session that is not a member by then is refused, so nobody ever gets a second LEAVE.
fn refuse_non_members(batch: &[Pending], present: &HashSet<Membership>) -> Outcomes {
    let mut members = present.clone();
    batch
        .iter()
        .map(|pending| {
            let Some(member) = pending.member else {
                return Ok(());
            };
            match pending.event.kind {
                EventKind::Enter => {
                    members.insert(member);
                    Ok(())
                }
                EventKind::Leave if members.remove(&member) => Ok(()),
                EventKind::Leave => Err(Refused::NotMember),
                EventKind::Talk => Ok(()),
            }
        })
        .collect()
}

/// The memberships the batch's stored ENTERs add, with their names and times: those not ended
/// again by a LEAVE later in the same batch.
fn entering<'a>(batch: &'a [Pending], outcomes: &[Result<(), Refused>]) -> Vec<Entered<'a>> {
    let mut rows: Vec<Entered> = Vec::new();
    for (pending, outcome) in batch.iter().zip(outcomes) {
        let (Some(member), Ok(())) = (pending.member, outcome) else {
            continue;
        };
        match pending.event.kind {
            EventKind::Enter => rows.push(Entered {
                member,
                sender: pending.event.sender.as_str(),
                at: pending.event.sent_at,
            }),
            EventKind::Leave => rows.retain(|entered| entered.member != member),
            EventKind::Talk => {}
        }
    }
    rows
}

fn exhausted(room_id: RoomId) -> StoreError {
    StoreError::Corrupt(format!("room {room_id} has used every seq"))
}
