//! One room as a session sees it: its membership, the readers on the connection and where
//! each stands, read through one cursor.

use std::collections::BTreeSet;

use bytestring::ByteString;

use super::cursor::Cursor;
use super::standing::Ruled;
use crate::domain::{Sender, Seq};

/// Who on the connection reads a room's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    /// The member itself (`/ws/chat`).
    Member,
    /// A STOMP subscription: its id, what every event it is sent starts with (the MESSAGE
    /// headers that name it; made once, shared with each delivery), and whether it takes the
    /// room's notices too.
    Subscription {
        id: ByteString,
        head: ByteString,
        notices: bool,
    },
}

/// Where one reader stands in its room.
#[derive(Debug)]
pub(super) struct Feed {
    pub(super) reader: Reader,
    /// It has had every event through this seq.
    pub(super) sent_through: Seq,
    /// It reads no event from this seq on (a member's own LEAVE).
    pub(super) until: Option<Seq>,
}

impl Feed {
    pub(super) fn wants(&self, seq: Seq) -> bool {
        seq > self.sent_through && self.until.is_none_or(|until| seq < until)
    }

    /// Whether it has had every event it will read.
    pub(super) fn finished(&self) -> bool {
        self.until
            .is_some_and(|until| self.sent_through >= until.prev())
    }
}

/// One event for one reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub reader: Reader,
    /// The member's own TALK in a room it entered with `"echo": false`: it got an `ACK`
    /// instead, so the event itself is not sent.
    pub muted: bool,
}

/// How the connection reads rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reading {
    /// A member reads the room it entered (`/ws/chat`).
    #[default]
    Members,
    /// Subscriptions read rooms; entering reads nothing (STOMP).
    Subscriptions,
}

/// The session's membership of a room.
#[derive(Debug)]
pub(super) struct Member {
    pub(super) sender: Sender,
    pub(super) phase: Phase,
    /// Whether its own TALKs come back to it in full (else as an `ACK`).
    pub(super) echo: bool,
    /// Its own TALKs, stored, whose events are not to be sent (echo off).
    pub(super) muted: BTreeSet<Seq>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Its ENTER is being stored. Live events wait for its seq: the session gets its own ENTER
    /// and what follows (with a `lastSeq`, a replay first), even when events of several
    /// instances arrive out of order. `closed` records a deletion (after that seq) to announce
    /// once the ENTER is known to have been stored.
    Entering {
        resume_after: Option<Seq>,
        closed: Option<Seq>,
    },
    Present,
    /// Its LEAVE is being stored; events still flow, and it stays if the LEAVE fails.
    Leaving,
    /// Its LEAVE was stored.
    Left,
}

#[derive(Debug)]
pub(super) struct Room {
    pub(super) member: Option<Member>,
    pub(super) feeds: Vec<Feed>,
    pub(super) cursor: Cursor,
    /// The room was deleted after this seq: `CLOSED` follows once every event through it has
    /// been sent.
    pub(super) closing: Option<Seq>,
    /// Where the session's identity stands under the room's rules.
    pub(super) ruled: Ruled,
}

impl Room {
    pub(super) fn new() -> Box<Self> {
        Box::new(Self {
            member: None,
            feeds: Vec::new(),
            cursor: Cursor::unanchored(),
            closing: None,
            ruled: Ruled::default(),
        })
    }

    pub(super) fn phase(&self) -> Option<Phase> {
        self.member.as_ref().map(|member| member.phase)
    }

    /// Where a catch-up must read after: only while a reader still wants what lies beyond.
    pub(super) fn behind(&self) -> Option<Seq> {
        let after = self.cursor.behind()?;
        let wanted = self
            .feeds
            .iter()
            .any(|feed| feed.until.is_none_or(|until| after < until.prev()));
        wanted.then_some(after)
    }

    /// A deleted room whose every event through its last has been sent.
    pub(super) fn closed(&self) -> bool {
        self.closing
            .is_some_and(|last| self.cursor.delivered_through(last))
    }

    /// Nobody here is in it or reads it any more.
    pub(super) fn abandoned(&self) -> bool {
        let member_gone = self
            .member
            .as_ref()
            .is_none_or(|member| member.phase == Phase::Left);
        member_gone && self.feeds.iter().all(Feed::finished)
    }

    /// The room was deleted after `last`: read up to there, then announce it.
    pub(super) fn close_after(&mut self, last: Seq) {
        self.cursor.hold(last);
        self.closing = Some(last);
    }

    /// The member reads the room from right after `start`. A member feed of an earlier
    /// membership may still be sending what came before its LEAVE (a replay the member left
    /// during, before it entered again): one that would overlap the new one merges into it,
    /// so no event goes to the member twice but what a `lastSeq` asked for again.
    pub(super) fn member_feed_after(&mut self, start: Seq) {
        let mut start = start;
        self.feeds.retain(|feed| {
            let overlaps = feed.reader == Reader::Member
                && feed.until.is_none_or(|until| start < until.prev());
            if overlaps {
                start = start.min(feed.sent_through);
            }
            !overlaps
        });
        if self
            .cursor
            .position()
            .is_some_and(|position| position > start)
        {
            self.cursor.rewind(start);
        }
        self.read_from(Reader::Member, start);
    }

    /// A reader that starts right after `start`.
    pub(super) fn read_from(&mut self, reader: Reader, start: Seq) {
        // Most rooms have one reader: room for one, not the four a Vec's first push takes.
        self.feeds.reserve_exact(1);
        self.feeds.push(Feed {
            reader,
            sent_through: start,
            until: None,
        });
    }

    /// The event at `seq` for each reader that wants it; each has it from now on.
    pub(super) fn targets(&mut self, seq: Seq) -> Vec<Target> {
        let mut targets = Vec::new();
        for feed in self.feeds.iter_mut().filter(|feed| feed.wants(seq)) {
            feed.sent_through = seq;
            let muted = feed.reader == Reader::Member
                && self
                    .member
                    .as_mut()
                    .is_some_and(|member| member.muted.remove(&seq));
            targets.push(Target {
                reader: feed.reader.clone(),
                muted,
            });
        }
        targets
    }
}
