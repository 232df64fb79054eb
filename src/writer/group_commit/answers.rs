//! How a batch is answered: each append, read marker and webhook position as stored (or not), then its events
//! fanned out; and the LEAVEs of ended sessions that storage could not take.

use std::time::Instant;

use tokio::time::Instant as TokioInstant;

use super::GroupCommit;
use crate::domain::{Event, NewEvent, Notice, ReadMarker, RoomId, Seq, Standing};
use crate::metrics::{Metrics, Stage};
use crate::store::{Refused, Unwritten, Written};
use crate::writer::batch::{Answers, Batch, Reply};
use crate::writer::{AppendError, Command, ReadSender, WriteError};

/// LEAVEs of sessions that have ended which storage could not take: tried again every
/// [`ORPHAN_RETRY`], so a member who hung up while storage was down still leaves, once. (Only
/// LEAVEs: a TALK whose sender is gone was refused to it, and it may send it again.)
pub(super) struct Orphans {
    pub(super) leaves: Vec<NewEvent>,
    pub(super) tried: TokioInstant,
}

impl Orphans {
    /// Keeps a LEAVE nobody else will store, to try it again.
    pub(super) fn keep(&mut self, leave: Option<NewEvent>) {
        let Some(leave) = leave else { return };
        if self.leaves.is_empty() {
            tracing::warn!("a LEAVE of an ended session waits for storage");
            self.tried = TokioInstant::now();
        }
        self.leaves.push(leave);
    }
}

impl GroupCommit {
    /// Answers a batch as it was stored (or not). Every request of the batch is answered
    /// before any of its events is fanned out: a session then hears of its own append (and of
    /// whatever it queued before it) before the event reaches its queue, as an
    /// `"echo": false` member's ACK needs.
    pub(super) fn answer(
        &mut self,
        written: Result<Written, Unwritten>,
        answers: Answers,
        committed: Instant,
    ) {
        let written = match written {
            Ok(written) => written,
            Err(Unwritten::Failed(error)) => {
                tracing::error!(%error, batch = answers.replies.len(), "storing a batch failed");
                return fail(answers, &self.metrics, &mut self.orphans);
            }
            Err(Unwritten::InDoubt(unsettled)) => {
                self.doubt = Some((unsettled, answers));
                return;
            }
        };
        let Written {
            events,
            standings,
            reads,
        } = written;
        let stored = self.answer_appends(events, standings, answers.replies);
        let notices = answer_reads(answers.marks.reads, reads, answers.read_replies);
        for reply in answers.position_replies {
            let _ = reply.send(Ok(()));
        }
        self.fanout.publish(&stored);
        for _ in &stored {
            self.metrics.stage(Stage::FannedOut, committed);
        }
        for notice in &notices {
            self.fanout.notify(notice, None);
        }
    }

    /// Answers each append as it was stored (or refused); returns the events stored.
    pub(super) fn answer_appends(
        &mut self,
        events: Vec<Result<Event, Refused>>,
        standings: Vec<Option<Standing>>,
        replies: Vec<Reply>,
    ) -> Vec<Event> {
        let mut stored = Vec::with_capacity(events.len());
        for ((result, standing), reply) in events.into_iter().zip(standings).zip(replies) {
            let refused = match result {
                Ok(event) => {
                    self.metrics
                        .event_stored(event.kind.as_str(), event.action());
                    self.metrics.stage(Stage::Committed, reply.queued);
                    reply.stored(&event, standing);
                    stored.push(event);
                    continue;
                }
                Err(refused) => refused,
            };
            match refusal(refused, reply.room_id) {
                Ok((refusal, reason)) => {
                    self.metrics.append_failed(reason);
                    self.orphans.keep(reply.failed(refusal));
                }
                Err(first) => {
                    self.metrics.resends.inc();
                    reply.duplicate(first);
                }
            }
        }
        stored
    }
}

/// Answers each read marker (stored); returns the READ notices of those that rose.
pub(super) fn answer_reads(
    markers: Vec<ReadMarker>,
    risen: Vec<Option<Seq>>,
    replies: Vec<ReadSender>,
) -> Vec<Notice> {
    let mut notices = Vec::new();
    for ((marker, risen), reply) in markers.into_iter().zip(risen).zip(replies) {
        let _ = reply.send(Ok(()));
        if let Some(seq) = risen {
            notices.push(Notice::Read {
                room_id: marker.room_id,
                sender: marker.sender.into_string(),
                seq,
            });
        }
    }
    notices
}

/// Tells a batch's senders that nothing of it was stored.
pub(super) fn fail(answers: Answers, metrics: &Metrics, orphans: &mut Orphans) {
    for reply in answers.replies {
        metrics.append_failed("unavailable");
        orphans.keep(reply.failed(AppendError::Unavailable));
    }
    for reply in answers
        .read_replies
        .into_iter()
        .chain(answers.position_replies)
    {
        let _ = reply.send(Err(AppendError::Unavailable));
    }
}

/// Answers a command at once as unavailable, while a COMMIT is in doubt: an append or a
/// read marker as a batch that could not be stored would be.
pub(super) fn refuse(command: Command, metrics: &Metrics, orphans: &mut Orphans) {
    let mut batch = Batch::default();
    match command {
        Command::Append {
            event,
            reply,
            queued,
        } => batch.push(event, reply, queued),
        Command::Read { marker, reply } => batch.push_read(marker, reply),
        Command::Delivered { position, reply } => batch.push_position(position, reply),
        Command::CreateRoom { reply, .. } => {
            let _ = reply.send(Err(WriteError::Unavailable));
        }
        Command::DeleteRoom { reply, .. } => {
            let _ = reply.send(Err(WriteError::Unavailable));
        }
        Command::SetRetention { reply, .. } => {
            let _ = reply.send(Err(WriteError::Unavailable));
        }
        Command::Ping { reply } => {
            let _ = reply.send(Err(WriteError::Unavailable));
        }
        Command::Reap { reply, .. } => {
            let _ = reply.send(Err(WriteError::Unavailable));
        }
    }
    fail(batch.answers, metrics, orphans);
}

/// What an append the store refused is told, and the reason it is counted under; for a
/// resend, the first copy it gets instead.
fn refusal(refused: Refused, room_id: RoomId) -> Result<(AppendError, &'static str), Box<Event>> {
    Ok(match refused {
        Refused::Duplicate(first) => return Err(first),
        Refused::RoomGone => (AppendError::RoomNotFound(room_id), "room_gone"),
        Refused::NotMember => (AppendError::NotMember(room_id), "not_member"),
        Refused::Rejected => (AppendError::Unavailable, "rejected"),
        Refused::TargetNotFound(seq) => (AppendError::TargetNotFound(seq), "target_not_found"),
        Refused::Forbidden(why) => (AppendError::Forbidden(why), "forbidden"),
        Refused::NoChange(why) => (AppendError::NoChange(why), "no_change"),
        Refused::TooManyReactions => (AppendError::TooManyReactions, "too_many_reactions"),
        Refused::Banned => (AppendError::Banned(room_id), "banned"),
        Refused::LastOwner => (AppendError::LastOwner, "last_owner"),
    })
}
