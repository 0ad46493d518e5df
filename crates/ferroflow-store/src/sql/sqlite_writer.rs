//! SQLite's one write connection, driven directly through rusqlite on the calling task's thread.
//!
//! sqlx runs every SQLite connection on a worker thread of its own and hands each statement and each result
//! row across a channel: two thread switches per statement, which dominate a small write (create-run is
//! four statements, log-metric three). SQLite takes one writer at a time anyway, so ferroflow keeps a single
//! write connection behind an async mutex and runs each statement of a transaction in place: a request
//! waits for the connection once, then its statements cost only SQLite's own time. Reads run on the
//! read-only connections of `sqlite_readers.rs`, beside the writer under WAL.
//!
//! A transaction is `BEGIN IMMEDIATE` ... `COMMIT`; dropped before its commit (an error, or a client that
//! went away mid-request), it is rolled back on the spot, so the connection never stays inside a
//! transaction.

use super::connection::Done;
use rusqlite::types::{ToSqlOutput, Value as SqliteValue, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};
use sqlx::error::{DatabaseError, ErrorKind};
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Prepared statements kept per connection: every static statement of the store and the recent batch
/// shapes.
pub(crate) const STATEMENT_CACHE: usize = 256;

/// The write connection; clones share it.
#[derive(Clone)]
pub(crate) struct SqliteWriter {
    connection: Arc<Mutex<Option<Connection>>>,
}

impl SqliteWriter {
    /// Opens `path` (`:memory:` for a private in-memory database) for writing, with the settings the
    /// server relies on: WAL, `synchronous=NORMAL`, a 30 s busy timeout and foreign keys. It keeps 64 MiB
    /// of pages (SQLite's default is 2 MiB): span ingest touches six indexes of `spans` per row, and
    /// rereading their pages from the OS dominated its time.
    pub(crate) fn open(path: &Path) -> Result<Self, sqlx::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags).map_err(to_sqlx)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536;",
            )
            .map_err(to_sqlx)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        register_regexp(&connection)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(Some(connection))),
        })
    }

    /// Waits for the connection. After [`SqliteWriter::close`], the pool is closed.
    async fn lock(&self) -> Result<OwnedMutexGuard<Option<Connection>>, sqlx::Error> {
        let guard = Arc::clone(&self.connection).lock_owned().await;
        if guard.is_none() {
            return Err(sqlx::Error::PoolClosed);
        }
        Ok(guard)
    }

    /// One statement in its own (implicit) transaction.
    pub(crate) async fn execute(
        &self,
        sql: &str,
        values: Vec<sea_query::Value>,
    ) -> Result<Done, sqlx::Error> {
        let guard = self.lock().await?;
        execute(connection(&guard)?, sql, values)
    }

    /// Several statements without bound values (a schema script).
    pub(crate) async fn execute_batch(&self, sql: &str) -> Result<(), sqlx::Error> {
        let guard = self.lock().await?;
        connection(&guard)?.execute_batch(sql).map_err(to_sqlx)
    }

    /// The rows of one statement, read on the write connection (an in-memory database has no other).
    pub(crate) async fn fetch(
        &self,
        sql: &str,
        values: Vec<sea_query::Value>,
        limit: Option<usize>,
    ) -> Result<Vec<DirectRow>, sqlx::Error> {
        let guard = self.lock().await?;
        fetch(connection(&guard)?, sql, values, limit)
    }

    /// Streams the first column of each row into `visit` until it answers `false`, on the write connection.
    pub(crate) async fn for_each_i64(
        &self,
        sql: &str,
        values: Vec<sea_query::Value>,
        visit: impl FnMut(i64) -> bool,
    ) -> Result<(), sqlx::Error> {
        let guard = self.lock().await?;
        for_each_i64(connection(&guard)?, sql, values, visit)
    }

    pub(crate) async fn begin(&self) -> Result<DirectTransaction, sqlx::Error> {
        let guard = self.lock().await?;
        connection(&guard)?
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(to_sqlx)?;
        Ok(DirectTransaction { guard, open: true })
    }

    /// Closes the connection (SQLite checkpoints the WAL into the database file when the last one closes).
    pub(crate) async fn close(&self) {
        let mut guard = self.connection.lock().await;
        if let Some(connection) = guard.take() {
            if let Err((_, error)) = connection.close() {
                tracing::warn!(%error, "closing the SQLite write connection failed");
            }
        }
    }
}

