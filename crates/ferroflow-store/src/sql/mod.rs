//! The SQL store: `TrackingStore` and `LoggedModelStore` written once for SQLite, PostgreSQL and MySQL.
//!
//! [`SqlStore`] holds the connections of one database ([`connection::Pools`]); its statements are static
//! SQL rendered per dialect or sea-query statements (search), and the few statements whose syntax differs
//! between dialects (upserts, `RETURNING`, row order) are chosen with a `match` on the dialect next to
//! each other. Opening a database and creating its schema is per backend: `crate::sqlite`,
//! `crate::postgres`, `crate::mysql`.

mod auth;
pub(crate) mod connection;
mod eval_datasets;
mod gc;
mod legacy_import;
mod logged_models;
mod metric_sampling;
mod registry;
mod scorers;
pub(crate) mod sqlite_readers;
pub(crate) mod sqlite_writer;
mod traces;
mod tracking;
mod webhooks;

use crate::search::Dialect;
use crate::uri::{BackendUri, ServerUri};
use crate::OpenError;
pub use auth::{AuthOpenError, SqlAuthStore};
use connection::Pools;
pub use gc::{GcExperiment, GcLoggedModel, GcRun};
pub use legacy_import::{
    DatasetImport, ExperimentImport, ImportError, LegacyDataset, LegacyExperiment, LegacyInput,
    LegacyMetric, LegacyRun, RunImport,
};
use std::path::Path;
use std::time::Duration;

/// The alembic revision of MLflow 3.17.2, the only one ferroflow serves.
pub const SCHEMA_REVISION: &str = "dc11669786a5";

/// The tracking and logged model store on one SQL database.
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) pools: Pools,
    pub(crate) default_artifact_root: String,
}

/// Connection pool limits for PostgreSQL and MySQL (SQLite has its own fixed layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections open at most at once.
    pub max_connections: u32,
    /// How long a request waits for a connection (also while the database is unreachable) before it
    /// answers TEMPORARILY_UNAVAILABLE.
    pub acquire_timeout: Duration,
    /// The longest a statement may run; the database cancels it after that.
    pub statement_timeout: Duration,
    /// Idle connections are closed after this long.
    pub idle_timeout: Duration,
    /// Connections are replaced after this long (load balancers and failovers drop old ones).
    pub max_lifetime: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(1800),
        }
    }
}

impl SqlStore {
    /// Opens the database of `uri`, creating MLflow 3.17's schema in an empty one and refusing one at
    /// another revision (left untouched).
    pub async fn open(
        uri: &BackendUri,
        default_artifact_root: &str,
        settings: &PoolSettings,
    ) -> Result<Self, OpenError> {
        match uri {
            BackendUri::Sqlite { path } => Self::open_sqlite(path, default_artifact_root).await,
            BackendUri::Postgres(server) => {
                Self::open_postgres(server, default_artifact_root, settings).await
            }
            BackendUri::MySql(server) => {
                Self::open_mysql(server, default_artifact_root, settings).await
            }
        }
    }

    /// Opens (creating if needed) the SQLite database at `path`.
    pub async fn open_sqlite(path: &Path, default_artifact_root: &str) -> Result<Self, OpenError> {
        let pools = crate::sqlite::open(path, default_artifact_root).await?;
        Ok(Self::new(pools, default_artifact_root))
    }

    /// Opens the PostgreSQL database of `server` with a pool of `settings`.
    pub async fn open_postgres(
        server: &ServerUri,
        default_artifact_root: &str,
        settings: &PoolSettings,
    ) -> Result<Self, OpenError> {
        let pools = crate::postgres::open(server, default_artifact_root, settings).await?;
        Ok(Self::new(pools, default_artifact_root))
    }

    /// Opens the MySQL or MariaDB database of `server` with a pool of `settings`.
    pub async fn open_mysql(
        server: &ServerUri,
        default_artifact_root: &str,
        settings: &PoolSettings,
    ) -> Result<Self, OpenError> {
        let pools = crate::mysql::open(server, default_artifact_root, settings).await?;
        Ok(Self::new(pools, default_artifact_root))
    }

    fn new(pools: Pools, default_artifact_root: &str) -> Self {
        Self {
            pools,
            default_artifact_root: default_artifact_root.to_owned(),
        }
    }

    /// The SQL dialect of the database.
    pub fn dialect(&self) -> Dialect {
        self.pools.dialect()
    }
}

/// What an existing database holds, as far as opening it is concerned.
pub(crate) enum Existing {
    /// No table at all: the schema is created.
    Empty,
    /// Tables, but no `alembic_version`: not an MLflow database.
    NotMlflow,
    /// `alembic_version` holds these revisions.
    Revisions(Vec<String>),
}

/// Accepts only a database stamped with exactly MLflow 3.17's revision.
pub(crate) fn check_revision(existing: Existing, database: &str) -> Result<bool, OpenError> {
    match existing {
        Existing::Empty => Ok(false),
        Existing::NotMlflow => Err(OpenError::NotMlflow {
            database: database.to_owned(),
        }),
        Existing::Revisions(found) if found.as_slice() == [SCHEMA_REVISION] => Ok(true),
        Existing::Revisions(found) => Err(OpenError::UnknownRevision {
            database: database.to_owned(),
            found: found.join(","),
        }),
    }
}

/// Joins a path segment to a URI or path with exactly one `/` between them.
pub(crate) fn append_to_uri(root: &str, segment: &str) -> String {
    format!(
        "{}/{}",
        root.trim_end_matches('/'),
        segment.trim_start_matches('/')
    )
}

/// `?, ?, ?` for `count` bound values.
pub(crate) fn placeholders(count: usize) -> String {
    let mut text = String::with_capacity(count * 3);
    for index in 0..count {
        if index > 0 {
            text.push_str(", ");
        }
        text.push('?');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_join() {
        assert_eq!(
            append_to_uri("mlflow-artifacts:/", "3"),
            "mlflow-artifacts:/3"
        );
        assert_eq!(
            append_to_uri("mlflow-artifacts:", "3"),
            "mlflow-artifacts:/3"
        );
        assert_eq!(append_to_uri("/data/art", "3"), "/data/art/3");
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}
