//! Opening MySQL and MariaDB: a connection pool with limits and a statement timeout. MySQL DDL is not
//! transactional, so a new database gets its schema one statement at a time, checked, and dropped again
//! if anything failed; it is stamped only once complete.

use crate::sql::connection::Pools;
use crate::sql::{append_to_uri, check_revision, Existing, PoolSettings, SCHEMA_REVISION};
use crate::uri::ServerUri;
use crate::OpenError;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPoolOptions, MySqlSslMode};
use sqlx::{ConnectOptions, Connection, Executor};
use std::str::FromStr;

const SCHEMA: &str = include_str!("../schema/mysql.sql");

/// The named lock that lets one server at a time create the schema of a new database.
const SCHEMA_LOCK: &str = "ferroflow_mlflow_schema";

/// The server's flavour, which names the statement timeout differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    MySql,
    MariaDb,
}

/// Opens the database of `server`: checks (or creates) the schema on one connection, then hands out a
/// pool that reconnects by itself when the database goes away and comes back.
pub(crate) async fn open(
    server: &ServerUri,
    default_artifact_root: &str,
    settings: &PoolSettings,
) -> Result<Pools, OpenError> {
    let database = server.to_string();
    let (mut connection, options, flavour) = connect(server).await?;
    migrate(&mut connection, &database, default_artifact_root).await?;
    // This connection's sql_mode was changed for experiment 0: it is not reused.
    let _ = connection.close().await;
    Ok(pool(options, flavour, settings))
}

/// One connection to the database of `server` for a migration, in a session like MLflow's, the options
/// the pool opens its own with, and the server's flavour.
pub(crate) async fn connect(
    server: &ServerUri,
) -> Result<(MySqlConnection, MySqlConnectOptions, Flavour), OpenError> {
    let database = server.to_string();
    let options = connect_options(server)?;
    // The schema is created in a session like MLflow's (PyMySQL): the server's own sql_mode and, for
    // utf8mb4, its general collation. A trigger keeps the sql_mode and collation it was created with.
    let mut migration_options = options
        .clone()
        .pipes_as_concat(false)
        .no_engine_substitution(false);
    if server
        .option("charset")
        .is_none_or(|charset| charset == "utf8mb4")
    {
        migration_options = migration_options.collation("utf8mb4_general_ci");
    }
    let mut connection =
        migration_options
            .connect()
            .await
            .map_err(|source| OpenError::Connect {
                database: database.clone(),
                source,
            })?;
    let migrate_error = |source| OpenError::Migrate {
        database: database.clone(),
        source,
    };
    sqlx::raw_sql("SET SESSION sql_mode = @@GLOBAL.sql_mode")
        .execute(&mut connection)
        .await
        .map_err(migrate_error)?;
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(&mut connection)
        .await
        .map_err(migrate_error)?;
    let flavour = if version.to_ascii_lowercase().contains("mariadb") {
        Flavour::MariaDb
    } else {
        Flavour::MySql
    };
    Ok((connection, options, flavour))
}

/// A pool that reconnects by itself when the database goes away and comes back, with the statement
/// timeout of `settings` set on each connection.
pub(crate) fn pool(
    options: MySqlConnectOptions,
    flavour: Flavour,
    settings: &PoolSettings,
) -> Pools {
    let statement_timeout = settings.statement_timeout;
    let pool = MySqlPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(0)
        .acquire_timeout(settings.acquire_timeout)
        .idle_timeout(settings.idle_timeout)
        .max_lifetime(settings.max_lifetime)
        .test_before_acquire(true)
        .after_connect(move |connection, _| {
            Box::pin(async move {
                let statement = match flavour {
                    Flavour::MariaDb => sqlx::query("SET SESSION max_statement_time = ?")
                        .bind(statement_timeout.as_secs_f64()),
                    Flavour::MySql => sqlx::query("SET SESSION max_execution_time = ?")
                        .bind(u64::try_from(statement_timeout.as_millis()).unwrap_or(u64::MAX)),
                };
                connection.execute(statement).await.map(|_| ())
            })
        })
        .connect_lazy_with(options);
    Pools::MySql(pool)
}

