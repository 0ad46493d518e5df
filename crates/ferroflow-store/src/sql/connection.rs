//! The one place that knows which driver runs a statement.
//!
//! The store's code is written once: it builds a [`Query`] (static SQL with `?` placeholders and
//! `"double-quoted"` identifiers, or a sea-query statement rendered for the dialect), runs it on [`Pools`]
//! or a [`Transaction`], and reads each [`Row`] with typed getters. Here each call is dispatched to the
//! native driver: rusqlite's direct connections for SQLite (`sqlite_writer.rs`, `sqlite_readers.rs`), sqlx's
//! for PostgreSQL and MySQL, so every column keeps its driver's full type support; sqlx's `Any` driver is not
//! used because it cannot read MySQL's `TINYINT`/`TEXT` nor SQLite's `BOOLEAN` columns.
//!
//! Static SQL is rendered per dialect at run time: PostgreSQL gets `$1, $2, ...` for the `?` placeholders,
//! MySQL gets backquotes for the double quotes around identifiers (`"key"` is reserved there). Values are
//! always bound, never written into the text.

use super::sqlite_readers::SqliteReaders;
use super::sqlite_writer::{DirectRow, DirectTransaction, SqliteWriter};
use crate::search::Dialect;
use ferroflow_core::Error;
use futures::TryStreamExt;
use rusqlite::types::Value as SqliteValue;
use sea_query::{
    MysqlQueryBuilder, PostgresQueryBuilder, QueryStatementWriter, SqliteQueryBuilder,
};
use sea_query_binder::SqlxValues;
use sqlx::mysql::{MySqlDatabaseError, MySqlPool, MySqlRow};
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Column, MySql, Postgres, Row as _, TypeInfo};
use std::borrow::Cow;

/// A statement and its bound values.
pub(crate) struct Query {
    sql: Cow<'static, str>,
    values: Vec<sea_query::Value>,
    /// Whether `sql` is already in the dialect's syntax (built by sea-query).
    rendered: bool,
}

/// A static statement: `?` placeholders and `"double-quoted"` identifiers, rendered for each dialect.
pub(crate) fn query(sql: impl Into<Cow<'static, str>>) -> Query {
    Query {
        sql: sql.into(),
        values: Vec::new(),
        rendered: false,
    }
}

impl Query {
    /// A sea-query statement built for `dialect`.
    pub(crate) fn built(statement: &impl QueryStatementWriter, dialect: Dialect) -> Self {
        let (sql, values) = match dialect {
            Dialect::Sqlite => statement.build(SqliteQueryBuilder),
            Dialect::Postgres => statement.build(PostgresQueryBuilder),
            Dialect::MySql => statement.build(MysqlQueryBuilder),
        };
        Self {
            sql: Cow::Owned(sql),
            values: values.0,
            rendered: true,
        }
    }

    pub(crate) fn bind(mut self, value: impl Into<sea_query::Value>) -> Self {
        self.values.push(value.into());
        self
    }

    pub(crate) fn bind_each<V: Into<sea_query::Value>>(
        mut self,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        self.values.extend(values.into_iter().map(Into::into));
        self
    }

    /// The statement for SQLite's direct write connection: static SQL is already in SQLite's syntax.
    fn into_sqlite(self) -> (Cow<'static, str>, Vec<sea_query::Value>) {
        (self.sql, self.values)
    }

    fn render(self, dialect: Dialect) -> (String, SqlxValues) {
        let sql = if self.rendered {
            self.sql.into_owned()
        } else {
            render(&self.sql, dialect)
        };
        (sql, SqlxValues(sea_query::Values(self.values)))
    }
}

/// Static SQL in `dialect`'s syntax: `$n` placeholders on PostgreSQL, backquoted identifiers on MySQL.
/// Single-quoted literals are left as they are.
pub(crate) fn render(sql: &str, dialect: Dialect) -> String {
    if dialect == Dialect::Sqlite {
        return sql.to_owned();
    }
    let mut rendered = String::with_capacity(sql.len() + 16);
    let mut in_literal = false;
    let mut in_identifier = false;
    let mut placeholder = 0;
    for character in sql.chars() {
        match character {
            '\'' if !in_identifier => {
                in_literal = !in_literal;
                rendered.push(character);
            }
            '"' if !in_literal => {
                in_identifier = !in_identifier;
                rendered.push(if dialect == Dialect::MySql { '`' } else { '"' });
            }
            '?' if !in_literal && !in_identifier && dialect == Dialect::Postgres => {
                placeholder += 1;
                rendered.push('$');
                rendered.push_str(&placeholder.to_string());
            }
            _ => rendered.push(character),
        }
    }
    rendered
}

