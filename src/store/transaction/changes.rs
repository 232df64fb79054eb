//! Messages that change, inside a batch's transaction: each EDIT, DELETE, REACT and UNREACT,
//! and each TALK's `replyTo`, is checked against the TALK it names, as stored (under the
//! room's lock) and as changed by the events before it in the batch; then what the accepted
//! ones change is written: a TALK's latest text, its erasure, its reactions.

use std::collections::{HashMap, HashSet};

use super::Pending;
use crate::domain::{Emoji, Event, EventKind, RoomId, Seq};
use crate::store::{ReactionKey, Refused, StoreError, Target, WriteTx};

/// The TALKs a batch names, and their reactions, as each event of the batch finds them.
#[derive(Debug, Default)]
pub(super) struct Targets {
    /// Each named event's author, and whether it is a TALK that is not deleted.
    talks: HashMap<(RoomId, Seq), Option<String>>,
    /// How many senders reacted with each emoji, per TALK.
    emoji: HashMap<(RoomId, Seq), Vec<(String, u32)>>,
    /// Of the reactions the batch makes or takes back: those stored before it (with the REACT
    /// that made each).
    stored: HashMap<ReactionKey, Seq>,
    /// The same, as the batch leaves them (with the REACT that made each).
    now: HashMap<ReactionKey, Seq>,
    /// The last EDIT of each TALK in the batch.
    edits: HashMap<(RoomId, Seq), Event>,
    /// The TALKs the batch deletes.
    erased: Vec<(RoomId, Seq)>,
}

impl Targets {
    /// Reads what the batch's changes and replies name; nothing when it has none.
    pub async fn load(tx: &mut dyn WriteTx, batch: &[Pending]) -> Result<Self, StoreError> {
        let keys: Vec<(RoomId, Seq)> = batch.iter().filter_map(|p| named(&p.event)).collect();
        let mut targets = Self::default();
        if keys.is_empty() {
            return Ok(targets);
        }
        targets.load_talks(tx, &keys).await?;
        let reacted: Vec<(RoomId, Seq)> = batch
            .iter()
            .filter(|p| matches!(p.event.kind, EventKind::React | EventKind::Unreact))
            .filter_map(|p| named(&p.event))
            .collect();
        if !reacted.is_empty() {
            targets.load_reactions(tx, batch, &reacted).await?;
        }
        Ok(targets)
    }

    async fn load_talks(
        &mut self,
        tx: &mut dyn WriteTx,
        keys: &[(RoomId, Seq)],
    ) -> Result<(), StoreError> {
        for target in tx.find_targets(keys).await? {
            let Target { kind, deleted, .. } = target;
            let talk = (kind == EventKind::Talk && !deleted).then_some(target.sender);
            self.talks.insert((target.room_id, target.seq), talk);
        }
        Ok(())
    }

    async fn load_reactions(
        &mut self,
        tx: &mut dyn WriteTx,
        batch: &[Pending],
        reacted: &[(RoomId, Seq)],
    ) -> Result<(), StoreError> {
        for (room_id, seq, emoji, count) in tx.reaction_counts(reacted).await? {
            self.emoji
                .entry((room_id, seq))
                .or_default()
                .push((emoji, count));
        }
        let keys: Vec<ReactionKey> = batch
            .iter()
            .filter_map(|p| reaction_key(&p.event))
            .collect();
        for (key, seq) in tx.reactions_present(&keys).await? {
            self.stored.insert(key.clone(), seq);
            self.now.insert(key, seq);
        }
        Ok(())
    }

    /// Whether the event may be stored, given what came before it; a sender who `moderates`
    /// may take back anyone's TALK.
    pub fn check(&self, event: &Event, moderates: bool) -> Result<(), Refused> {
        let Some(at) = named(event) else {
            return Ok(());
        };
        let author = self.talks.get(&at).and_then(Option::as_deref);
        let author = author.ok_or(Refused::TargetNotFound(at.1))?;
        let own = author == event.sender;
        match event.kind {
            EventKind::Edit if !own => {
                Err(Refused::Forbidden("only its author may edit a message"))
            }
            EventKind::Delete if !own && !moderates => Err(Refused::Forbidden(
                "only its author, the room's moderators and admins may delete a message",
            )),
            EventKind::React | EventKind::Unreact => self.check_reaction(event, at),
            _ => Ok(()),
        }
    }

