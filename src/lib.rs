//! A multi-room chat service: rooms over REST, live chat over a WebSocket, every event stored
//! before anyone sees it.
//!
//! # A tour
//!
//! - [`config`]: settings with defaults in code, overridden by flags and environment variables.
//!   A leaf: it needs nothing else of the crate.
//! - [`startup`]: binds the listener, builds [`state::AppState`] and runs until shut down;
//!   [`shutdown`] is the signal that starts the drain.
//! - [`domain`]: validated types (`RoomId`, `RoomName`, `Sender`, `MessageText`, `Event`).
//!   Bad input is refused at their `parse` and cannot reach anything below.
//! - [`http`]: one module per REST resource, plus [`http::page`], which serves the web chat
//!   page from `web/` (built into the binary); [`error`] maps every failure once to
//!   `application/problem+json`.
//! - [`ws`]: the WebSocket endpoints, `/ws/chat` (JSON frames) and `/ws/stomp` (STOMP), each
//!   also over SockJS. [`ws::upgrade`] takes each upgrade over from HTTP, so one task per
//!   connection owns its TCP stream: one session loop for every framing, the framing being
//!   the part that varies (`/ws/chat`'s [`ws::protocol`] or STOMP's frames, which become the
//!   same chat frames and subscriptions), and a plain table of the rooms it reads, which it
//!   leaves however it ends.
//! - [`clients`]: who a client is for per-client limits: its address behind trusted proxies,
//!   the cap on its WebSocket connections, and its frame rate.
//! - [`hub`]: who is in which room on this instance, and fan-out to their queues.
//! - [`writer`]: the one task that stores this instance's events, in group-commit batches, and
//!   hands them to fan-out.
//! - [`cluster`]: several instances over Redis: what each stores reaches the members of every
//!   instance, each room's events put back in `seq` order, gaps filled from storage.
//! - [`liveness`]: this instance's heartbeat, and the LEAVEs of instances that died.
//! - [`store`]: reads on a pool, writes on the writer's own connection with deadlines, the
//!   heartbeat on a connection of its own; how a batch is stored is written once, and each
//!   backend (SQLite, PostgreSQL) supplies only its SQL.
//! - [`metrics`], [`telemetry`], [`openapi`]: operations and documentation; [`memory`]
//!   gives what a burst of connections freed back to the system.
//!
//! Dependencies point one way: `http` and `ws` use `writer` and `hub`; `cluster` uses `hub`
//! and `store`; `writer` uses `hub` (its `Fanout`) and `store`; `liveness` uses `writer` and
//! `store`; `hub`, `store` and everything else use `domain`, which uses nothing of the crate.
//!
//! # How a TALK flows
//!
//! 1. The session task reads a frame from its socket only once the writer has room for what
//!    it may append (backpressure), counts it against the rate limit, parses it into a
//!    `ClientFrame` (or answers with an `ERROR`), checks the session entered the room under
//!    that sender, and queues a `NewEvent` with the writer without waiting for it.
//! 2. The writer takes everything queued since its last commit and stores it in one
//!    transaction (the database gives each event its room's next `seq`, whichever instance
//!    stores it); if the COMMIT's answer is lost, it asks storage whether it landed before
//!    anyone hears of it. It answers each append, then publishes each stored event to the
//!    hub; with several instances, to the cluster, which also publishes it on Redis and
//!    orders it with the other instances' events.
//! 3. The hub serializes the event once and `try_send`s the same bytes to every member's
//!    queue, bounded in events and in bytes. A member whose queue is full is signalled to
//!    close with 1013.
//! 4. Each session task drains its queue in `seq` order and writes what one turn of its loop
//!    gathered in one write (a STOMP subscription's MESSAGE is its own head, then a tail
//!    the event's STOMP readers share): its room table says whether each event is the next one, one it
//!    sent already, or one to read from storage after a gap (a resume with `lastSeq` reads
//!    that way, one bounded page at a time).

pub mod clients;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod hub;
pub mod identity;
pub mod liveness;
pub mod memory;
pub mod metrics;
pub mod openapi;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod writer;
pub mod ws;