fn connection(guard: &Option<Connection>) -> Result<&Connection, sqlx::Error> {
    guard.as_ref().ok_or(sqlx::Error::PoolClosed)
}

/// An open transaction holding the write connection; rolled back when dropped uncommitted.
pub(crate) struct DirectTransaction {
    guard: OwnedMutexGuard<Option<Connection>>,
    open: bool,
}

impl DirectTransaction {
    pub(crate) fn execute(
        &mut self,
        sql: &str,
        values: Vec<sea_query::Value>,
    ) -> Result<Done, sqlx::Error> {
        execute(connection(&self.guard)?, sql, values)
    }

    pub(crate) fn fetch(
        &mut self,
        sql: &str,
        values: Vec<sea_query::Value>,
        limit: Option<usize>,
    ) -> Result<Vec<DirectRow>, sqlx::Error> {
        fetch(connection(&self.guard)?, sql, values, limit)
    }

    pub(crate) fn commit(mut self) -> Result<(), sqlx::Error> {
        connection(&self.guard)?
            .execute_batch("COMMIT")
            .map_err(to_sqlx)?;
        self.open = false;
        Ok(())
    }
}

impl Drop for DirectTransaction {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        if let Some(connection) = self.guard.as_ref() {
            // A failed COMMIT may already have ended the transaction; then there is nothing to undo.
            if !connection.is_autocommit() {
                if let Err(error) = connection.execute_batch("ROLLBACK") {
                    tracing::error!(%error, "rolling back a SQLite transaction failed");
                }
            }
        }
    }
}

/// One result row, owned: the statement that produced it is back in the cache.
pub(crate) struct DirectRow {
    columns: Arc<[String]>,
    values: Vec<SqliteValue>,
}

impl DirectRow {
    /// The value of `column`, or a decode error naming it.
    pub(crate) fn value(&self, column: &str) -> Result<&SqliteValue, sqlx::Error> {
        self.columns
            .iter()
            .position(|name| name == column)
            .and_then(|index| self.values.get(index))
            .ok_or_else(|| sqlx::Error::ColumnNotFound(column.to_owned()))
    }
}

fn execute(
    connection: &Connection,
    sql: &str,
    values: Vec<sea_query::Value>,
) -> Result<Done, sqlx::Error> {
    let mut statement = connection.prepare_cached(sql).map_err(to_sqlx)?;
    bind(&mut statement, values)?;
    // Stepped to the end rather than `execute`d, so a statement with RETURNING is fine too.
    let mut rows = statement.raw_query();
    while rows.next().map_err(to_sqlx)?.is_some() {}
    Ok(Done {
        rows_affected: connection.changes(),
        last_insert_id: Some(connection.last_insert_rowid()),
    })
}

pub(crate) fn fetch(
    connection: &Connection,
    sql: &str,
    values: Vec<sea_query::Value>,
    limit: Option<usize>,
) -> Result<Vec<DirectRow>, sqlx::Error> {
    let mut statement = connection.prepare_cached(sql).map_err(to_sqlx)?;
    let columns: Arc<[String]> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    bind(&mut statement, values)?;
    let mut rows = statement.raw_query();
    let mut result = Vec::new();
    while limit.is_none_or(|limit| result.len() < limit) {
        let Some(row) = rows.next().map_err(to_sqlx)? else {
            break;
        };
        let values = (0..columns.len())
            .map(|index| row.get::<_, SqliteValue>(index))
            .collect::<Result<Vec<_>, _>>()
            .map_err(to_sqlx)?;
        result.push(DirectRow {
            columns: Arc::clone(&columns),
            values,
        });
    }
    Ok(result)
}

