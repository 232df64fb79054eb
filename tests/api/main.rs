//! One integration binary: each module covers one part of PROTOCOL.md against a real server,
//! here on SQLite; `tests/api_postgres.rs` runs the same modules on PostgreSQL.

/// The storage this binary runs the suite on.
pub const BACKEND: helpers::Backend = helpers::Backend::Sqlite;

mod backpressure;
mod cluster;
mod concurrency;
mod connections;
mod deletion;
mod docs;
mod faults;
mod fuzz;
mod helpers;
mod history;
mod identity;
mod membership_failures;
mod operations;
mod persistence;
mod presence;
mod process;
mod rate_limits;
mod resume;
mod rooms;
mod shutdown;
mod slow_consumer;
mod storage_failure;
#[path = "../support/postgres.rs"]
mod test_database;
mod web_page;
mod ws_connection;
mod ws_errors;
mod ws_events;