/// The outcome of a write.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) rows_affected: u64,
    /// The id given to the inserted row by an auto-increment column (SQLite and MySQL; PostgreSQL uses
    /// `RETURNING`).
    pub(crate) last_insert_id: Option<i64>,
}

/// The connections of one database.
#[derive(Clone)]
pub(crate) enum Pools {
    /// One writer connection (SQLite takes one writer at a time; queueing here beats "database is
    /// locked"), driven directly (`sqlite_writer.rs`), and a pool of read-only connections (none for an
    /// in-memory database, which only the writer can see).
    Sqlite {
        writer: SqliteWriter,
        readers: Option<SqliteReaders>,
    },
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// Runs `$query` with `$method` on `$executor`, rendered for `$dialect`.
macro_rules! run {
    ($query:expr, $dialect:expr, $method:ident, $executor:expr) => {{
        let (sql, values) = $query.render($dialect);
        sqlx::query_with(&sql, values).$method($executor).await
    }};
}

impl Pools {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Pools::Sqlite { .. } => Dialect::Sqlite,
            Pools::Postgres(_) => Dialect::Postgres,
            Pools::MySql(_) => Dialect::MySql,
        }
    }

    /// Runs a read on a reader connection.
    pub(crate) async fn fetch_all(&self, query: Query) -> Result<Vec<Row>, sqlx::Error> {
        Ok(match self {
            Pools::Sqlite {
                readers: Some(readers),
                ..
            } => {
                let (sql, values) = query.into_sqlite();
                readers
                    .fetch(&sql, values, None)
                    .await?
                    .into_iter()
                    .map(Row::Direct)
                    .collect()
            }
            Pools::Sqlite {
                writer,
                readers: None,
            } => {
                let (sql, values) = query.into_sqlite();
                writer
                    .fetch(&sql, values, None)
                    .await?
                    .into_iter()
                    .map(Row::Direct)
                    .collect()
            }
            Pools::Postgres(pool) => run!(query, Dialect::Postgres, fetch_all, pool)?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
            Pools::MySql(pool) => run!(query, Dialect::MySql, fetch_all, pool)?
                .into_iter()
                .map(Row::MySql)
                .collect(),
        })
    }

    /// Streams the first column of each row of a read, as an integer, into `visit` until it answers
    /// `false`. No row is held: for walks over millions of rows that keep a few of them.
    pub(crate) async fn for_each_i64(
        &self,
        query: Query,
        mut visit: impl FnMut(i64) -> bool + Send,
    ) -> Result<(), sqlx::Error> {
        macro_rules! stream {
            ($dialect:expr, $pool:expr) => {{
                let (sql, values) = query.render($dialect);
                let mut rows = sqlx::query_scalar_with::<_, i64, _>(&sql, values).fetch($pool);
                while let Some(value) = rows.try_next().await? {
                    if !visit(value) {
                        break;
                    }
                }
                Ok(())
            }};
        }
        match self {
            Pools::Sqlite {
                readers: Some(readers),
                ..
            } => {
                let (sql, values) = query.into_sqlite();
                readers.for_each_i64(&sql, values, visit).await
            }
            Pools::Sqlite {
                writer,
                readers: None,
            } => {
                let (sql, values) = query.into_sqlite();
                writer.for_each_i64(&sql, values, visit).await
            }
            Pools::Postgres(pool) => stream!(Dialect::Postgres, pool),
            Pools::MySql(pool) => stream!(Dialect::MySql, pool),
        }
    }

    pub(crate) async fn fetch_optional(&self, query: Query) -> Result<Option<Row>, sqlx::Error> {
        Ok(match self {
            Pools::Sqlite {
                readers: Some(readers),
                ..
            } => {
                let (sql, values) = query.into_sqlite();
                readers
                    .fetch(&sql, values, Some(1))
                    .await?
                    .into_iter()
                    .next()
                    .map(Row::Direct)
            }
            Pools::Sqlite {
                writer,
                readers: None,
            } => {
                let (sql, values) = query.into_sqlite();
                writer
                    .fetch(&sql, values, Some(1))
                    .await?
                    .into_iter()
                    .next()
                    .map(Row::Direct)
            }
            Pools::Postgres(pool) => {
                run!(query, Dialect::Postgres, fetch_optional, pool)?.map(Row::Postgres)
            }
            Pools::MySql(pool) => {
                run!(query, Dialect::MySql, fetch_optional, pool)?.map(Row::MySql)
            }
        })
    }

    /// Runs one write on the writer connection (its own transaction).
    pub(crate) async fn execute(&self, query: Query) -> Result<Done, sqlx::Error> {
        Ok(match self {
            Pools::Sqlite { writer, .. } => {
                let (sql, values) = query.into_sqlite();
                writer.execute(&sql, values).await?
            }
            Pools::Postgres(pool) => {
                let result = run!(query, Dialect::Postgres, execute, pool)?;
                Done {
                    rows_affected: result.rows_affected(),
                    last_insert_id: None,
                }
            }
            Pools::MySql(pool) => {
                let result = run!(query, Dialect::MySql, execute, pool)?;
                Done {
                    rows_affected: result.rows_affected(),
                    last_insert_id: i64::try_from(result.last_insert_id()).ok(),
                }
            }
        })
    }

    /// Starts a transaction on the writer connection.
    pub(crate) async fn begin(&self) -> Result<Transaction, sqlx::Error> {
        Ok(match self {
            Pools::Sqlite { writer, .. } => Transaction::Sqlite(writer.begin().await?),
            Pools::Postgres(pool) => Transaction::Postgres(pool.begin().await?),
            Pools::MySql(pool) => Transaction::MySql(pool.begin().await?),
        })
    }

    pub(crate) async fn close(&self) {
        match self {
            Pools::Sqlite { writer, readers } => {
                if let Some(readers) = readers {
                    readers.close();
                }
                writer.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
            Pools::MySql(pool) => pool.close().await,
        }
    }
}

