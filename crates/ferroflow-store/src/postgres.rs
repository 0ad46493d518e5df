//! Opening PostgreSQL: a connection pool with limits and a statement timeout; the schema is created in
//! one transaction on an empty database.

use crate::sql::connection::Pools;
use crate::sql::{append_to_uri, check_revision, Existing, PoolSettings, SCHEMA_REVISION};
use crate::uri::ServerUri;
use crate::OpenError;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;

const SCHEMA: &str = include_str!("../schema/postgres.sql");

/// The advisory lock that lets one server at a time create the schema of a new database.
const SCHEMA_LOCK: i64 = 0x6665_7272_6f66_6c6f;

/// Opens the database of `server`: checks (or creates) the schema on one connection, then hands out a
/// pool that reconnects by itself when the database goes away and comes back.
pub(crate) async fn open(
    server: &ServerUri,
    default_artifact_root: &str,
    settings: &PoolSettings,
) -> Result<Pools, OpenError> {
    let database = server.to_string();
    let (mut connection, options) = connect(server, settings).await?;
    migrate(&mut connection, &database, default_artifact_root).await?;
    // The pool opens its own connections; this one is done.
    let _ = connection.close().await;
    Ok(pool(options, settings))
}

/// One connection to the database of `server` (for its migration) and the options the pool opens its own
/// with.
pub(crate) async fn connect(
    server: &ServerUri,
    settings: &PoolSettings,
) -> Result<(PgConnection, PgConnectOptions), OpenError> {
    let options = connect_options(server, settings)?;
    let connection = options
        .connect()
        .await
        .map_err(|source| OpenError::Connect {
            database: server.to_string(),
            source,
        })?;
    Ok((connection, options))
}

/// A pool that reconnects by itself when the database goes away and comes back.
pub(crate) fn pool(options: PgConnectOptions, settings: &PoolSettings) -> Pools {
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(0)
        .acquire_timeout(settings.acquire_timeout)
        .idle_timeout(settings.idle_timeout)
        .max_lifetime(settings.max_lifetime)
        .test_before_acquire(true)
        .connect_lazy_with(options);
    Pools::Postgres(pool)
}

/// The connect options of `server`: libpq's query options that ferroflow understands, others logged
/// and ignored. Like libpq, what the URI leaves out comes from `PGHOST`, `PGUSER`, `PGPASSWORD`, ...
fn connect_options(
    server: &ServerUri,
    settings: &PoolSettings,
) -> Result<PgConnectOptions, OpenError> {
    let invalid = |key: &str, value: &str| OpenError::InvalidOption {
        database: server.to_string(),
        option: format!("{key}={value}"),
    };
    let mut options = PgConnectOptions::new();
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
    if let Some(database) = &server.database {
        options = options.database(database);
    }
    let mut session_options: Vec<(String, String)> = Vec::new();
    for (key, value) in &server.options {
        options = match key.as_str() {
            "sslmode" => {
                options.ssl_mode(PgSslMode::from_str(value).map_err(|_| invalid(key, value))?)
            }
            "sslrootcert" => options.ssl_root_cert(value),
            "sslcert" => options.ssl_client_cert(value),
            "sslkey" => options.ssl_client_key(value),
            "application_name" => options.application_name(value),
            "host" if value.starts_with('/') => options.socket(value),
            "host" => options.host(value),
            "port" => options.port(value.parse().map_err(|_| invalid(key, value))?),
            "user" => options.username(value),
            "password" => options.password(value),
            "dbname" => options.database(value),
            "options" => {
                session_options
                    .extend(parse_session_options(value).ok_or_else(|| invalid(key, value))?);
                options
            }
            _ => {
                tracing::warn!(option = %key, "ignoring a backend store uri option that ferroflow does not use");
                options
            }
        };
    }
    if !session_options
        .iter()
        .any(|(name, _)| name == "statement_timeout")
    {
        session_options.push((
            "statement_timeout".to_owned(),
            settings.statement_timeout.as_millis().to_string(),
        ));
    }
    Ok(options.options(session_options))
}

/// libpq's `options=-c name=value -c ...` as pairs; `None` if it holds anything else.
fn parse_session_options(value: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut words = value.split_whitespace();
    while let Some(word) = words.next() {
        let setting = match word.strip_prefix("-c") {
            Some("") => words.next()?,
            Some(setting) => setting,
            None => word.strip_prefix("--")?,
        };
        let (name, value) = setting.split_once('=')?;
        pairs.push((name.replace('-', "_"), value.to_owned()));
    }
    Some(pairs)
}

/// Creates the schema in an empty database (one transaction, one server at a time), or checks the
/// revision of an existing one; then adds the Default experiment if it is missing. A database at another
/// revision is refused and left untouched.
async fn migrate(
    connection: &mut PgConnection,
    database: &str,
    default_artifact_root: &str,
) -> Result<(), OpenError> {
    let migrate_error = |source| OpenError::Migrate {
        database: database.to_owned(),
        source,
    };
    let mut transaction = connection.begin().await.map_err(migrate_error)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *transaction)
        .await
        .map_err(migrate_error)?;
    let existing = inspect(&mut transaction).await.map_err(migrate_error)?;
    if !check_revision(existing, database)? {
        sqlx::raw_sql(SCHEMA)
            .execute(&mut *transaction)
            .await
            .map_err(migrate_error)?;
        sqlx::query("INSERT INTO alembic_version (version_num) VALUES ($1)")
            .bind(SCHEMA_REVISION)
            .execute(&mut *transaction)
            .await
            .map_err(migrate_error)?;
    }
    // MLflow's clients and UI expect experiment 0, "Default"; MLflow adds it when missing. An explicit id
    // leaves the sequence alone, so the next experiment is 1, as with MLflow.
    let now = ferroflow_core::ids::now_millis();
    sqlx::query(
        "INSERT INTO experiments \
         (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace) \
         VALUES (0, 'Default', $1, 'active', $2, $3, 'default') ON CONFLICT DO NOTHING",
    )
    .bind(append_to_uri(default_artifact_root, "0"))
    .bind(now)
    .bind(now)
    .execute(&mut *transaction)
    .await
    .map_err(migrate_error)?;
    transaction.commit().await.map_err(migrate_error)
}

/// What the database of `server` holds, read on one connection that changes nothing.
pub(crate) async fn inspect_only(server: &ServerUri) -> Result<Existing, OpenError> {
    let database = server.to_string();
    let connect_error = |source| OpenError::Connect {
        database: database.clone(),
        source,
    };
    let options = connect_options(server, &PoolSettings::default())?;
    let mut connection = options.connect().await.map_err(connect_error)?;
    let existing = inspect(&mut connection).await.map_err(connect_error);
    let _ = connection.close().await;
    existing
}

/// The tables of the connection's current schema.
async fn inspect(connection: &mut PgConnection) -> Result<Existing, sqlx::Error> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut *connection)
    .await?;
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
    fn session_options() {
        assert_eq!(
            parse_session_options("-c search_path=mlflow -cstatement-timeout=5s"),
            Some(vec![
                ("search_path".to_owned(), "mlflow".to_owned()),
                ("statement_timeout".to_owned(), "5s".to_owned())
            ])
        );
        assert_eq!(
            parse_session_options("--search_path=x"),
            Some(vec![("search_path".to_owned(), "x".to_owned())])
        );
        assert_eq!(parse_session_options("-x"), None);
    }
}
