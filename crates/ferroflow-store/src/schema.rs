//! `ferroflow db check` and `ferroflow db upgrade`: what schema a database holds, and creating MLflow
//! 3.17's schema in an empty one. The revision rules are those of opening a store
//! ([`crate::sql::check_revision`]); nothing here duplicates them.

use crate::sql::{check_revision, PoolSettings, SqlStore, SCHEMA_REVISION};
use crate::uri::BackendUri;
use crate::OpenError;
use ferroflow_core::store::TrackingStore;

/// The schema of a database that ferroflow can serve, or will create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaState {
    /// Stamped with [`SCHEMA_REVISION`], MLflow 3.17's revision.
    Current,
    /// No table at all (or, for SQLite, no file): `ferroflow db upgrade` creates the schema.
    Empty,
}

impl SchemaState {
    /// The alembic revision of the database, if it has one.
    pub fn revision(self) -> Option<&'static str> {
        match self {
            SchemaState::Current => Some(SCHEMA_REVISION),
            SchemaState::Empty => None,
        }
    }
}

/// What `ferroflow db upgrade` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeOutcome {
    /// The database was empty; it now holds MLflow 3.17's schema and the Default experiment.
    Created,
    /// The database was already at [`SCHEMA_REVISION`]; nothing was changed.
    AlreadyCurrent,
}

/// Reads the schema revision of the database of `uri` without changing anything. A database
/// at another revision, or with tables but no `alembic_version`, is an error, as when opening it.
pub async fn check_schema(uri: &BackendUri) -> Result<SchemaState, OpenError> {
    let (existing, database) = match uri {
        BackendUri::Sqlite { path } => (
            crate::sqlite::inspect_read_only(path).await?,
            path.display().to_string(),
        ),
        BackendUri::Postgres(server) => (
            crate::postgres::inspect_only(server).await?,
            server.to_string(),
        ),
        BackendUri::MySql(server) => (
            crate::mysql::inspect_only(server).await?,
            server.to_string(),
        ),
    };
    if check_revision(existing, &database)? {
        Ok(SchemaState::Current)
    } else {
        Ok(SchemaState::Empty)
    }
}

/// Creates MLflow 3.17's schema in an empty database, as the server does when it starts (with the Default
/// experiment under `default_artifact_root`); a database already at [`SCHEMA_REVISION`] is not written to at all,
/// and one at any other revision is refused untouched.
pub async fn upgrade_schema(
    uri: &BackendUri,
    default_artifact_root: &str,
) -> Result<UpgradeOutcome, OpenError> {
    if check_schema(uri).await? == SchemaState::Current {
        return Ok(UpgradeOutcome::AlreadyCurrent);
    }
    let store = SqlStore::open(uri, default_artifact_root, &PoolSettings::default()).await?;
    store.close().await;
    Ok(UpgradeOutcome::Created)
}
