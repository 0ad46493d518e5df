//! The SQLite store: one file, WAL, a single writer connection so concurrent clients never see
//! "database is locked", and a pool of readers.

mod logged_models;
mod tracking;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// The alembic revision of MLflow 3.17.2, the only one ferroflow serves.
pub const SCHEMA_REVISION: &str = "dc11669786a5";

const SCHEMA: &str = include_str!("../../schema/sqlite.sql");

#[derive(Debug, thiserror::Error)]
pub enum SqliteOpenError {
    #[error("cannot open sqlite database {path}: {source}")]
    Connect { path: String, source: sqlx::Error },
    #[error(
        "database {path} is at alembic revision '{found}', but ferroflow serves MLflow 3.17 \
         (revision '{SCHEMA_REVISION}'); upgrade it with `mlflow db upgrade` of mlflow 3.17.2 first. \
         The database was left untouched"
    )]
    UnknownRevision { path: String, found: String },
    #[error(
        "database {path} has tables but no alembic_version: it is not an MLflow database. \
         The database was left untouched"
    )]
    NotMlflow { path: String },
    #[error("cannot create the schema in {path}: {source}")]
    Migrate { path: String, source: sqlx::Error },
}

/// The tracking store on SQLite.
#[derive(Clone)]
pub struct SqliteStore {
    /// One connection: SQLite takes one writer at a time, and queueing here beats "database is locked".
    writer: SqlitePool,
    readers: SqlitePool,
    default_artifact_root: String,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and makes sure it holds MLflow 3.17's schema.
    pub async fn open(path: &Path, default_artifact_root: &str) -> Result<Self, SqliteOpenError> {
        let display = path.display().to_string();
        let in_memory = display == ":memory:";
        let options = if in_memory {
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(|source| {
                SqliteOpenError::Connect {
                    path: display.clone(),
                    source,
                }
            })?
        } else {
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
        };
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let connect_error = |source| SqliteOpenError::Connect {
            path: display.clone(),
            source,
        };
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .map_err(connect_error)?;
        migrate(&writer, &display, default_artifact_root).await?;
        let readers = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options.read_only(true))
                .await
                .map_err(connect_error)?
        };
        Ok(Self {
            writer,
            readers,
            default_artifact_root: default_artifact_root.to_owned(),
        })
    }
}

/// Creates the schema in an empty database, or checks the revision of an existing one. A database at any
/// other revision is refused and left untouched.
async fn migrate(
    pool: &SqlitePool,
    path: &str,
    default_artifact_root: &str,
) -> Result<(), SqliteOpenError> {
    let migrate_error = |source| SqliteOpenError::Migrate {
        path: path.to_owned(),
        source,
    };
    let table_count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
            .fetch_one(pool)
            .await
            .map_err(migrate_error)?;
    if table_count == 0 {
        let mut transaction = pool.begin().await.map_err(migrate_error)?;
        sqlx::raw_sql(SCHEMA)
            .execute(&mut *transaction)
            .await
            .map_err(migrate_error)?;
        sqlx::query("INSERT INTO alembic_version (version_num) VALUES (?)")
            .bind(SCHEMA_REVISION)
            .execute(&mut *transaction)
            .await
            .map_err(migrate_error)?;
        transaction.commit().await.map_err(migrate_error)?;
    } else {
        let has_alembic: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'",
        )
        .fetch_one(pool)
        .await
        .map_err(migrate_error)?;
        if has_alembic == 0 {
            return Err(SqliteOpenError::NotMlflow {
                path: path.to_owned(),
            });
        }
        let rows = sqlx::query("SELECT version_num FROM alembic_version")
            .fetch_all(pool)
            .await
            .map_err(migrate_error)?;
        let found: Vec<String> = rows
            .iter()
            .filter_map(|row| row.try_get::<String, _>(0).ok())
            .collect();
        if found.as_slice() != [SCHEMA_REVISION] {
            return Err(SqliteOpenError::UnknownRevision {
                path: path.to_owned(),
                found: found.join(","),
            });
        }
    }
    ensure_default_experiment(pool, default_artifact_root)
        .await
        .map_err(migrate_error)
}

/// MLflow's clients and UI expect experiment 0, "Default"; MLflow adds it when missing.
async fn ensure_default_experiment(
    pool: &SqlitePool,
    default_artifact_root: &str,
) -> Result<(), sqlx::Error> {
    let now = ferroflow_core::ids::now_millis();
    sqlx::query(
        "INSERT OR IGNORE INTO experiments \
         (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace) \
         VALUES (0, 'Default', ?, 'active', ?, ?, 'default')",
    )
    .bind(append_to_uri(default_artifact_root, "0"))
    .bind(now)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
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