/// An open transaction; dropped without [`Transaction::commit`], it rolls back.
pub(crate) enum Transaction {
    Sqlite(DirectTransaction),
    Postgres(sqlx::Transaction<'static, Postgres>),
    MySql(sqlx::Transaction<'static, MySql>),
}

impl Transaction {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Transaction::Sqlite(_) => Dialect::Sqlite,
            Transaction::Postgres(_) => Dialect::Postgres,
            Transaction::MySql(_) => Dialect::MySql,
        }
    }

    pub(crate) async fn fetch_optional(
        &mut self,
        query: Query,
    ) -> Result<Option<Row>, sqlx::Error> {
        Ok(match self {
            Transaction::Sqlite(transaction) => {
                let (sql, values) = query.into_sqlite();
                transaction
                    .fetch(&sql, values, Some(1))?
                    .into_iter()
                    .next()
                    .map(Row::Direct)
            }
            Transaction::Postgres(transaction) => {
                run!(query, Dialect::Postgres, fetch_optional, &mut **transaction)?
                    .map(Row::Postgres)
            }
            Transaction::MySql(transaction) => {
                run!(query, Dialect::MySql, fetch_optional, &mut **transaction)?.map(Row::MySql)
            }
        })
    }

    pub(crate) async fn fetch_all(&mut self, query: Query) -> Result<Vec<Row>, sqlx::Error> {
        Ok(match self {
            Transaction::Sqlite(transaction) => {
                let (sql, values) = query.into_sqlite();
                transaction
                    .fetch(&sql, values, None)?
                    .into_iter()
                    .map(Row::Direct)
                    .collect()
            }
            Transaction::Postgres(transaction) => {
                run!(query, Dialect::Postgres, fetch_all, &mut **transaction)?
                    .into_iter()
                    .map(Row::Postgres)
                    .collect()
            }
            Transaction::MySql(transaction) => {
                run!(query, Dialect::MySql, fetch_all, &mut **transaction)?
                    .into_iter()
                    .map(Row::MySql)
                    .collect()
            }
        })
    }

    pub(crate) async fn execute(&mut self, query: Query) -> Result<Done, sqlx::Error> {
        Ok(match self {
            Transaction::Sqlite(transaction) => {
                let (sql, values) = query.into_sqlite();
                transaction.execute(&sql, values)?
            }
            Transaction::Postgres(transaction) => {
                let result = run!(query, Dialect::Postgres, execute, &mut **transaction)?;
                Done {
                    rows_affected: result.rows_affected(),
                    last_insert_id: None,
                }
            }
            Transaction::MySql(transaction) => {
                let result = run!(query, Dialect::MySql, execute, &mut **transaction)?;
                Done {
                    rows_affected: result.rows_affected(),
                    last_insert_id: i64::try_from(result.last_insert_id()).ok(),
                }
            }
        })
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Transaction::Sqlite(transaction) => transaction.commit(),
            Transaction::Postgres(transaction) => transaction.commit().await,
            Transaction::MySql(transaction) => transaction.commit().await,
        }
    }
}