/// The connect options of `server`, with the query options of PyMySQL and mysqlclient that ferroflow
/// understands; others are logged and ignored.
fn connect_options(server: &ServerUri) -> Result<MySqlConnectOptions, OpenError> {
    let invalid = |key: &str, value: &str| OpenError::InvalidOption {
        database: server.to_string(),
        option: format!("{key}={value}"),
    };
    let Some(database) = &server.database else {
        return Err(OpenError::InvalidOption {
            database: server.to_string(),
            option: "a database name is required: mysql://<user>@<host>/<database>".to_owned(),
        });
    };
    let mut options = MySqlConnectOptions::new().database(database);
    if let Some(host) = &server.host {
        options = options.host(host);
    }
    if let Some(port) = server.port {
        options = options.port(port);
    }
    if let Some(user) = &server.user {
        options = options.username(user);
    }
    if let Some(password) = &server.password {
        options = options.password(password);
    }
    for (key, value) in &server.options {
        options = match key.as_str() {
            "charset" => options.charset(value),
            "unix_socket" => options.socket(value),
            "ssl_ca" => options.ssl_ca(value),
            "ssl_cert" => options.ssl_client_cert(value),
            "ssl_key" => options.ssl_client_key(value),
            "ssl_mode" | "ssl-mode" => {
                options.ssl_mode(MySqlSslMode::from_str(value).map_err(|_| invalid(key, value))?)
            }
            "ssl_disabled" if value == "true" || value == "1" => {
                options.ssl_mode(MySqlSslMode::Disabled)
            }
            _ => {
                tracing::warn!(option = %key, "ignoring a backend store uri option that ferroflow does not use");
                options
            }
        };
    }
    Ok(options)
}

/// The statements of `schema/mysql.sql`: each ends with `;` at the end of a line, a trigger with a line
/// `END;` (its body holds `;`). Comment lines between statements are skipped.
pub(crate) fn schema_statements(schema: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut in_trigger = false;
    for line in schema.lines() {
        let trimmed = line.trim();
        if current.is_empty() {
            if trimmed.is_empty() || trimmed.starts_with("--") {
                continue;
            }
            in_trigger = trimmed.starts_with("CREATE TRIGGER");
        }
        current.push(line);
        let ends = if in_trigger {
            trimmed == "END;"
        } else {
            trimmed.ends_with(';')
        };
        if ends {
            statements.push(current.join("\n"));
            current.clear();
        }
    }
    statements
}

