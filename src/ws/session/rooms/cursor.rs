//! A session's cursor in one room's stream of events: what it has sent, what it knows is stored,
//! and what to do with each event that arrives.

use crate::domain::Seq;

/// What to do with a live event of a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It is the next one in `seq` order: send it.
    Deliver,
    /// Skip it: it was sent already (a duplicate), or it is not for this session (a room it
    /// is not in, or its own LEAVE and what follows).
    Skip,
    /// It is ahead of what may be sent now (a gap before it, a replay still running, an ENTER
    /// or LEAVE awaiting its outcome). It is not sent now: the catch-up from storage sends it
    /// in order, since every event is stored before it is published.
    Hold,
}

/// The newest seq sent to the client in order, and the newest seq known to be stored. The
/// events between the two must still be read from storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    delivered: Option<Seq>,
    seen: Seq,
}

impl Cursor {
    /// Nothing sent yet and no place to start from: events wait until [`Cursor::anchor`].
    pub fn unanchored() -> Self {
        Self {
            delivered: None,
            seen: Seq::ZERO,
        }
    }

    pub fn live(&mut self, seq: Seq) -> Decision {
        let Some(delivered) = self.delivered else {
            return self.hold(seq);
        };
        if seq <= delivered {
            return Decision::Skip;
        }
        self.seen = self.seen.max(seq);
        if delivered.next() == Some(seq) && self.seen == seq {
            self.delivered = Some(seq);
            return Decision::Deliver;
        }
        Decision::Hold
    }

    /// Notes a live event that may not be sent now; it is read from storage later.
    pub fn hold(&mut self, seq: Seq) -> Decision {
        self.seen = self.seen.max(seq);
        Decision::Hold
    }

    /// Whether every event up to `seq` was sent.
    pub fn delivered_through(&self, seq: Seq) -> bool {
        self.delivered.is_some_and(|delivered| delivered >= seq)
    }

    /// The seq a catch-up from storage must read after, when events are known to lie beyond it.
    pub fn behind(&self) -> Option<Seq> {
        self.delivered.filter(|delivered| *delivered < self.seen)
    }

    /// A stored event read by a catch-up: true when it is new to the client, which then has it.
    pub fn replayed(&mut self, seq: Seq) -> bool {
        match self.delivered {
            Some(delivered) if seq > delivered => {
                self.delivered = Some(seq);
                self.seen = self.seen.max(seq);
                true
            }
            _ => false,
        }
    }

    /// Sends everything after `after` again (an ENTER with `lastSeq` in a room already entered).
    pub fn rewind(&mut self, after: Seq) {
        if let Some(delivered) = self.delivered {
            self.seen = self.seen.max(delivered);
            self.delivered = Some(delivered.min(after));
        }
    }

    /// The session's ENTER was stored at `enter_seq`. With a `lastSeq`, start after it, counting
    /// one past the newest event as the newest; without, start right before the ENTER. What was
    /// held meanwhile is read from storage, in order.
    pub fn anchor(&mut self, enter_seq: Seq, resume_after: Option<Seq>) {
        let before = enter_seq.prev();
        self.delivered = Some(resume_after.map_or(before, |after| after.min(before)));
        self.seen = self.seen.max(before);
    }

    /// Starts right after `after` (a subscription that replays from there, or starts at the
    /// room's newest event). What was held meanwhile is read from storage, in order.
    pub fn start_after(&mut self, after: Seq) {
        self.delivered = Some(after);
        self.seen = self.seen.max(after);
    }

    pub fn is_anchored(&self) -> bool {
        self.delivered.is_some()
    }

    /// The newest seq sent, in order.
    pub fn position(&self) -> Option<Seq> {
        self.delivered
    }

    /// Storage has nothing after what was sent. Whatever later seq was seen is not stored
    /// (live events are stored before anyone sees them, so a claim storage does not back was
    /// never true): forget it, and deliver the next event storage does hold.
    pub fn storage_ends_here(&mut self) {
        self.seen = self.delivered.unwrap_or(Seq::ZERO);
    }

