//! The API suite of `tests/api` once more, on PostgreSQL: every rule of the contract holds on
//! either backend. (The cluster tests, which always run on PostgreSQL, run once, there.)

/// The storage this binary runs the suite on.
pub const BACKEND: helpers::Backend = helpers::Backend::Postgres;

#[path = "api/backpressure.rs"]
mod backpressure;
#[path = "api/concurrency.rs"]
mod concurrency;
#[path = "api/connections.rs"]
mod connections;
#[path = "api/deletion.rs"]
mod deletion;
#[path = "api/docs.rs"]
mod docs;
#[path = "api/fuzz.rs"]
mod fuzz;
#[path = "api/helpers.rs"]
mod helpers;
#[path = "api/history.rs"]
mod history;
#[path = "api/identity.rs"]
mod identity;
#[path = "api/membership_failures.rs"]
mod membership_failures;
#[path = "api/operations.rs"]
mod operations;
#[path = "api/persistence.rs"]
mod persistence;
#[path = "api/presence.rs"]
mod presence;
#[path = "api/process.rs"]
mod process;
#[path = "api/rate_limits.rs"]
mod rate_limits;
#[path = "api/resume.rs"]
mod resume;
#[path = "api/rooms.rs"]
mod rooms;
#[path = "api/shutdown.rs"]
mod shutdown;
#[path = "api/slow_consumer.rs"]
mod slow_consumer;
#[path = "api/storage_failure.rs"]
mod storage_failure;
#[path = "support/postgres.rs"]
mod test_database;
#[path = "api/web_page.rs"]
mod web_page;
#[path = "api/ws_connection.rs"]
mod ws_connection;
#[path = "api/ws_errors.rs"]
mod ws_errors;
#[path = "api/ws_events.rs"]
mod ws_events;
