//! The domain of ferroflow: ids, names, limits and validation, the MLflow search filter parser, artifact
//! paths, the store traits and the services that drive them.
//!
//! This crate does no I/O: it knows no SQL, no HTTP and no file system. Stores and the server depend on it,
//! never the other way round.

pub mod artifact_path;
pub mod auth;
pub mod error;
pub mod eval_datasets;
pub mod fernet;
pub mod filter;
pub mod ids;
pub mod logged_model_filter;
pub mod logged_models;
pub mod model;
pub mod registry;
pub mod registry_filter;
pub mod scorers;
pub mod service;
pub mod store;
pub mod trace_filter;
pub mod trace_json;
pub mod trace_spans;
pub mod traces;
pub mod validation;
pub mod webhooks;

pub use error::{Error, Result};
