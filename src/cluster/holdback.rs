//! One room's hold-back queue on this instance: events from this instance's writer, from the
//! broker and from storage arrive in any order and leave in `seq` order. A plain type: no I/O.

use std::collections::BTreeMap;

use crate::domain::{Event, Seq};

/// Most events held back for one room. A gap that storage cannot fill for that long (it is
/// unreachable) is skipped: members then read what they miss from storage themselves, within
/// the bounds of their own queues, so the instance never holds an unbounded backlog.
const MAX_HELD: usize = 4096;

/// What to hand to the room's members here, in this room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Event(Box<Event>),
    /// The room was deleted after this seq, and every event through it has been handed on.
    Closed(Seq),
}

#[derive(Debug, Default)]
pub struct HoldBack {
    /// The newest seq handed on in order; None until the first event.
    delivered: Option<Seq>,
    /// Events that arrived before the ones they follow.
    held: BTreeMap<Seq, Event>,
    /// The newest seq known to be stored.
    known: Seq,
    /// The room was deleted after this seq: `CLOSED` follows it.
    closing: Option<Seq>,
    /// A fill from storage is scheduled or running.
    pub filling: bool,
}

impl HoldBack {
    /// An event, from wherever it came. The first one starts the stream; one at or below what
    /// was handed on is handed on again as it is (members skip what they had: a newcomer may
    /// not have had it); one ahead of a gap waits for the gap to be filled.
    pub fn arrive(&mut self, event: Event, out: &mut Vec<Out>) {
        let seq = event.seq;
        self.known = self.known.max(seq);
        match self.delivered {
            Some(delivered) if seq <= delivered => out.push(Out::Event(Box::new(event))),
            Some(delivered) if delivered.next() != Some(seq) => {
                self.held.insert(seq, event);
                if self.held.len() > MAX_HELD {
                    self.skip_gap(out);
                }
            }
            _ => {
                self.delivered = Some(seq);
                out.push(Out::Event(Box::new(event)));
                self.release(out);
            }
        }
    }

    /// The room was deleted after `last_seq`.
    pub fn close(&mut self, last_seq: Seq, out: &mut Vec<Out>) {
        self.known = self.known.max(last_seq);
        self.closing = Some(last_seq);
        self.release(out);
    }

    /// Storage says the room's newest event is `seq`. A stream with no event yet starts there.
    pub fn stored_up_to(&mut self, seq: Seq) {
        self.known = self.known.max(seq);
        self.delivered.get_or_insert(seq);
    }

    /// The seq after which events are missing, when some are: they must be read from storage.
    pub fn missing_after(&self) -> Option<Seq> {
        let delivered = self.delivered?;
        (delivered < self.known).then_some(delivered)
    }

    /// Storage has nothing after what was handed on, and its newest seq is `newest` (None: the
    /// room is gone). Seqs the broker claimed beyond what storage holds were never stored, and
    /// are dropped rather than handed on (they would make members wait for events that never
    /// come); a room whose history is gone (deleted, purged) stops waiting instead.
    pub fn storage_ends(&mut self, newest: Option<Seq>, out: &mut Vec<Out>) {
        match (newest, self.delivered) {
            (Some(newest), Some(delivered)) if newest <= delivered => {
                self.held.clear();
                self.known = delivered;
                self.release(out);
            }
            _ => self.give_up(out),
        }
    }

    /// Storage's first event after what was handed on is `first`: what lay between was erased
    /// (by the room's retention) and will never come. Hands on what is held before it, then
    /// goes on from there.
    pub fn storage_resumes_at(&mut self, first: Seq, out: &mut Vec<Out>) {
        let Some(delivered) = self.delivered else {
            return;
        };
        let before = first.prev();
        if before <= delivered {
            return;
        }
        let later = self.held.split_off(&first);
        for (_, event) in std::mem::replace(&mut self.held, later) {
            out.push(Out::Event(Box::new(event)));
        }
        self.delivered = Some(before);
        self.release(out);
    }