    /// Counts everything through `seq` as sent: the room was deleted after it and its history
    /// is gone, so nothing more can be read.
    pub fn skip_through(&mut self, seq: Seq) {
        if let Some(delivered) = self.delivered {
            self.delivered = Some(delivered.max(seq));
            self.seen = self.seen.max(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(raw: i64) -> Seq {
        Seq::new(raw).unwrap()
    }

    fn anchored_after(last: i64) -> Cursor {
        let mut cursor = Cursor::unanchored();
        cursor.anchor(seq(last + 1), None);
        cursor
    }

    #[test]
    fn the_next_event_is_delivered_and_an_old_one_skipped() {
        let mut cursor = anchored_after(4);
        assert_eq!(cursor.live(seq(5)), Decision::Deliver);
        assert_eq!(cursor.live(seq(5)), Decision::Skip);
        assert_eq!(cursor.live(seq(3)), Decision::Skip);
        assert_eq!(cursor.live(seq(6)), Decision::Deliver);
        assert_eq!(cursor.behind(), None);
    }

    #[test]
    fn an_event_after_a_gap_is_held_and_the_gap_read_from_storage() {
        let mut cursor = anchored_after(4);
        assert_eq!(cursor.live(seq(7)), Decision::Hold);
        assert_eq!(cursor.behind(), Some(seq(4)));
        assert_eq!(
            cursor.live(seq(5)),
            Decision::Hold,
            "nothing jumps the catch-up"
        );
        assert!(cursor.replayed(seq(5)) && cursor.replayed(seq(6)) && cursor.replayed(seq(7)));
        assert_eq!(cursor.behind(), None);
        assert_eq!(cursor.live(seq(7)), Decision::Skip);
        assert_eq!(cursor.live(seq(8)), Decision::Deliver);
    }

    #[test]
    fn unanchored_everything_waits_and_the_anchor_decides_what_is_read() {
        let mut cursor = Cursor::unanchored();
        assert_eq!(cursor.live(seq(13)), Decision::Hold);
        assert_eq!(cursor.live(seq(12)), Decision::Hold);
        assert_eq!(cursor.behind(), None, "nothing is read before the anchor");
        cursor.anchor(seq(12), None);
        assert_eq!(
            cursor.behind(),
            Some(seq(11)),
            "its own ENTER and what came after"
        );
        assert!(cursor.replayed(seq(12)) && cursor.replayed(seq(13)));
        assert_eq!(cursor.live(seq(14)), Decision::Deliver);
    }

    #[test]
    fn a_resume_starts_after_last_seq_and_reads_up_to_the_enter() {
        let mut cursor = Cursor::unanchored();
        cursor.hold(seq(11));
        cursor.anchor(seq(10), Some(seq(3)));
        assert_eq!(cursor.behind(), Some(seq(3)));
        for s in 4..=11 {
            assert!(cursor.replayed(seq(s)));
        }
        assert_eq!(cursor.behind(), None);
        assert_eq!(cursor.live(seq(12)), Decision::Deliver);
    }

    #[test]
    fn a_last_seq_past_the_newest_event_counts_as_the_newest() {
        for last_seq in [seq(1000), Seq::MAX] {
            let mut cursor = Cursor::unanchored();
            cursor.anchor(seq(4), Some(last_seq));
            assert_eq!(cursor.behind(), None);
            assert_eq!(cursor.live(seq(4)), Decision::Deliver);
            assert_eq!(cursor.live(seq(5)), Decision::Deliver);
        }
    }

    #[test]
    fn rewinding_resends_from_there_and_holds_live_events_meanwhile() {
        let mut cursor = anchored_after(9);
        cursor.rewind(Seq::MAX);
        assert_eq!(
            cursor.behind(),
            None,
            "rewinding past the end changes nothing"
        );
        cursor.rewind(seq(6));
        assert_eq!(cursor.behind(), Some(seq(6)));
        assert_eq!(cursor.live(seq(10)), Decision::Hold);
        assert!(cursor.replayed(seq(7)));
        assert!(!cursor.replayed(seq(7)));
    }

    #[test]
    fn a_seq_storage_does_not_hold_is_forgotten() {
        let mut cursor = anchored_after(4);
        assert_eq!(cursor.live(seq(1_000_000)), Decision::Hold);
        cursor.storage_ends_here();
        assert_eq!(cursor.behind(), None);
        assert_eq!(
            cursor.live(seq(5)),
            Decision::Deliver,
            "the room is not silenced"
        );
    }

    #[test]
    fn a_deleted_rooms_history_that_is_gone_is_skipped() {
        let mut cursor = anchored_after(4);
        cursor.skip_through(seq(9));
        assert_eq!(cursor.behind(), None);
        assert!(cursor.delivered_through(seq(9)));
    }

    #[test]
    fn nothing_overflows_at_the_largest_seq() {
        let mut cursor = anchored_after(i64::MAX - 1);
        assert_eq!(cursor.live(Seq::MAX), Decision::Deliver);
        assert_eq!(cursor.live(Seq::MAX), Decision::Skip);
        let mut resumed = Cursor::unanchored();
        resumed.anchor(Seq::MAX, Some(Seq::MAX));
        assert_eq!(resumed.behind(), None);
        assert_eq!(resumed.live(Seq::MAX), Decision::Deliver);
    }
}
