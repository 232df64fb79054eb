//! One integration binary: the suite ([`suite`]) against a real server on SQLite, and the
//! tests that always run on PostgreSQL with real processes, once: several instances over Redis
//! and the write path under network faults. `tests/api_postgres.rs` runs the suite again on
//! PostgreSQL.

/// The storage this binary runs the suite on.
pub const BACKEND: helpers::Backend = helpers::Backend::Sqlite;

mod cluster;
mod durability;
mod faults;
mod heartbeats;
mod migrations;
mod resp;
mod suite;
mod write_faults;

use suite::{helpers, process, test_database};