/// The tables `schema/mysql.sql` creates.
fn schema_tables(statements: &[String]) -> Vec<String> {
    statements
        .iter()
        .filter_map(|statement| statement.strip_prefix("CREATE TABLE `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_owned)
        .collect()
}

async fn migrate(
    connection: &mut MySqlConnection,
    database: &str,
    default_artifact_root: &str,
) -> Result<(), OpenError> {
    let migrate_error = |source| OpenError::Migrate {
        database: database.to_owned(),
        source,
    };
    let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 60)")
        .bind(SCHEMA_LOCK)
        .fetch_one(&mut *connection)
        .await
        .map_err(migrate_error)?;
    if locked != Some(1) {
        return Err(migrate_error(sqlx::Error::Protocol(
            "another server held the schema lock for 60 s".to_owned(),
        )));
    }
    let migrated = migrate_locked(connection, database, default_artifact_root).await;
    let _ = sqlx::query("SELECT RELEASE_LOCK(?)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *connection)
        .await;
    migrated
}

async fn migrate_locked(
    connection: &mut MySqlConnection,
    database: &str,
    default_artifact_root: &str,
) -> Result<(), OpenError> {
    let migrate_error = |source| OpenError::Migrate {
        database: database.to_owned(),
        source,
    };
    let existing = inspect(connection).await.map_err(migrate_error)?;
    if !check_revision(existing, database)? {
        create_schema(connection, database).await?;
    }
    // MLflow's clients and UI expect experiment 0, "Default"; MLflow adds it when missing. Inserting 0
    // into an AUTO_INCREMENT column needs NO_AUTO_VALUE_ON_ZERO for this session, as MLflow sets it.
    sqlx::raw_sql("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')")
        .execute(&mut *connection)
        .await
        .map_err(migrate_error)?;
    let now = ferroflow_core::ids::now_millis();
    sqlx::query(
        "INSERT INTO experiments \
         (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace) \
         VALUES (0, 'Default', ?, 'active', ?, ?, 'default') \
         ON DUPLICATE KEY UPDATE experiment_id = experiment_id",
    )
    .bind(append_to_uri(default_artifact_root, "0"))
    .bind(now)
    .bind(now)
    .execute(&mut *connection)
    .await
    .map_err(migrate_error)?;
    Ok(())
}

/// Creates MLflow's tracking schema in the empty database and stamps `alembic_version`.
async fn create_schema(connection: &mut MySqlConnection, database: &str) -> Result<(), OpenError> {
    create_stamped_schema(
        connection,
        database,
        SCHEMA,
        "INSERT INTO alembic_version (version_num) VALUES (?)",
        SCHEMA_REVISION,
    )
    .await
}

/// Creates every table of `schema` in the empty database, checks they are all there and runs `stamp`
/// with `revision` last. On any failure the tables created are dropped, so the database is empty again.
pub(crate) async fn create_stamped_schema(
    connection: &mut MySqlConnection,
    database: &str,
    schema: &str,
    stamp: &'static str,
    revision: &str,
) -> Result<(), OpenError> {
    let statements = schema_statements(schema);
    let created = async {
        for statement in &statements {
            sqlx::raw_sql(statement).execute(&mut *connection).await?;
        }
        let tables = current_tables(connection).await?;
        let missing: Vec<String> = schema_tables(&statements)
            .into_iter()
            .filter(|table| !tables.contains(table))
            .collect();
        if !missing.is_empty() {
            return Ok(Some(missing));
        }
        sqlx::query(stamp)
            .bind(revision)
            .execute(&mut *connection)
            .await?;
        Ok::<_, sqlx::Error>(None)
    }
    .await;
    let failure = match created {
        Ok(None) => return Ok(()),
        Ok(Some(missing)) => OpenError::Incomplete {
            database: database.to_owned(),
            missing: missing.join(", "),
        },
        Err(source) => OpenError::Migrate {
            database: database.to_owned(),
            source,
        },
    };
    if let Err(error) = drop_all_tables(connection).await {
        tracing::error!(%error, "cannot drop the tables of a failed schema creation");
    }
    Err(failure)
}

/// Drops every table of the database, which was empty before the schema creation began.
async fn drop_all_tables(connection: &mut MySqlConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("SET SESSION foreign_key_checks = 0")
        .execute(&mut *connection)
        .await?;
    for table in current_tables(connection).await? {
        let statement = format!("DROP TABLE `{}`", table.replace('`', "``"));
        sqlx::raw_sql(&statement).execute(&mut *connection).await?;
    }
    sqlx::raw_sql("SET SESSION foreign_key_checks = 1")
        .execute(&mut *connection)
        .await?;
    Ok(())
}

pub(crate) async fn current_tables(
    connection: &mut MySqlConnection,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(connection)
    .await
}

/// What the database of `server` holds, read on one connection that changes nothing.
pub(crate) async fn inspect_only(server: &ServerUri) -> Result<Existing, OpenError> {
    let database = server.to_string();
    let connect_error = |source| OpenError::Connect {
        database: database.clone(),
        source,
    };
    let mut connection = connect_options(server)?
        .connect()
        .await
        .map_err(connect_error)?;
    let existing = inspect(&mut connection).await.map_err(connect_error);
    let _ = connection.close().await;
    existing
}

async fn inspect(connection: &mut MySqlConnection) -> Result<Existing, sqlx::Error> {
    let tables = current_tables(connection).await?;
    if tables.is_empty() {
        return Ok(Existing::Empty);
    }
    if !tables.iter().any(|table| table == "alembic_version") {
        return Ok(Existing::NotMlflow);
    }
    let revisions: Vec<String> = sqlx::query_scalar("SELECT version_num FROM alembic_version")
        .fetch_all(connection)
        .await?;
    Ok(Existing::Revisions(revisions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_splits_into_statements() {
        let statements = schema_statements(SCHEMA);
        let tables = schema_tables(&statements);
        assert!(tables.contains(&"experiments".to_owned()));
        assert!(tables.contains(&"alembic_version".to_owned()));
        let triggers: Vec<&String> = statements
            .iter()
            .filter(|statement| statement.starts_with("CREATE TRIGGER"))
            .collect();
        assert_eq!(triggers.len(), 1);
        assert!(triggers[0].ends_with("END;"), "{}", triggers[0]);
        assert!(statements.iter().all(|statement| statement.ends_with(';')));
        assert_eq!(statements.len(), tables.len() + triggers.len());
    }
}
