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
//!   also over SockJS, in three layers: `transport` (the TCP stream, WebSocket and SockJS
//!   framing, how a connection closes), `dialect` (what frames mean: [`ws::dialect::chat`] and
//!   STOMP's, which become the same chat frames and subscriptions; no I/O) and `session` (one
//!   loop per connection, its room table, catch-ups, limits). [`ws::upgrade`] takes each
//!   upgrade over from HTTP and starts its session.
//! - [`clients`]: who a client is for per-client limits: its address behind trusted proxies,
//!   the cap on its WebSocket connections, and its frame rate.
//! - [`hub`]: who is in which room on this instance, and fan-out to their queues.
//! - [`writer`]: the one task that stores this instance's events, in group-commit batches, and
//!   hands them to fan-out.
//! - [`cluster`]: several instances over Redis: what each stores reaches the members of every
//!   instance, each room's events put back in `seq` order, gaps filled from storage.
//! - [`webhooks`]: stored events posted to admins' URLs, per room in `seq` order, signed as
//!   Standard Webhooks, from a stored position, by the one instance holding each one's lease.
//! - [`liveness`]: this instance's heartbeat, and the LEAVEs of instances that died.
//! - [`store`]: reads on a pool, writes on the writer's own connection with deadlines, the
//!   heartbeat on a connection of its own; how a batch is stored is written once, and each
//!   backend (SQLite, PostgreSQL) supplies only its SQL.
//! - [`metrics`], [`telemetry`], [`openapi`]: operations and documentation; [`memory`]
//!   gives what a burst of connections freed back to the system.
//!
//! # Layers
//!
//! A module uses only modules on floors below its own (`tests/layers.rs` checks every
//! `crate::` path in `src/` against this list, and `ws`'s own layers likewise):
//!
//! 1. `domain`, `config`, `shutdown`, `metrics`: they use nothing else of the crate.
//! 2. `store`, `hub`, `identity`, `telemetry`, `memory`
//! 3. `clients`, `writer`, `cluster`, `webhooks`
//! 4. `liveness`, `state`, `error`
//! 5. `ws`
//! 6. `http`
//! 7. `openapi`
//! 8. `startup`
//!
//! # How a TALK flows
//!
//! 1. `ws/upgrade/` took the connection over from HTTP (admitting it in `admission.rs`, with
//!    the token checked in identity mode, `identity/verifier.rs`) and started its session,
//!    `ws/session/mod.rs`. The session reads
//!    a WebSocket message (`ws/transport/websocket/incoming.rs`; SockJS's array, `ws/transport/sockjs.rs`)
//!    only once the writer has room for what it may append (backpressure), counts it against
//!    the frame rate limit (`clients/frames.rs`), and has its dialect turn it into a
//!    `ClientFrame` (`ws/dialect/chat/parse.rs`; on STOMP a SEND's body, `ws/dialect/stomp/`), or
//!    answers with an `ERROR`.
//! 2. `ws/session/intake.rs` checks it against the session's rooms (`ws/session/rooms/`: did it
//!    enter under that sender?) and `ws/session/appends.rs` queues a `NewEvent` with the
//!    writer without waiting for it.
//! 3. The writer (`writer/group_commit/`) takes everything queued since its last commit and
//!    stores it in one transaction (`store/transaction/`, with `store/sqlite/` or
//!    `store/postgres/` supplying the SQL): the database gives each event its room's next
//!    `seq`, whichever instance stores it; if the COMMIT's answer is lost, storage is asked
//!    whether it landed before anyone hears of it. It answers every request of the batch, then
//!    hands each stored event to fan-out.
//! 4. Fan-out without Redis is the hub (`hub/mod.rs`): it serializes the event once and
//!    queues the same bytes for every member (`hub/queue.rs`: a lock around a `VecDeque`, never
//!    waited on), bounded in events and in bytes; a member whose queue is full is closed with
//!    1013. With Redis it is the
//!    cluster first (`cluster/mod.rs`): `cluster/publisher.rs` publishes it on the room's
//!    channel, each other instance's `cluster/subscriber.rs` receives it, and
//!    `cluster/sequencer.rs` puts it back in `seq` order with what else arrives (filling gaps
//!    from storage) before that instance's hub fans it out.
//! 5. Each member's session drains its queue (`ws/session/delivery.rs`): its room table says
//!    whether each event is the next one, one it sent already, or one to read from storage
//!    after a gap (`ws/session/catch_up.rs`, one bounded page at a time, as a resume with
//!    `lastSeq` does); the dialect frames it (the JSON itself, or a STOMP MESSAGE), and what
//!    one turn of the loop gathered goes out in one write (`ws/transport/websocket/mod.rs`).
//!
//! An EDIT, DELETE, REACT or UNREACT takes the same path as a TALK; in its transaction,
//! `store/transaction/changes.rs` checks it against the TALK it names and writes what it
//! changes (the TALK's text, its erasure, its reactions). `store/transaction/retention.rs`
//! erases what rooms keep no longer, between the writer's batches. Read markers and webhooks'
//! delivery positions (`webhooks/room.rs`) go with the writer's batches too.

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
pub mod webhooks;
pub mod writer;
pub mod ws;
