//! The suite of `tests/api` once more, on PostgreSQL: every rule of the contract holds on
//! either backend. (The cluster and write-fault tests, which always run on PostgreSQL, run
//! once, in `tests/api`.)

/// The storage this binary runs the suite on.
pub const BACKEND: helpers::Backend = helpers::Backend::Postgres;

#[path = "api/suite.rs"]
mod suite;

use suite::{helpers, process, test_database};
