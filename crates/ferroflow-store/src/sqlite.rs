//! Opening SQLite: one file, WAL, a single writer connection so concurrent clients never see "database is
//! locked", and a pool of read-only connections.

use crate::sql::connection::Pools;
use crate::sql::{append_to_uri, check_revision, Existing, SCHEMA_REVISION};
use crate::OpenError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

const SCHEMA: &str = include_str!("../schema/sqlite.sql");

/// Opens (creating if needed) the database at `path` and makes sure it holds MLflow 3.17's schema.
pub(crate) async fn open(path: &Path, default_artifact_root: &str) -> Result<Pools, OpenError> {
    let display = path.display().to_string();
    let in_memory = display == ":memory:";
    let connect_error = |source| OpenError::Connect {
        database: display.clone(),
        source,
    };
    let options = if in_memory {
        SqliteConnectOptions::from_str("sqlite::memory:").map_err(connect_error)?
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
    Ok(Pools::Sqlite { writer, readers })
}

/// Creates the schema in an empty database, or checks the revision of an existing one. A database at any
/// other revision is refused and left untouched.
async fn migrate(
    pool: &SqlitePool,
    database: &str,
    default_artifact_root: &str,
) -> Result<(), OpenError> {
    let migrate_error = |source| OpenError::Migrate {
        database: database.to_owned(),
        source,
    };
    let mut transaction = pool.begin().await.map_err(migrate_error)?;
    let table_count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
            .fetch_one(&mut *transaction)
            .await
            .map_err(migrate_error)?;
    let existing = if table_count == 0 {
        Existing::Empty
    } else {
        let has_alembic: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'",
        )
        .fetch_one(&mut *transaction)
        .await
        .map_err(migrate_error)?;
        if has_alembic == 0 {
            Existing::NotMlflow
        } else {
            let rows = sqlx::query("SELECT version_num FROM alembic_version")
                .fetch_all(&mut *transaction)
                .await
                .map_err(migrate_error)?;
            Existing::Revisions(
                rows.iter()
                    .filter_map(|row| row.try_get::<String, _>(0).ok())
                    .collect(),
            )
        }
    };
    if !check_revision(existing, database)? {
        sqlx::raw_sql(SCHEMA)
            .execute(&mut *transaction)
            .await
            .map_err(migrate_error)?;
        sqlx::query("INSERT INTO alembic_version (version_num) VALUES (?)")
            .bind(SCHEMA_REVISION)
            .execute(&mut *transaction)
            .await
            .map_err(migrate_error)?;
    }
    // MLflow's clients and UI expect experiment 0, "Default"; MLflow adds it when missing.
    let now = ferroflow_core::ids::now_millis();
    sqlx::query(
        "INSERT OR IGNORE INTO experiments \
         (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace) \
         VALUES (0, 'Default', ?, 'active', ?, ?, 'default')",
    )
    .bind(append_to_uri(default_artifact_root, "0"))
    .bind(now)
    .bind(now)
    .execute(&mut *transaction)
    .await
    .map_err(migrate_error)?;
    transaction.commit().await.map_err(migrate_error)
}
