//! Every interleaving of one member's ENTERs and LEAVEs (with and without `lastSeq`) with
//! live events and the pages of its catch-ups: the member gets every event it is owed (from
//! its ENTER, or right after its `lastSeq`, to right before its LEAVE, for every time it
//! entered), in `seq` order, and none twice but what a `lastSeq` asked for again.

use std::collections::{BTreeSet, VecDeque};

use proptest::prelude::*;

use super::{Decision, Done, Reader, RoomTable, Target};
use crate::domain::{RoomId, Sender, Seq};

#[derive(Debug, Clone)]
enum Step {
    /// The member sends ENTER, with this `lastSeq` (taken modulo a little past the room's
    /// newest event) or none.
    Enter(Option<u16>),
    Leave,
    /// Its ENTER or LEAVE is stored: its outcome is settled, and its event queued.
    Store,
    /// Someone else's TALK is stored and queued.
    Other,
    /// The next queued event reaches the session.
    Forward,
    /// A catch-up reads a page of this many events.
    Page(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => prop::option::of(any::<u16>()).prop_map(Step::Enter),
        2 => Just(Step::Leave),
        3 => Just(Step::Store),
        3 => Just(Step::Other),
        4 => Just(Step::Forward),
        4 => (1u8..8).prop_map(Step::Page),
    ]
}

enum Own {
    Enter(Option<Seq>),
    Leave,
}

struct Run {
    table: RoomTable,
    room: RoomId,
    stored: i64,
    queue: VecDeque<i64>,
    own: Option<Own>,
    /// What the member is owed: each membership's first seq and the seq it stops before.
    owed: Vec<(i64, Option<i64>)>,
    delivered: Vec<i64>,
    /// Where in `delivered` an ENTER with `lastSeq` was stored, and its `lastSeq`: from there
    /// on, what follows it may come again.
    replays: Vec<(usize, i64)>,
}

fn seq(raw: i64) -> Seq {
    Seq::new(raw).expect("a seq")
}

fn alice() -> Sender {
    Sender::parse("alice").expect("a sender")
}

impl Run {
    fn new(stored: i64) -> Self {
        Self {
            table: RoomTable::default(),
            room: RoomId::random(),
            stored,
            queue: VecDeque::new(),
            own: None,
            owed: Vec::new(),
            delivered: Vec::new(),
            replays: Vec::new(),
        }
    }

    fn take(&mut self, step: Step) {
        match step {
            Step::Enter(last) if self.own.is_none() && self.table.sender(self.room).is_none() => {
                let past_the_end = u16::try_from(self.stored + 3).unwrap_or(u16::MAX);
                let last =
                    last.map(|last| Seq::new(i64::from(last % past_the_end)).expect("a seq"));
                self.table.enter(self.room, alice(), last, true);
                self.own = Some(Own::Enter(last));
            }
            Step::Leave
                if self.own.is_none() && self.table.check(self.room, &alice(), "LEAVE").is_ok() =>
            {
                self.table.leaving(self.room);
                self.own = Some(Own::Leave);
            }
            Step::Store => self.store(),
            Step::Other => {
                self.stored += 1;
                self.queue.push_back(self.stored);
            }
            Step::Forward => self.forward(),
            Step::Page(size) => self.page(i64::from(size)),
            Step::Enter(_) | Step::Leave => {}
        }
    }

    fn store(&mut self) {
        let Some(own) = self.own.take() else { return };
        self.stored += 1;
        let at = self.stored;
        match own {
            Own::Enter(last) => {
                self.table.entered(self.room, seq(at));
                let before = at - 1;
                let start = last.map_or(before, |last| last.get().min(before));
                self.owed.push((start + 1, None));
                if last.is_some() {
                    self.replays.push((self.delivered.len(), start));
                }
            }
            Own::Leave => {
                self.table.left(self.room, seq(at));
                if let Some((_, until)) = self.owed.last_mut() {
                    *until = Some(at);
                }
            }
        }
        self.queue.push_back(at);
        self.done();
    }