/// One result row, read by column name with [`Row::get`].
pub(crate) enum Row {
    /// A row read on one of SQLite's direct connections (`sqlite_writer.rs`, `sqlite_readers.rs`).
    Direct(DirectRow),
    Postgres(PgRow),
    MySql(MySqlRow),
}

impl Row {
    pub(crate) fn get<T: FromColumn>(&self, column: &str) -> Result<T, Error> {
        T::from_column(self, column).map_err(db_error)
    }
}

/// A Rust type that every driver reads from the matching column of MLflow's schema.
pub(crate) trait FromColumn: Sized {
    fn from_column(row: &Row, column: &str) -> Result<Self, sqlx::Error>;
}

macro_rules! same_on_every_driver {
    ($($type:ty),*) => {$(
        impl FromColumn for $type {
            fn from_column(row: &Row, column: &str) -> Result<Self, sqlx::Error> {
                match row {
                    Row::Direct(row) => FromSqliteValue::from_value(row.value(column)?, column),
                    Row::Postgres(row) => row.try_get(column),
                    Row::MySql(row) => row.try_get(column),
                }
            }
        }
    )*};
}

same_on_every_driver!(String, Option<String>, f64, Option<f64>, bool, Option<bool>);

impl FromColumn for Option<i64> {
    fn from_column(row: &Row, column: &str) -> Result<Self, sqlx::Error> {
        match row {
            Row::Direct(row) => FromSqliteValue::from_value(row.value(column)?, column),
            // MLflow's `Integer` columns (experiment ids, statuses) are INT4 on PostgreSQL.
            Row::Postgres(row) => match row.try_column(column)?.type_info().name() {
                "INT4" => Ok(row.try_get::<Option<i32>, _>(column)?.map(i64::from)),
                "INT2" => Ok(row.try_get::<Option<i16>, _>(column)?.map(i64::from)),
                _ => row.try_get(column),
            },
            Row::MySql(row) => row.try_get(column),
        }
    }
}

/// A Rust type read from a value of SQLite's direct connection, converting between SQLite's storage
/// classes as sqlx's SQLite driver does (integers as doubles, 0/1 as booleans).
trait FromSqliteValue: Sized {
    fn from_value(value: &SqliteValue, column: &str) -> Result<Self, sqlx::Error>;
}

fn decode_error(column: &str, value: &SqliteValue, wanted: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: format!("cannot read {:?} as {wanted}", value.data_type()).into(),
    }
}

impl<T: FromSqliteValue> FromSqliteValue for Option<T> {
    fn from_value(value: &SqliteValue, column: &str) -> Result<Self, sqlx::Error> {
        match value {
            SqliteValue::Null => Ok(None),
            value => T::from_value(value, column).map(Some),
        }
    }
}

impl FromSqliteValue for String {
    fn from_value(value: &SqliteValue, column: &str) -> Result<Self, sqlx::Error> {
        match value {
            SqliteValue::Text(text) => Ok(text.clone()),
            SqliteValue::Blob(bytes) => {
                String::from_utf8(bytes.clone()).map_err(|_| decode_error(column, value, "text"))
            }
            SqliteValue::Integer(number) => Ok(number.to_string()),
            SqliteValue::Real(number) => Ok(number.to_string()),
            SqliteValue::Null => Err(decode_error(column, value, "text")),
        }
    }
}

impl FromSqliteValue for f64 {
    fn from_value(value: &SqliteValue, column: &str) -> Result<Self, sqlx::Error> {
        match value {
            SqliteValue::Real(number) => Ok(*number),
            SqliteValue::Integer(number) => Ok(*number as f64),
            _ => Err(decode_error(column, value, "a double")),
        }
    }
}

impl FromSqliteValue for i64 {
    fn from_value(value: &SqliteValue, column: &str) -> Result<Self, sqlx::Error> {
        match value {
            SqliteValue::Integer(number) => Ok(*number),
            SqliteValue::Real(number) if number.fract() == 0.0 => Ok(*number as i64),
            _ => Err(decode_error(column, value, "an integer")),
        }
    }
}

impl FromSqliteValue for bool {
    fn from_value(value: &SqliteValue, column: &str) -> Result<Self, sqlx::Error> {
        i64::from_value(value, column)
            .map(|number| number != 0)
            .map_err(|_| decode_error(column, value, "a boolean"))
    }
}