    fn check_reaction(&self, event: &Event, at: (RoomId, Seq)) -> Result<(), Refused> {
        let Some(key) = reaction_key(event) else {
            return Ok(());
        };
        let made = self.now.contains_key(&key);
        match event.kind {
            EventKind::React if made => Err(Refused::NoChange("you reacted so already")),
            EventKind::Unreact if !made => Err(Refused::NoChange("you did not react so")),
            EventKind::React => {
                let used = self.emoji.get(&at).map_or(&[][..], Vec::as_slice);
                let new = !used
                    .iter()
                    .any(|(emoji, count)| *emoji == key.2 && *count > 0);
                let distinct = used.iter().filter(|(_, count)| *count > 0).count();
                match new && distinct >= Emoji::MAX_PER_TALK {
                    true => Err(Refused::TooManyReactions),
                    false => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Takes a stored event (with its seq) into account for the events after it.
    pub fn record(&mut self, event: &Event) {
        let at = (event.room_id, event.target_seq.unwrap_or(Seq::ZERO));
        match event.kind {
            EventKind::Talk => {
                self.talks
                    .insert((event.room_id, event.seq), Some(event.sender.clone()));
            }
            EventKind::Edit => {
                self.edits.insert(at, event.clone());
            }
            EventKind::Delete => {
                self.talks.insert(at, None);
                self.erased.push(at);
            }
            EventKind::React | EventKind::Unreact => self.record_reaction(event, at),
            EventKind::Enter | EventKind::Leave | EventKind::Moderation => {}
        }
    }

    fn record_reaction(&mut self, event: &Event, at: (RoomId, Seq)) {
        let Some(key) = reaction_key(event) else {
            return;
        };
        let counts = self.emoji.entry(at).or_default();
        let index = match counts.iter().position(|(emoji, _)| *emoji == key.2) {
            Some(index) => index,
            None => {
                counts.push((key.2.clone(), 0));
                counts.len() - 1
            }
        };
        if event.kind == EventKind::React {
            counts[index].1 += 1;
            self.now.insert(key, event.seq);
        } else {
            counts[index].1 = counts[index].1.saturating_sub(1);
            self.now.remove(&key);
        }
    }

    /// Writes what the batch's stored changes did to their TALKs, after its events.
    pub async fn apply(self, tx: &mut dyn WriteTx) -> Result<(), StoreError> {
        let edits: Vec<&Event> = self
            .edits
            .iter()
            .filter(|(at, _)| !self.erased.contains(at))
            .map(|(_, edit)| edit)
            .collect();
        if !edits.is_empty() {
            tx.edit_talks(&edits).await?;
        }
        if !self.erased.is_empty() {
            tx.erase_talks(&self.erased).await?;
        }
        self.apply_reactions(tx).await
    }

    /// Stores the batch's reactions as it leaves them, but on the TALKs it deleted.
    async fn apply_reactions(self, tx: &mut dyn WriteTx) -> Result<(), StoreError> {
        let erased: HashSet<(RoomId, Seq)> = self.erased.iter().copied().collect();
        let gone = |key: &ReactionKey| erased.contains(&(key.0, key.1));
        // A reaction taken back and made again moves to its new REACT: out, then in.
        let removed: Vec<ReactionKey> = self
            .stored
            .iter()
            .filter(|(key, seq)| self.now.get(*key) != Some(seq) && !gone(key))
            .map(|(key, _)| key.clone())
            .collect();
        let added: Vec<(ReactionKey, Seq)> = self
            .now
            .into_iter()
            .filter(|(key, seq)| self.stored.get(key) != Some(seq) && !gone(key))
            .collect();
        if !removed.is_empty() {
            tx.remove_reactions(&removed).await?;
        }
        if !added.is_empty() {
            tx.add_reactions(&added).await?;
        }
        Ok(())
    }
}

/// The TALK an event names: a change's target, or the TALK a TALK answers.
fn named(event: &Event) -> Option<(RoomId, Seq)> {
    event
        .target_seq
        .or(event.reply_to)
        .map(|seq| (event.room_id, seq))
}

/// The reaction a REACT makes or an UNREACT takes back.
fn reaction_key(event: &Event) -> Option<ReactionKey> {
    let seq = event.target_seq?;
    let emoji = event.emoji.clone()?;
    Some((event.room_id, seq, emoji, event.sender.clone()))
}
