//! The store test suite: every case runs on every backend (`sqlite::`, `postgres::`, `mysql::`), each on a
//! fresh database made for it and dropped after it.
//!
//! PostgreSQL and MySQL/MariaDB are the servers of `FERROFLOW_TEST_POSTGRES` and `FERROFLOW_TEST_MYSQL`
//! (default `postgresql://postgres@127.0.0.1:5432/test` and `mysql://root@127.0.0.1:3306/test`, an admin
//! connection that may create databases). A server that cannot be reached is skipped with a loud message
//! on stderr, unless `CI=true`, where it fails the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

#[macro_use]
mod backends;
mod auth;
mod eval_datasets;
mod gc;
mod legacy_import;
mod logged_models;
mod registry;
mod schema;
mod scorers;
mod traces;
mod tracking;
mod webhooks;