    fn forward(&mut self) {
        let Some(at) = self.queue.pop_front() else {
            return;
        };
        if self.table.live(self.room, seq(at)) == Decision::Deliver {
            let targets = self.table.targets(self.room, seq(at));
            self.received(at, &targets);
        }
        self.done();
    }

    fn page(&mut self, size: i64) {
        let Some(after) = self.table.behind_in(self.room) else {
            return;
        };
        let page: Vec<i64> = (after.get() + 1..=self.stored)
            .take(size as usize)
            .collect();
        if page.is_empty() {
            self.table.give_up(self.room);
        }
        for at in page {
            let targets = self.table.replayed(self.room, seq(at));
            self.received(at, &targets);
        }
        self.done();
    }

    fn received(&mut self, at: i64, targets: &[Target]) {
        let member = targets
            .iter()
            .filter(|t| t.reader == Reader::Member)
            .count();
        assert!(member <= 1, "seq {at} went to {member} member feeds");
        if member == 1 {
            self.delivered.push(at);
        }
    }

    fn done(&mut self) {
        if self.table.done(self.room) == Done::Left {
            self.table.remove(self.room);
        }
    }

    /// Stores what is pending, forwards what is queued, reads what is behind.
    fn settle(&mut self) {
        self.store();
        while !self.queue.is_empty() {
            self.forward();
        }
        for _ in 0..10_000 {
            if self.table.behind_in(self.room).is_none() {
                return;
            }
            self.page(7);
        }
        panic!("the catch-up never ended");
    }

    /// Checks that between two replays the member gets events in `seq` order, and that an
    /// event comes twice only when a replay asked for it again.
    fn check_order(&self) -> Result<(), String> {
        let mut bounds: Vec<usize> = self.replays.iter().map(|(at, _)| *at).collect();
        bounds.push(self.delivered.len());
        let mut from = 0;
        for to in bounds {
            let stretch = &self.delivered[from..to];
            if !stretch.windows(2).all(|pair| pair[0] < pair[1]) {
                return Err(format!(
                    "out of order or twice: {stretch:?} in {:?}",
                    self.delivered
                ));
            }
            from = to;
        }
        for (i, at) in self.delivered.iter().enumerate() {
            let Some(first) = self.delivered[..i].iter().position(|other| other == at) else {
                continue;
            };
            let asked = self
                .replays
                .iter()
                .any(|(mark, after)| (first + 1..=i).contains(mark) && after < at);
            if !asked {
                return Err(format!("{at} twice, unasked, in {:?}", self.delivered));
            }
        }
        Ok(())
    }

    fn owed(&self) -> BTreeSet<i64> {
        self.owed
            .iter()
            .flat_map(|(from, until)| *from..until.unwrap_or(self.stored + 1))
            .filter(|at| *at >= 1)
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn a_member_gets_what_it_is_owed_once_in_order(
        stored in 0i64..40,
        steps in prop::collection::vec(step(), 0..60),
    ) {
        let mut run = Run::new(stored);
        for step in steps {
            run.take(step);
        }
        run.settle();
        if let Err(why) = run.check_order() {
            return Err(TestCaseError::fail(why));
        }
        let delivered: BTreeSet<i64> = run.delivered.iter().copied().collect();
        prop_assert_eq!(delivered, run.owed());
    }
}

/// The interleaving that found it: ENTER with `lastSeq: 0` into a busy room, LEAVE during the
/// replay, ENTER again without `lastSeq`.
#[test]
fn entering_again_during_the_replay_of_the_first_enter_sends_nothing_twice() {
    let mut run = Run::new(3_000);
    for step in [
        Step::Enter(Some(0)),
        Step::Store,
        Step::Page(100),
        Step::Leave,
        Step::Store,
        Step::Enter(None),
        Step::Store,
        Step::Forward,
        Step::Forward,
        Step::Forward,
    ] {
        run.take(step);
    }
    run.settle();
    let expected: Vec<i64> = (1..3_002).chain([3_003]).collect();
    assert_eq!(run.delivered, expected);
}
