//! Fresh databases on each backend, and the macro that runs a case on all of them.

use ferroflow_store::{BackendUri, OpenError, PoolSettings, ServerUri, SqlStore};
use sqlx::{Connection, Executor};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Runs each listed `async fn case(backend: Backend)` once per backend, as `sqlite::case`,
/// `postgres::case` and `mysql::case`.
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::backends::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::backends::Backend::Postgres).await
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::backends::Backend::MySql).await
                }
            )*
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

pub const ARTIFACT_ROOT: &str = "mlflow-artifacts:/";

impl Backend {
    fn admin_uri(self) -> Option<String> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                std::env::var("FERROFLOW_TEST_POSTGRES")
                    .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".to_owned()),
            ),
            Backend::MySql => Some(
                std::env::var("FERROFLOW_TEST_MYSQL")
                    .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned()),
            ),
        }
    }

    fn skipped(self) -> &'static AtomicBool {
        static POSTGRES: AtomicBool = AtomicBool::new(false);
        static MYSQL: AtomicBool = AtomicBool::new(false);
        match self {
            Backend::MySql => &MYSQL,
            Backend::Sqlite | Backend::Postgres => &POSTGRES,
        }
    }
}

/// Pool limits for tests: a short wait when the database is away, so outage tests are quick.
pub fn test_pool_settings() -> PoolSettings {
    PoolSettings {
        acquire_timeout: Duration::from_secs(3),
        ..PoolSettings::default()
    }
}

/// A fresh, empty database, dropped when this is dropped.
pub struct TestDatabase {
    pub backend: Backend,
    pub uri: BackendUri,
    server_database: Option<(String, String)>,
    _directory: Option<tempfile::TempDir>,
}

fn server_uri(uri: &BackendUri) -> &ServerUri {
    match uri {
        BackendUri::Postgres(server) | BackendUri::MySql(server) => server,
        BackendUri::Sqlite { .. } => panic!("not a server database"),
    }
}

/// `scheme://user:password@host:port/` + `database`, from the admin URI.
fn with_database(admin: &str, database: &str) -> String {
    let (base, _) = admin.rsplit_once('/').expect("admin uri names a database");
    format!("{base}/{database}")
}

impl TestDatabase {
    /// A new empty database on `backend`; `None` (after a loud message) when its server is unreachable
    /// outside CI.
    pub async fn create(backend: Backend) -> Option<Self> {
        let Some(admin) = backend.admin_uri() else {
            let directory = tempfile::tempdir().unwrap();
            let path = directory.path().join("mlflow.db");
            return Some(Self {
                backend,
                uri: BackendUri::Sqlite { path },
                server_database: None,
                _directory: Some(directory),
            });
        };
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "ff_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid_suffix()
        );
        let created = match backend {
            // Collation C: strings sort the same on every machine.
            Backend::Postgres => {
                admin_execute(
                    backend,
                    &admin,
                    &format!(
                        "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' \
                         LC_COLLATE 'C' LC_CTYPE 'C'"
                    ),
                )
                .await
            }
            Backend::MySql => {
                admin_execute(backend, &admin, &format!("CREATE DATABASE `{name}`")).await
            }
            Backend::Sqlite => unreachable!(),
        };
        if let Err(error) = created {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{backend:?} server at {admin} is unreachable under CI=true: {error}");
            }
            if !backend.skipped().swap(true, Ordering::Relaxed) {
                let _ = writeln!(
                    std::io::stderr(),
                    "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                     !!! SKIPPING the {backend:?} store tests: cannot reach {admin}: {error}\n\
                     !!! (set CI=true to make this a failure)\n\
                     !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
                );
            }
            return None;
        }
        let uri = BackendUri::parse(&with_database(&admin, &name)).unwrap();
        Some(Self {
            backend,
            uri,
            server_database: Some((admin, name)),
            _directory: None,
        })
    }

    /// Opens a store on this database (creating or checking the schema).
    pub async fn open(&self) -> Result<SqlStore, OpenError> {
        SqlStore::open(&self.uri, ARTIFACT_ROOT, &test_pool_settings()).await
    }

    /// The URI of this database with another host and port (through a proxy).
    pub fn uri_through(&self, port: u16) -> BackendUri {
        let mut server = server_uri(&self.uri).clone();
        server.host = Some("127.0.0.1".to_owned());
        server.port = Some(port);
        match self.backend {
            Backend::Postgres => BackendUri::Postgres(server),
            Backend::MySql => BackendUri::MySql(server),
            Backend::Sqlite => panic!("no proxy for SQLite"),
        }
    }

    /// The host and port of the server.
    pub fn server_address(&self) -> String {
        let server = server_uri(&self.uri);
        let port = server.port.unwrap_or(match self.backend {
            Backend::MySql => 3306,
            _ => 5432,
        });
        format!("{}:{port}", server.host.as_deref().unwrap_or("127.0.0.1"))
    }

    /// Runs `sql` on this database outside any store.
    pub async fn execute(&self, sql: &str) {
        match (&self.uri, &self.server_database) {
            (BackendUri::Sqlite { path }, _) => {
                let mut connection = sqlx::SqliteConnection::connect(&format!(
                    "sqlite://{}?mode=rwc",
                    path.display()
                ))
                .await
                .unwrap();
                connection.execute(sqlx::raw_sql(sql)).await.unwrap();
                connection.close().await.unwrap();
            }
            (_, Some((admin, name))) => {
                admin_execute(self.backend, &with_database(admin, name), sql)
                    .await
                    .unwrap();
            }
            _ => unreachable!(),
        }
    }

    /// The first column of the first row of `sql`, as text.
    pub async fn fetch_text(&self, sql: &str) -> String {
        match (&self.uri, &self.server_database) {
            (BackendUri::Sqlite { path }, _) => {
                let mut connection =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap();
                sqlx::query_scalar(sql)
                    .fetch_one(&mut connection)
                    .await
                    .unwrap()
            }
            (_, Some((admin, name))) => {
                let uri = with_database(admin, name);
                match self.backend {
                    Backend::Postgres => {
                        let mut connection = sqlx::PgConnection::connect(&uri).await.unwrap();
                        sqlx::query_scalar(sql)
                            .fetch_one(&mut connection)
                            .await
                            .unwrap()
                    }
                    _ => {
                        let mut connection = sqlx::MySqlConnection::connect(&uri).await.unwrap();
                        sqlx::query_scalar(sql)
                            .fetch_one(&mut connection)
                            .await
                            .unwrap()
                    }
                }
            }
            _ => unreachable!(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.server_database.take() else {
            return;
        };
        let backend = self.backend;
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let statement = match backend {
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS `{name}`"),
                };
                admin_execute(backend, &admin, &statement).await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(std::io::stderr(), "warning: could not drop a test database");
        }
    }
}

async fn admin_execute(backend: Backend, uri: &str, sql: &str) -> Result<(), sqlx::Error> {
    match backend {
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(uri).await?;
            connection.execute(sqlx::raw_sql(sql)).await?;
            connection.close().await
        }
        Backend::MySql => {
            let mut connection = sqlx::MySqlConnection::connect(uri).await?;
            connection.execute(sqlx::raw_sql(sql)).await?;
            connection.close().await
        }
        Backend::Sqlite => unreachable!(),
    }
}

fn uuid_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|duration| duration.subsec_nanos())
        .unwrap_or_default();
    format!("{nanos:08x}")
}
