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

mod changes;
mod checks;
mod commit;
mod retention;
mod rooms;
mod rules;
mod steps;

use std::time::Duration;

use self::commit::Ended;
pub(super) use self::commit::within;
use self::steps::{message_id, stored_events};
use super::{Delivered, Membership, Refused, StoreError, WriteConnection};
use crate::domain::{Authority, Event, InstanceId, NewEvent, ReadMarker, Seq, Standing, Timestamp};

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
    /// Who sent it, as the room's rules see them.
    authority: Authority,
    /// An accepted ENTER's: its sender's standing in the room.
    standing: Option<Standing>,
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

/// What a batch stores beside its events: read markers raised and webhooks' delivery
/// positions.
#[derive(Debug, Default)]
pub struct Marks {
    pub reads: Vec<ReadMarker>,
    pub positions: Vec<Delivered>,
}

/// What a batch came to: each event as stored, or why it was not (and, for a signed-in
/// sender's ENTER, its standing in the room); and the new value of each read marker that rose.
#[derive(Debug)]
pub struct Written {
    pub events: Vec<Result<Event, Refused>>,
    pub standings: Vec<Option<Standing>>,
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
        let mut written = self.write(batch, &Marks::default()).await;
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

    /// [`StoreWriter::append`], raising these read markers and storing these webhook positions
    /// in the same transaction.
    pub async fn write(
        &mut self,
        batch: Vec<NewEvent>,
        marks: &Marks,
    ) -> Result<Written, Unwritten> {
        let mut batch: Vec<Pending> = batch.into_iter().map(|new| self.stamp(new)).collect();
        let mut ended = self.attempt(&mut batch, marks, Work::Together).await;
        if let Ended::RolledBack {
            error,
            prompt: true,
        } = ended
        {
            tracing::warn!(%error, batch = batch.len(), "a batch failed; storing it event by event");
            ended = self.attempt(&mut batch, marks, Work::OneByOne).await;
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
        match self.attempt(&mut leaves, &Marks::default(), work).await {
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
            authority: new.authority,
            standing: None,
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
}

fn written(batch: Vec<Pending>, outcomes: Outcomes, risen: Risen) -> Written {
    Written {
        standings: batch.iter().map(|pending| pending.standing).collect(),
        events: stored_events(batch, outcomes),
        reads: risen,
    }
}
