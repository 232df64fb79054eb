//! The steps of a batch inside its transaction, and what its events come to.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use uuid::Uuid;

use super::changes::Targets;
use super::checks::Checks;
use super::rules::Rulebook;
use super::{Outcomes, Pending};
use crate::domain::{
    Authority, Event, EventKind, InstanceId, NewEvent, RoomId, Sender, Seq, Timestamp,
};
use crate::store::{Entered, Membership, Refused, ResendKey, StoreError, WriteTx};

/// Locks the batch's rooms, gives each event its room's next seq, and stores the events with
/// the memberships they change; an event whose room is gone is refused, and so is the LEAVE
/// of a session that is no member, and a TALK that repeats one stored before (or earlier in
/// the batch), which comes back as that one.
pub(super) async fn store_batch(
    tx: &mut dyn WriteTx,
    batch: &mut [Pending],
) -> Result<Outcomes, StoreError> {
    let keys: Vec<ResendKey> = batch.iter().filter_map(|p| resend_key(&p.event)).collect();
    let (mut last, resent) = tx
        .lock_rooms_finding_resent(&rooms_of(batch), &keys)
        .await?;
    let firsts = resent.into_iter().filter_map(keyed).collect();
    let present = tx.end_memberships(&leaving(batch)).await?;
    let mut outcomes = refuse_non_members(batch, &present);
    let mut targets = Targets::load(tx, batch).await?;
    let mut rules = Rulebook::load(tx, batch).await?;
    let mut checks = Checks {
        targets: &mut targets,
        rules: &mut rules,
    };
    let taken = number(batch, &mut outcomes, &mut last, firsts, &mut checks)?;
    let stored = accepted(batch, &outcomes);
    if !stored.is_empty() {
        tx.store_events(&taken, &stored).await?;
    }
    tx.add_memberships(&entering(batch, &outcomes)).await?;
    targets.apply(tx).await?;
    Rulebook::apply(tx, &stored).await?;
    Ok(outcomes)
}

/// Gives each event still accepted its room's next seq, refusing a resend (of a stored event
/// or one earlier in the batch), an event whose room is gone, a change or reply its target
/// does not allow, and what the room's rules do not. Returns each room's new last seq.
fn number(
    batch: &mut [Pending],
    outcomes: &mut [Result<(), Refused>],
    last: &mut HashMap<RoomId, Seq>,
    mut firsts: HashMap<OwnedKey, Event>,
    checks: &mut Checks,
) -> Result<Vec<(RoomId, Seq)>, StoreError> {
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
        if let Err(refused) = checks.check(pending) {
            *outcome = Err(refused);
            continue;
        }
        *seq = seq.next().ok_or_else(|| exhausted(room_id))?;
        pending.event.seq = *seq;
        taken.insert(room_id, *seq);
        checks.record(&mut pending.event);
        if let Some(key) = key {
            firsts.insert(key, pending.event.clone());
        }
    }
    Ok(taken.into_iter().collect())
}

/// The events of the batch to insert: those not refused.
pub(super) fn accepted<'a>(
    batch: &'a [Pending],
    outcomes: &[Result<(), Refused>],
) -> Vec<&'a Event> {
    batch
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(pending, _)| &pending.event)
        .collect()
}

/// A new event's `messageId`: a UUIDv7, ordered by time, so the unique index on message ids
/// takes each batch's ids at its end, a page or two, where random v4 ids dirtied a page of
/// their own per event (and that page was written to the WAL at every commit).
pub(super) fn message_id() -> Uuid {
    Uuid::now_v7()
}

/// A [`ResendKey`] that owns its strings.
type OwnedKey = (RoomId, String, String);

/// What makes an event a resend of another: its room, sender and `clientMsgId`.
fn resend_key(event: &Event) -> Option<ResendKey<'_>> {
    let id = event.client_msg_id.as_deref()?;
    (event.kind.deduplicated()).then_some((event.room_id, event.sender.as_str(), id))
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
pub(super) async fn one_by_one(
    tx: &mut dyn WriteTx,
    batch: &mut [Pending],
) -> Result<Outcomes, StoreError> {
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
pub(super) async fn reap(
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
    for (member, name, bot) in members {
        let sender = Sender::parse(&name)
            .map_err(|_| StoreError::Corrupt(format!("member name {name:?}")))?;
        leaves.push(Pending {
            member: Some(member),
            authority: Authority::Anyone,
            standing: None,
            event: Event::stored(
                NewEvent::departure(member.room_id, sender).by_bot(bot),
                Seq::ZERO,
                message_id(),
                Timestamp::now(),
            ),
        });
    }
    store_batch(tx, leaves).await
}

/// The batch's rooms, sorted, each once.
pub(super) fn rooms_of(batch: &[Pending]) -> Vec<RoomId> {
    let mut rooms: Vec<RoomId> = batch.iter().map(|p| p.event.room_id).collect();
    rooms.sort_unstable();
    rooms.dedup();
    rooms
}

/// Each event of a batch as stored, or why it was not.
pub(super) fn stored_events(
    batch: Vec<Pending>,
    outcomes: Outcomes,
) -> Vec<Result<Event, Refused>> {
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
            _ => {}
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
                _ => Ok(()),
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
                bot: pending.event.bot,
            }),
            EventKind::Leave => rows.retain(|entered| entered.member != member),
            _ => {}
        }
    }
    rows
}

fn exhausted(room_id: RoomId) -> StoreError {
    StoreError::Corrupt(format!("room {room_id} has used every seq"))
}
