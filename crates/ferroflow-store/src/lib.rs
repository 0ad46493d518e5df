//! All SQL of ferroflow: the MLflow 3.17 schema and the stores that read and write it.
//!
//! The tables are MLflow's own, so `mlflow server` and ferroflow serve the same database. Every value is
//! bound, never formatted into SQL; dynamic statements (search) are built with sea-query so they render for
//! each dialect. A write that touches several rows is one transaction.

pub mod logged_model_search;
pub mod search;
pub mod sqlite;
mod uri;

pub use sqlite::SqliteStore;
pub use uri::{BackendUri, UriError};

use ferroflow_core::logged_models::LoggedModelStore;
use ferroflow_core::store::TrackingStore;
use std::sync::Arc;

/// The stores of one backend, each behind its trait. They share the backend's connections.
#[derive(Clone)]
pub struct Stores {
    pub tracking: Arc<dyn TrackingStore>,
    pub logged_models: Arc<dyn LoggedModelStore>,
}

impl From<Arc<SqliteStore>> for Stores {
    fn from(store: Arc<SqliteStore>) -> Self {
        Self {
            tracking: store.clone(),
            logged_models: store,
        }
    }
}

/// Opens the stores named by `--backend-store-uri`, creating or checking the schema.
pub async fn open_tracking_store(
    backend_store_uri: &str,
    default_artifact_root: &str,
) -> Result<Stores, OpenError> {
    match BackendUri::parse(backend_store_uri)? {
        BackendUri::Sqlite { path } => {
            let store = SqliteStore::open(&path, default_artifact_root).await?;
            Ok(Stores::from(Arc::new(store)))
        }
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Uri(#[from] UriError),
    #[error(transparent)]
    Sqlite(#[from] sqlite::SqliteOpenError),
}
