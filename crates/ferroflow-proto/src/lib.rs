//! MLflow wire types: the JSON messages of the REST API and the error code table.
//!
//! This crate owns the shape of every byte that crosses the wire. It knows nothing of storage, HTTP
//! frameworks or validation rules; it depends on serde only.

pub mod error_code;
pub mod eval_datasets;
pub mod lenient;
pub mod logged_models;
pub mod registry;
pub mod scorers;
pub mod traces;
pub mod tracking;
pub mod webhooks;

pub use error_code::{ErrorCode, ErrorResponse};