/// Streams the first column of each row, read as an integer, into `visit` until it answers `false`; no
/// row is kept.
pub(crate) fn for_each_i64(
    connection: &Connection,
    sql: &str,
    values: Vec<sea_query::Value>,
    mut visit: impl FnMut(i64) -> bool,
) -> Result<(), sqlx::Error> {
    let mut statement = connection.prepare_cached(sql).map_err(to_sqlx)?;
    bind(&mut statement, values)?;
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next().map_err(to_sqlx)? {
        if !visit(row.get::<_, i64>(0).map_err(to_sqlx)?) {
            break;
        }
    }
    Ok(())
}

fn bind(
    statement: &mut rusqlite::CachedStatement<'_>,
    values: Vec<sea_query::Value>,
) -> Result<(), sqlx::Error> {
    let expected = statement.parameter_count();
    if values.len() != expected {
        return Err(sqlx::Error::Protocol(format!(
            "statement takes {expected} values, {} were bound",
            values.len()
        )));
    }
    for (index, value) in values.into_iter().enumerate() {
        statement
            .raw_bind_parameter(index + 1, Bound(value))
            .map_err(to_sqlx)?;
    }
    Ok(())
}

/// A sea-query value as SQLite stores it: the store binds integers, doubles, booleans, text and bytes.
struct Bound(sea_query::Value);

impl ToSql for Bound {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use sea_query::Value;
        let null = ToSqlOutput::Owned(SqliteValue::Null);
        Ok(match &self.0 {
            Value::Bool(value) => value.map_or(null, ToSqlOutput::from),
            Value::TinyInt(value) => value.map_or(null, ToSqlOutput::from),
            Value::SmallInt(value) => value.map_or(null, ToSqlOutput::from),
            Value::Int(value) => value.map_or(null, ToSqlOutput::from),
            Value::BigInt(value) => value.map_or(null, ToSqlOutput::from),
            Value::TinyUnsigned(value) => value.map_or(null, ToSqlOutput::from),
            Value::SmallUnsigned(value) => value.map_or(null, ToSqlOutput::from),
            Value::Unsigned(value) => value.map_or(null, ToSqlOutput::from),
            Value::BigUnsigned(value) => match value {
                None => null,
                Some(value) => ToSqlOutput::Owned(SqliteValue::Integer(
                    i64::try_from(*value)
                        .map_err(|error| rusqlite::Error::ToSqlConversionFailure(error.into()))?,
                )),
            },
            Value::Float(value) => value.map_or(null, |value| ToSqlOutput::from(f64::from(value))),
            Value::Double(value) => value.map_or(null, ToSqlOutput::from),
            Value::String(value) => match value {
                None => null,
                Some(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            },
            Value::Char(value) => match value {
                None => null,
                Some(character) => ToSqlOutput::Owned(SqliteValue::Text(character.to_string())),
            },
            Value::Bytes(value) => match value {
                None => null,
                Some(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
            },
            #[allow(unreachable_patterns)]
            other => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    format!("unsupported value {other:?}").into(),
                ))
            }
        })
    }
}

/// Registers `REGEXP` (SQLite leaves it to the application) for the `RLIKE` of trace searches, as MLflow
/// registers one: `text REGEXP pattern` is true when the pattern matches anywhere in the text, NULL when
/// either is NULL. Each statement compiles its pattern once.
pub(crate) fn register_regexp(connection: &Connection) -> Result<(), sqlx::Error> {
    use rusqlite::functions::FunctionFlags;
    connection
        .create_scalar_function(
            "regexp",
            2,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            |context| {
                if matches!(context.get_raw(0), ValueRef::Null)
                    || matches!(context.get_raw(1), ValueRef::Null)
                {
                    return Ok(None);
                }
                let pattern: Arc<regex::Regex> = context.get_or_create_aux(0, |value| {
                    regex::Regex::new(value.as_str()?)
                        .map_err(|error| rusqlite::Error::UserFunctionError(error.into()))
                })?;
                let text = context
                    .get_raw(1)
                    .as_str()
                    .map_err(|error| rusqlite::Error::UserFunctionError(error.into()))?;
                Ok(Some(pattern.is_match(text)))
            },
        )
        .map_err(to_sqlx)
}

