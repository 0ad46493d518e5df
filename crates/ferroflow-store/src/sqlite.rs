//! Opening SQLite: one file, WAL, a single writer connection so concurrent clients never see "database is
//! locked", and a pool of read-only connections.

use crate::sql::connection::Pools;
use crate::sql::sqlite_readers::SqliteReaders;
use crate::sql::sqlite_writer::SqliteWriter;
use crate::sql::{append_to_uri, check_revision, Existing, SCHEMA_REVISION};
use crate::OpenError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

const SCHEMA: &str = include_str!("../schema/sqlite.sql");
/// Stamps a new database with the schema's alembic revision.
const STAMP: &str = "INSERT INTO alembic_version (version_num) VALUES (?)";
/// Experiment 0, "Default", which MLflow's clients and UI expect; MLflow adds it when missing.
const DEFAULT_EXPERIMENT: &str = "INSERT OR IGNORE INTO experiments \
     (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace) \
     VALUES (0, 'Default', ?, 'active', ?, ?, 'default')";

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
    if in_memory {
        // Only the connection that made an in-memory database sees it: the writer serves reads too.
        let writer = SqliteWriter::open(Path::new(":memory:")).map_err(connect_error)?;
        create_in_memory(&writer, default_artifact_root)
            .await
            .map_err(|source| OpenError::Migrate {
                database: display.clone(),
                source,
            })?;
        return Ok(Pools::Sqlite {
            writer,
            readers: None,
        });
    }
    // The schema is created or checked through sqlx (one connection, closed again), then the server's
    // connections are opened directly: the writer (`sql/sqlite_writer.rs`) and the readers
    // (`sql/sqlite_readers.rs`).
    let migration = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .map_err(connect_error)?;
    let migrated = migrate(&migration, &display, default_artifact_root).await;
    migration.close().await;
    migrated?;
    let writer = SqliteWriter::open(path).map_err(connect_error)?;
    let readers = SqliteReaders::open(path).map_err(connect_error)?;
    Ok(Pools::Sqlite {
        writer,
        readers: Some(readers),
    })
}

/// The schema, its stamp and experiment 0 in a new in-memory database.
async fn create_in_memory(
    writer: &SqliteWriter,
    default_artifact_root: &str,
) -> Result<(), sqlx::Error> {
    writer.execute_batch(SCHEMA).await?;
    writer.execute(STAMP, vec![SCHEMA_REVISION.into()]).await?;
    let now = ferroflow_core::ids::now_millis();
    writer
        .execute(
            DEFAULT_EXPERIMENT,
            vec![
                append_to_uri(default_artifact_root, "0").into(),
                now.into(),
                now.into(),
            ],
        )
        .await?;
    Ok(())
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
    let existing = inspect(&mut transaction).await.map_err(migrate_error)?;
    if !check_revision(existing, database)? {
        sqlx::raw_sql(SCHEMA)
            .execute(&mut *transaction)
            .await
            .map_err(migrate_error)?;
        sqlx::query(STAMP)
            .bind(SCHEMA_REVISION)
            .execute(&mut *transaction)
            .await
            .map_err(migrate_error)?;
    }
    // MLflow's clients and UI expect experiment 0, "Default"; MLflow adds it when missing.
    let now = ferroflow_core::ids::now_millis();
    sqlx::query(DEFAULT_EXPERIMENT)
        .bind(append_to_uri(default_artifact_root, "0"))
        .bind(now)
        .bind(now)
        .execute(&mut *transaction)
        .await
        .map_err(migrate_error)?;
    transaction.commit().await.map_err(migrate_error)
}

/// What the database at `path` holds, read on a read-only connection: nothing is created or changed. A
/// file that does not exist is reported as empty.
pub(crate) async fn inspect_read_only(path: &Path) -> Result<Existing, OpenError> {
    let display = path.display().to_string();
    let connect_error = |source| OpenError::Connect {
        database: display.clone(),
        source,
    };
    if display == ":memory:"
        || !path
            .try_exists()
            .map_err(|error| connect_error(sqlx::Error::Io(error)))?
    {
        return Ok(Existing::Empty);
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .read_only(true)
        .busy_timeout(Duration::from_secs(30));
    let mut connection = sqlx::ConnectOptions::connect(&options)
        .await
        .map_err(connect_error)?;
    let existing = inspect(&mut connection).await.map_err(connect_error);
    let _ = sqlx::Connection::close(connection).await;
    existing
}

/// The tables of the database and, when it has `alembic_version`, its revisions.
async fn inspect(connection: &mut SqliteConnection) -> Result<Existing, sqlx::Error> {
    let table_count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
            .fetch_one(&mut *connection)
            .await?;
    if table_count == 0 {
        return Ok(Existing::Empty);
    }
    let has_alembic: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'",
    )
    .fetch_one(&mut *connection)
    .await?;
    if has_alembic == 0 {
        return Ok(Existing::NotMlflow);
    }
    let rows = sqlx::query("SELECT version_num FROM alembic_version")
        .fetch_all(&mut *connection)
        .await?;
    Ok(Existing::Revisions(
        rows.iter()
            .filter_map(|row| row.try_get::<String, _>(0).ok())
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::connection::query;

    /// An in-memory database is made on the writer alone, with the same stamp and experiment 0 as a file.
    #[tokio::test]
    async fn in_memory_database_has_schema_stamp_and_default_experiment() {
        let pools = open(Path::new(":memory:"), "mlflow-artifacts:/")
            .await
            .unwrap();
        let revision = pools
            .fetch_optional(query("SELECT version_num FROM alembic_version"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            revision.get::<String>("version_num").unwrap(),
            SCHEMA_REVISION
        );
        let default = pools
            .fetch_optional(query(
                "SELECT name, artifact_location FROM experiments WHERE experiment_id = 0",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(default.get::<String>("name").unwrap(), "Default");
        assert_eq!(
            default.get::<String>("artifact_location").unwrap(),
            "mlflow-artifacts:/0"
        );
        pools.close().await;
    }
}
