//! SQLite's read-only connections, driven directly through rusqlite like the writer (`sqlite_writer.rs`).
//!
//! Under WAL, readers run beside the one writer and see the last committed state. Each read takes a
//! connection from a small pool (opened on first need, at most [`MAX_READERS`]), runs its statement and
//! returns it. A single-row read runs in place on the task's thread (it costs microseconds); a read of many
//! rows runs in `block_in_place` on the multi-threaded runtime, so a long one (a 25,000-point history page,
//! a search) lets the runtime move the thread's other tasks elsewhere instead of holding them up.

use super::sqlite_writer::{
    fetch, for_each_i64, register_regexp, to_sqlx, DirectRow, STATEMENT_CACHE,
};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Semaphore;

/// Read connections open at most at once.
pub(crate) const MAX_READERS: usize = 8;

/// The read connections of one database file; clones share them.
#[derive(Clone)]
pub(crate) struct SqliteReaders {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    closed: AtomicBool,
}

impl SqliteReaders {
    /// Readers of the database at `path`, which must exist (the writer made it). The first connection is
    /// opened here, so a file that cannot be read fails now rather than at the first request.
    pub(crate) fn open(path: &Path) -> Result<Self, sqlx::Error> {
        let first = open_reader(path)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                idle: Mutex::new(vec![first]),
                permits: Semaphore::new(MAX_READERS),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// The rows of one read statement (`limit` rows at most).
    pub(crate) async fn fetch(
        &self,
        sql: &str,
        values: Vec<sea_query::Value>,
        limit: Option<usize>,
    ) -> Result<Vec<DirectRow>, sqlx::Error> {
        self.read(limit == Some(1), |connection| {
            fetch(connection, sql, values, limit)
        })
        .await
    }

    /// Streams the first column of each row of one read statement into `visit` until it answers `false`.
    pub(crate) async fn for_each_i64(
        &self,
        sql: &str,
        values: Vec<sea_query::Value>,
        visit: impl FnMut(i64) -> bool,
    ) -> Result<(), sqlx::Error> {
        self.read(false, |connection| {
            for_each_i64(connection, sql, values, visit)
        })
        .await
    }

    /// Runs `read` on an idle connection (or a new one), then returns the connection to the pool.
    async fn read<T>(
        &self,
        single_row: bool,
        read: impl FnOnce(&Connection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let connection = match idle {
            Some(connection) => connection,
            None => open_reader(&self.inner.path)?,
        };
        let result = run_read(single_row, || read(&connection));
        if !self.inner.closed.load(Ordering::Acquire) {
            self.inner
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(connection);
        }
        result
    }

    /// Closes the idle connections; those in use close when their read ends.
    pub(crate) fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.permits.close();
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Runs a read in place, or in `block_in_place` when it may be long and the runtime can hand the thread's
/// other tasks to another worker.
fn run_read<T>(single_row: bool, read: impl FnOnce() -> T) -> T {
    let multi_threaded = Handle::try_current()
        .map(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread)
        .unwrap_or(false);
    if single_row || !multi_threaded {
        read()
    } else {
        tokio::task::block_in_place(read)
    }
}

fn open_reader(path: &Path) -> Result<Connection, sqlx::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(to_sqlx)?;
    connection
        .busy_timeout(std::time::Duration::from_secs(30))
        .map_err(to_sqlx)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    register_regexp(&connection)?;
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::sqlite_writer::SqliteWriter;
    use rusqlite::types::Value as SqliteValue;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_see_committed_writes_and_close() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("db.sqlite");
        let writer = SqliteWriter::open(&path).unwrap();
        writer
            .execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
            .await
            .unwrap();
        let readers = SqliteReaders::open(&path).unwrap();
        let mut transaction = writer.begin().await.unwrap();
        transaction
            .execute("INSERT INTO t VALUES (?, ?)", vec!["a".into(), 1i64.into()])
            .unwrap();
        // Not committed yet: invisible to readers.
        let rows = readers
            .fetch("SELECT k FROM t", Vec::new(), None)
            .await
            .unwrap();
        assert!(rows.is_empty());
        transaction.commit().unwrap();
        let reads = (0..20).map(|_| {
            let readers = readers.clone();
            tokio::spawn(async move {
                readers
                    .fetch(
                        "SELECT v FROM t WHERE k REGEXP ?",
                        vec!["^a$".into()],
                        Some(1),
                    )
                    .await
            })
        });
        for read in reads {
            let rows = read.await.unwrap().unwrap();
            assert_eq!(rows[0].value("v").unwrap(), &SqliteValue::Integer(1));
        }
        assert!(readers
            .fetch("INSERT INTO t VALUES ('b', 2)", Vec::new(), None)
            .await
            .is_err());
        readers.close();
        assert!(matches!(
            readers.fetch("SELECT 1", Vec::new(), None).await,
            Err(sqlx::Error::PoolClosed)
        ));
        writer.close().await;
    }
}