/// A rusqlite error as the sqlx error the rest of the store classifies: SQLite's extended result code
/// (busy and locked are TEMPORARILY_UNAVAILABLE, constraint kinds are recognized).
pub(crate) fn to_sqlx(error: rusqlite::Error) -> sqlx::Error {
    match error {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let message = message.unwrap_or_else(|| failure.to_string());
            sqlx::Error::Database(Box::new(DirectSqliteError {
                code: failure.extended_code,
                message,
            }))
        }
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// A failure reported by SQLite on the write connection.
#[derive(Debug)]
struct DirectSqliteError {
    code: i32,
    message: String,
}

impl std::fmt::Display for DirectSqliteError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for DirectSqliteError {}

impl DatabaseError for DirectSqliteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        match self.code {
            // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
            2067 | 1555 => ErrorKind::UniqueViolation,
            // SQLITE_CONSTRAINT_FOREIGNKEY
            787 => ErrorKind::ForeignKeyViolation,
            // SQLITE_CONSTRAINT_NOTNULL
            1299 => ErrorKind::NotNullViolation,
            // SQLITE_CONSTRAINT_CHECK
            275 => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> SqliteWriter {
        let writer = SqliteWriter::open(Path::new(":memory:")).unwrap();
        writer
    }

    #[tokio::test]
    async fn statements_transactions_and_errors() {
        let writer = writer();
        writer
            .execute(
                "CREATE TABLE t (k TEXT PRIMARY KEY, v REAL, n INTEGER, b BOOLEAN)",
                Vec::new(),
            )
            .await
            .unwrap();
        let done = writer
            .execute(
                "INSERT INTO t VALUES (?, ?, ?, ?), (?, ?, ?, ?)",
                vec![
                    "a".into(),
                    1.5f64.into(),
                    7i64.into(),
                    true.into(),
                    "b".into(),
                    sea_query::Value::Double(None),
                    (-1i32).into(),
                    false.into(),
                ],
            )
            .await
            .unwrap();
        assert_eq!(done.rows_affected, 2);
        let rows = writer
            .fetch("SELECT k, v, n, b FROM t ORDER BY k", Vec::new(), None)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].value("v").unwrap(), &SqliteValue::Real(1.5));
        assert_eq!(rows[1].value("v").unwrap(), &SqliteValue::Null);
        assert_eq!(rows[1].value("n").unwrap(), &SqliteValue::Integer(-1));
        assert!(rows[0].value("missing").is_err());

        // A duplicate key is a unique violation; the transaction it was in is rolled back on drop.
        let mut transaction = writer.begin().await.unwrap();
        transaction
            .execute("INSERT INTO t (k) VALUES (?)", vec!["c".into()])
            .unwrap();
        let error = transaction
            .execute("INSERT INTO t (k) VALUES (?)", vec!["a".into()])
            .unwrap_err();
        assert!(super::super::connection::is_unique_violation(&error));
        drop(transaction);
        let count = writer
            .fetch("SELECT count(*) AS n FROM t", Vec::new(), None)
            .await
            .unwrap();
        assert_eq!(count[0].value("n").unwrap(), &SqliteValue::Integer(2));

        // A committed transaction stays; the connection is usable after it and after a rollback.
        let mut transaction = writer.begin().await.unwrap();
        transaction
            .execute("INSERT INTO t (k) VALUES (?)", vec!["d".into()])
            .unwrap();
        transaction.commit().unwrap();
        let rows = writer
            .fetch("SELECT k FROM t ORDER BY k", Vec::new(), Some(3))
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);

        let error = writer
            .execute("INSERT INTO t (k) VALUES (?)", Vec::new())
            .await
            .unwrap_err();
        assert!(matches!(error, sqlx::Error::Protocol(_)), "{error}");

        writer.close().await;
        assert!(matches!(
            writer.execute("SELECT 1", Vec::new()).await,
            Err(sqlx::Error::PoolClosed)
        ));
    }
}
