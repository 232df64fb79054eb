//! A multi-room chat service: rooms over REST, live chat over a WebSocket, every event stored
//! before anyone sees it.
//!
//! # A tour
//!
//! - [`config`]: settings with defaults in code, overridden by flags and environment variables.
//! - [`startup`]: binds the listener, builds [`state::AppState`] and runs until shut down;
//!   [`shutdown`] is the signal that starts the drain.
//! - [`domain`]: validated types (`RoomId`, `RoomName`, `Sender`, `MessageText`, `Event`).
//!   Bad input is refused at their `parse` and cannot reach anything below.
//! - [`http`]: one module per REST resource, plus [`http::page`], which serves the web chat
//!   page from `web/` (built into the binary); [`error`] maps every failure once to
//!   `application/problem+json`.
//! - [`ws`]: the WebSocket wire format ([`ws::protocol`]) and the per-connection loop
//!   ([`ws::session`]).
//! - [`hub`]: who is in which room on this instance, and fan-out; [`hub::sequencer`] is the
//!   single writer that stores events in batches and hands them to fan-out in order.
//! - [`store`]: the storage trait and its SQLite backend.
//! - [`metrics`], [`telemetry`], [`openapi`]: operations and documentation.
//!
//! # How a TALK flows
//!
//! 1. The session task parses the frame into a `ClientFrame` (or answers with an `ERROR`),
//!    checks the session entered the room under that sender, and queues a `NewEvent` with
//!    the sequencer without waiting for it.
//! 2. The sequencer takes everything queued since its last commit, stores it in one
//!    transaction (each event gets its room's next `seq`), then publishes each stored event to
//!    the hub in `seq` order.
//! 3. The hub serializes the event once and `try_send`s the same bytes to every member's
//!    bounded queue. A member whose queue is full is signalled to close with 1013.
//! 4. Each session task drains its queue to its socket, skipping any `seq` it already sent
//!    while replaying history for a resume.

pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod openapi;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod ws;