    /// The room's history is gone: hands on what is held and stops waiting.
    fn give_up(&mut self, out: &mut Vec<Out>) {
        let Some(delivered) = self.delivered else {
            return;
        };
        for (seq, event) in std::mem::take(&mut self.held) {
            out.push(Out::Event(Box::new(event)));
            self.delivered = Some(seq.max(delivered));
        }
        self.delivered = self.delivered.map(|seq| seq.max(self.known));
        self.release(out);
    }

    /// Goes on from the first held event, leaving the gap before it to the members.
    fn skip_gap(&mut self, out: &mut Vec<Out>) {
        if let Some(first) = self.held.keys().next() {
            self.delivered = Some(first.prev());
            self.release(out);
        }
    }

    /// Hands on the held events that now follow in order, then `CLOSED` once it is due.
    fn release(&mut self, out: &mut Vec<Out>) {
        while let Some(next) = self.delivered.and_then(Seq::next) {
            let Some(event) = self.held.remove(&next) else {
                break;
            };
            self.delivered = Some(next);
            out.push(Out::Event(Box::new(event)));
        }
        let Some(last) = self.closing else { return };
        if self.delivered.is_none_or(|delivered| delivered >= last) {
            self.closing = None;
            out.push(Out::Closed(last));
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::{MessageText, NewEvent, RoomId, Sender, Timestamp};

    fn event(seq: i64) -> Event {
        let sender = Sender::parse("a").unwrap();
        let text = MessageText::parse(&format!("m{seq}")).unwrap();
        let talk = NewEvent::talk(RoomId::random(), sender, text);
        Event::stored(
            talk,
            Seq::new(seq).unwrap(),
            Uuid::nil(),
            Timestamp::from_millis(0),
        )
    }

    fn seqs(out: &[Out]) -> Vec<i64> {
        out.iter()
            .map(|item| match item {
                Out::Event(event) => event.seq.get(),
                Out::Closed(_) => -1,
            })
            .collect()
    }

    fn arrive(room: &mut HoldBack, seq: i64) -> Vec<i64> {
        let mut out = Vec::new();
        room.arrive(event(seq), &mut out);
        seqs(&out)
    }

    #[test]
    fn events_in_order_pass_and_an_early_one_waits_for_the_one_before_it() {
        let mut room = HoldBack::default();
        assert_eq!(arrive(&mut room, 9), [9]);
        assert_eq!(arrive(&mut room, 11), Vec::<i64>::new(), "10 is missing");
        assert_eq!(room.missing_after(), Some(Seq::new(9).unwrap()));
        assert_eq!(arrive(&mut room, 12), Vec::<i64>::new());
        assert_eq!(arrive(&mut room, 10), [10, 11, 12]);
        assert_eq!(room.missing_after(), None);
    }

    #[test]
    fn a_late_event_is_handed_on_again_for_members_to_skip() {
        let mut room = HoldBack::default();
        arrive(&mut room, 5);
        arrive(&mut room, 6);
        assert_eq!(arrive(&mut room, 5), [5]);
        assert_eq!(arrive(&mut room, 7), [7]);
    }

    #[test]
    fn a_stream_with_no_event_yet_starts_where_storage_is() {
        let mut room = HoldBack::default();
        room.stored_up_to(Seq::new(6).unwrap());
        assert_eq!(room.missing_after(), None);
        assert_eq!(arrive(&mut room, 8), Vec::<i64>::new(), "7 is missing");
        assert_eq!(room.missing_after(), Some(Seq::new(6).unwrap()));
    }

    #[test]
    fn a_gap_that_outlasts_the_bound_is_left_to_the_members() {
        let mut room = HoldBack::default();
        arrive(&mut room, 1);
        for seq in 3..3 + MAX_HELD as i64 {
            assert!(arrive(&mut room, seq).is_empty());
        }
        let released = arrive(&mut room, 3 + MAX_HELD as i64);
        assert_eq!(released.len(), MAX_HELD + 1, "every held event, in order");
        assert_eq!(released[0], 3);
        assert_eq!(arrive(&mut room, 4 + MAX_HELD as i64).len(), 1);
    }

    #[test]
    fn storage_reveals_what_no_later_event_would() {
        let mut room = HoldBack::default();
        arrive(&mut room, 3);
        room.stored_up_to(Seq::new(3).unwrap());
        assert_eq!(room.missing_after(), None);
        room.stored_up_to(Seq::new(5).unwrap());
        assert_eq!(room.missing_after(), Some(Seq::new(3).unwrap()));
        assert_eq!(arrive(&mut room, 4), [4]);
        assert_eq!(arrive(&mut room, 5), [5]);
        assert_eq!(room.missing_after(), None);
    }

    #[test]
    fn closed_follows_the_rooms_last_event() {
        let mut room = HoldBack::default();
        arrive(&mut room, 1);
        let mut out = Vec::new();
        room.close(Seq::new(3).unwrap(), &mut out);
        assert!(out.is_empty(), "2 and 3 come first");
        assert_eq!(arrive(&mut room, 3), Vec::<i64>::new());
        assert_eq!(arrive(&mut room, 2), [2, 3, -1]);

        let mut idle = HoldBack::default();
        let mut out = Vec::new();
        idle.close(Seq::new(8).unwrap(), &mut out);
        assert_eq!(seqs(&out), [-1], "nothing was ever handed on here");
    }

    #[test]
    fn history_that_is_gone_is_given_up_and_what_is_held_handed_on() {
        let mut room = HoldBack::default();
        arrive(&mut room, 1);
        arrive(&mut room, 4);
        let mut out = Vec::new();
        room.close(Seq::new(5).unwrap(), &mut out);
        room.storage_ends(None, &mut out);
        assert_eq!(seqs(&out), [4, -1]);
        assert_eq!(room.missing_after(), None);
    }

    #[test]
    fn a_seq_claimed_beyond_what_storage_holds_is_dropped() {
        let mut room = HoldBack::default();
        arrive(&mut room, 1);
        assert!(arrive(&mut room, 1_000_000).is_empty());
        assert_eq!(room.missing_after(), Some(Seq::new(1).unwrap()));
        let mut out = Vec::new();
        room.storage_ends(Some(Seq::new(1).unwrap()), &mut out);
        assert!(out.is_empty(), "the claim is not handed on");
        assert_eq!(room.missing_after(), None);
        assert_eq!(arrive(&mut room, 2), [2], "the room goes on");
    }

    #[test]
    fn nothing_overflows_at_the_largest_seq() {
        let mut room = HoldBack::default();
        assert_eq!(arrive(&mut room, i64::MAX), [i64::MAX]);
        assert_eq!(arrive(&mut room, i64::MAX), [i64::MAX]);
        room.stored_up_to(Seq::MAX);
        assert_eq!(room.missing_after(), None);
    }

    #[test]
    fn a_gap_storage_no_longer_holds_is_stepped_over() {
        let mut order = HoldBack::default();
        let mut out = Vec::new();
        order.arrive(event(1), &mut out);
        order.arrive(event(5), &mut out);
        order.arrive(event(7), &mut out);
        assert_eq!(seqs(&out), [1]);
        assert_eq!(order.missing_after(), Some(Seq::new(1).unwrap()));

        out.clear();
        order.storage_resumes_at(Seq::new(6).unwrap(), &mut out);
        assert_eq!(
            seqs(&out),
            [5],
            "what was held before it goes on, then what follows"
        );
        order.arrive(event(6), &mut out);
        assert_eq!(seqs(&out), [5, 6, 7]);
        assert_eq!(order.missing_after(), None);
    }
}
