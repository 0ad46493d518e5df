//! Route tables: each area lists its (path, method router) rows; `lib.rs` mounts them.

pub mod artifacts;
pub mod auth;
pub mod eval_datasets;
pub mod logged_models;
pub mod meta;
pub mod otlp;
pub mod registry;
pub mod scorers;
pub mod traces;
pub mod tracking;
pub mod webhooks;
