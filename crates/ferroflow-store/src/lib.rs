//! All SQL of ferroflow: the MLflow 3.17 schema and the stores that read and write it, on SQLite,
//! PostgreSQL and MySQL/MariaDB.
//!
//! The tables are MLflow's own, so `mlflow server` and ferroflow serve the same database. Every value is
//! bound, never formatted into SQL; dynamic statements (search) are built with sea-query so they render for
//! each dialect. A write that touches several rows is one transaction. This crate knows no HTTP.

pub mod logged_model_search;
mod mysql;
mod postgres;
pub mod registry_search;
mod schema;
pub mod search;
mod sql;
mod sqlite;
pub mod trace_search;
mod uri;

pub use schema::{check_schema, upgrade_schema, SchemaState, UpgradeOutcome};
pub use search::Dialect;
pub use sql::{AuthOpenError, SqlAuthStore};
pub use sql::{
    DatasetImport, ExperimentImport, ImportError, LegacyDataset, LegacyExperiment, LegacyInput,
    LegacyMetric, LegacyRun, PoolSettings, RunImport, SqlStore, SCHEMA_REVISION,
};
pub use sql::{GcExperiment, GcLoggedModel, GcRun};
pub use uri::{BackendUri, ServerUri, UriError};

use ferroflow_core::eval_datasets::EvalDatasetStore;
use ferroflow_core::logged_models::LoggedModelStore;
use ferroflow_core::registry::RegistryStore;
use ferroflow_core::scorers::ScorerStore;
use ferroflow_core::store::TrackingStore;
use ferroflow_core::traces::TraceStore;
use ferroflow_core::webhooks::WebhookStore;
use std::path::Path;
use std::sync::Arc;

/// The stores of one backend, each behind its trait. They share the backend's connections.
#[derive(Clone)]
pub struct Stores {
    pub tracking: Arc<dyn TrackingStore>,
    pub logged_models: Arc<dyn LoggedModelStore>,
    pub traces: Arc<dyn TraceStore>,
    pub registry: Arc<dyn RegistryStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub eval_datasets: Arc<dyn EvalDatasetStore>,
    pub scorers: Arc<dyn ScorerStore>,
}

impl From<Arc<SqlStore>> for Stores {
    fn from(store: Arc<SqlStore>) -> Self {
        Self {
            tracking: store.clone(),
            logged_models: store.clone(),
            traces: store.clone(),
            registry: store.clone(),
            eval_datasets: store.clone(),
            scorers: store.clone(),
            webhooks: store,
        }
    }
}

/// Opens SQLite databases: `SqliteStore::open(path, root)` is [`SqlStore::open_sqlite`].
pub struct SqliteStore;

impl SqliteStore {
    /// Opens (creating if needed) the SQLite database at `path` with MLflow 3.17's schema.
    pub async fn open(path: &Path, default_artifact_root: &str) -> Result<SqlStore, OpenError> {
        SqlStore::open_sqlite(path, default_artifact_root).await
    }
}

/// Opens the stores named by `--backend-store-uri`, creating or checking the schema, with the default
/// pool settings.
pub async fn open_tracking_store(
    backend_store_uri: &str,
    default_artifact_root: &str,
) -> Result<Stores, OpenError> {
    let uri = BackendUri::parse(backend_store_uri)?;
    let store = SqlStore::open(&uri, default_artifact_root, &PoolSettings::default()).await?;
    Ok(Stores::from(Arc::new(store)))
}

/// Why a store could not be opened. Messages name the database with its password hidden.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Uri(#[from] UriError),
    #[error("invalid backend store uri option for {database}: {option}")]
    InvalidOption { database: String, option: String },
    #[error("cannot connect to database {database}: {source}")]
    Connect {
        database: String,
        source: sqlx::Error,
    },
    #[error(
        "database {database} is at alembic revision '{found}', but ferroflow serves MLflow 3.17 \
         (revision '{SCHEMA_REVISION}'); upgrade it with `mlflow db upgrade` of mlflow 3.17.2 first. \
         The database was left untouched"
    )]
    UnknownRevision { database: String, found: String },
    #[error(
        "database {database} has tables but no alembic_version: it is not an MLflow database. \
         The database was left untouched"
    )]
    NotMlflow { database: String },
    #[error("cannot create the schema in {database}: {source}")]
    Migrate {
        database: String,
        source: sqlx::Error,
    },
    #[error(
        "the schema created in {database} lacks tables ({missing}); the tables created were dropped"
    )]
    Incomplete { database: String, missing: String },
}