impl FromColumn for i64 {
    fn from_column(row: &Row, column: &str) -> Result<Self, sqlx::Error> {
        Option::<i64>::from_column(row, column)?.ok_or_else(|| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: "unexpected NULL".into(),
        })
    }
}

/// Maps a database failure to the client-facing error. An unreachable, restarting, overloaded or busy
/// database is TEMPORARILY_UNAVAILABLE (503, which MLflow's client retries); the rest is INTERNAL_ERROR.
/// The statement or transaction failed whole, so nothing was half-written either way.
pub(crate) fn db_error(error: sqlx::Error) -> Error {
    if is_unavailable(&error) {
        Error::unavailable(error)
    } else if is_storage_full(&error) {
        Error::out_of_space(METADATA_STORE_FULL, error)
    } else {
        Error::internal(error)
    }
}

/// What the client reads when the database's disk is full (the statement or transaction failed whole).
const METADATA_STORE_FULL: &str = "the metadata store is out of disk space";

/// Whether the database refused a write because its disk is full: SQLITE_FULL, PostgreSQL's
/// `disk_full` (53100), MySQL's "disk full" (1021) and "table is full" (1114).
fn is_storage_full(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(database) = error else {
        return false;
    };
    if let Some(mysql) = database.try_downcast_ref::<MySqlDatabaseError>() {
        return matches!(mysql.number(), 1021 | 1114);
    }
    matches!(database.code().as_deref(), Some("13" | "53100"))
}

fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => {
            if let Some(mysql) = database.try_downcast_ref::<MySqlDatabaseError>() {
                return matches!(
                    mysql.number(),
                    // Too many connections, shutdown in progress, lock wait timeout, deadlock, connection
                    // killed (MariaDB), statement timeouts (MariaDB, MySQL), server gone or lost.
                    1040 | 1053 | 1205 | 1213 | 1927 | 1969 | 3024 | 2006 | 2013 | 4031
                );
            }
            let code = database.code().unwrap_or_default();
            match code.as_ref() {
                // PostgreSQL: connection exceptions (class 08), admin shutdown, crash shutdown, cannot
                // connect now, too many connections, serialization failure, deadlock, lock not
                // available, statement timeout.
                "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01" | "55P03" | "57014" => {
                    true
                }
                code if code.starts_with("08") => true,
                // SQLite: busy and locked, with their extended codes.
                "5" | "6" | "261" | "262" | "517" | "773" => true,
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether the statement failed on a unique or primary key.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_proto::ErrorCode;

    fn sqlite_failure(code: i32, message: &str) -> sqlx::Error {
        super::super::sqlite_writer::to_sqlx(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            Some(message.to_owned()),
        ))
    }

    #[test]
    fn database_failures_map_to_what_the_client_should_do() {
        // SQLITE_FULL: the disk of the database is full.
        let full = db_error(sqlite_failure(13, "database or disk is full"));
        assert_eq!(full.code, ErrorCode::ResourceExhausted);
        assert_eq!(full.message, "the metadata store is out of disk space");
        assert!(full.source.is_some(), "the cause is kept for the log");
        // SQLITE_BUSY: retry later.
        let busy = db_error(sqlite_failure(5, "database is locked"));
        assert_eq!(busy.code, ErrorCode::TemporarilyUnavailable);
        // A unique key: a bug, not the client's to fix.
        let unique = db_error(sqlite_failure(2067, "UNIQUE constraint failed"));
        assert_eq!(unique.code, ErrorCode::InternalError);
        assert_eq!(unique.message, "internal error");
        assert_eq!(
            db_error(sqlx::Error::PoolTimedOut).code,
            ErrorCode::TemporarilyUnavailable
        );
    }

    #[test]
    fn static_sql_renders_for_each_dialect() {
        let sql = "SELECT \"key\", value FROM params WHERE run_uuid = ? AND \"key\" IN (?, ?) AND value != '?\"'";
        assert_eq!(render(sql, Dialect::Sqlite), sql);
        assert_eq!(
            render(sql, Dialect::Postgres),
            "SELECT \"key\", value FROM params WHERE run_uuid = $1 AND \"key\" IN ($2, $3) AND value != '?\"'"
        );
        assert_eq!(
            render(sql, Dialect::MySql),
            "SELECT `key`, value FROM params WHERE run_uuid = ? AND `key` IN (?, ?) AND value != '?\"'"
        );
    }
}
