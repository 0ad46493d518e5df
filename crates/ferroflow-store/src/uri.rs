//! `--backend-store-uri` as MLflow users write it: SQLAlchemy database URLs.
//!
//! ```text
//! sqlite:///relative.db   sqlite:////absolute/path.db   sqlite:///:memory:
//! postgresql://user:password@host:5432/database?sslmode=require
//! postgresql+psycopg2://...   postgres://...            (any `+driver` suffix)
//! mysql://user:password@host:3306/database?charset=utf8mb4
//! mysql+pymysql://...     mariadb+mariadbconnector://...
//! ```
//!
//! The user name, password and database are percent-decoded, as SQLAlchemy decodes them; a host in
//! brackets is an IPv6 address. Query options are kept as given and interpreted by the backend that opens
//! the database. The password never appears in a message: [`BackendUri::redacted`] hides it, and the
//! `Debug` of [`ServerUri`] too.

use percent_encoding::percent_decode_str;
use std::fmt;
use std::path::PathBuf;

/// A parsed backend store URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendUri {
    /// `sqlite:///relative.db`, `sqlite:////absolute/path.db` or `sqlite:///:memory:`.
    Sqlite { path: PathBuf },
    /// `postgresql://`, `postgres://` or `postgresql+<driver>://`.
    Postgres(ServerUri),
    /// `mysql://`, `mysql+<driver>://`, `mariadb://` or `mariadb+<driver>://`.
    MySql(ServerUri),
}

/// The parts of a database server URL.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerUri {
    /// The scheme as written (`postgresql+psycopg2`), kept for messages.
    pub scheme: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    /// The query options, decoded, in their order.
    pub options: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UriError {
    #[error(
        "unsupported backend store uri '{0}': expected sqlite:///<path>, \
         postgresql://<user>:<password>@<host>:<port>/<database> or \
         mysql://<user>:<password>@<host>:<port>/<database>"
    )]
    Unsupported(String),
    #[error("invalid backend store uri '{uri}': {reason}")]
    Invalid { uri: String, reason: String },
}

impl BackendUri {
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Err(UriError::Unsupported(redact(uri)));
        };
        let dialect = scheme.split('+').next().unwrap_or(scheme);
        match dialect.to_ascii_lowercase().as_str() {
            "sqlite" => {
                // SQLAlchemy form: `sqlite://` + `/` + path, so an absolute path has four slashes.
                let Some(path) = rest.strip_prefix('/') else {
                    return Err(UriError::Unsupported(redact(uri)));
                };
                let path = path.split('?').next().unwrap_or(path);
                if path.is_empty() {
                    return Err(UriError::Unsupported(redact(uri)));
                }
                Ok(BackendUri::Sqlite {
                    path: PathBuf::from(path),
                })
            }
            "postgresql" | "postgres" => Ok(BackendUri::Postgres(ServerUri::parse(scheme, rest)?)),
            "mysql" | "mariadb" => Ok(BackendUri::MySql(ServerUri::parse(scheme, rest)?)),
            _ => Err(UriError::Unsupported(redact(uri))),
        }
    }

    /// The URI with its password hidden, for messages and logs.
    pub fn redacted(&self) -> String {
        match self {
            BackendUri::Sqlite { path } => format!("sqlite:///{}", path.display()),
            BackendUri::Postgres(server) | BackendUri::MySql(server) => server.to_string(),
        }
    }
}

impl ServerUri {
    fn parse(scheme: &str, rest: &str) -> Result<Self, UriError> {
        let invalid = |reason: &str| UriError::Invalid {
            uri: redact(&format!("{scheme}://{rest}")),
            reason: reason.to_owned(),
        };
        let (location, query) = match rest.split_once('?') {
            Some((location, query)) => (location, Some(query)),
            None => (rest, None),
        };
        let (authority, database) = match location.split_once('/') {
            Some((authority, database)) => (authority, Some(database)),
            None => (location, None),
        };
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => match userinfo.split_once(':') {
                Some((user, password)) => (Some(decode(user)?), Some(decode(password)?)),
                None => (Some(decode(userinfo)?), None),
            },
        };
        let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
            let (address, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid("unclosed '[' in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(port) => Some(port),
                None if after.is_empty() => None,
                None => return Err(invalid("unexpected text after the IPv6 host")),
            };
            (Some(address.to_owned()), port)
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (Some(host.to_owned()), Some(port)),
                None => (Some(host_port.to_owned()), None),
            }
        };
        let port = match port {
            None | Some("") => None,
            Some(port) => Some(
                port.parse::<u16>()
                    .map_err(|_| invalid("the port is not a number from 0 to 65535"))?,
            ),
        };
        let mut options = Vec::new();
        for pair in query.unwrap_or_default().split('&') {
            if pair.is_empty() {
                continue;
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            options.push((decode_query(key)?, decode_query(value)?));
        }
        Ok(Self {
            scheme: scheme.to_owned(),
            user: user.filter(|user| !user.is_empty()),
            password,
            host: host.filter(|host| !host.is_empty()),
            port,
            database: database
                .map(decode)
                .transpose()?
                .filter(|database| !database.is_empty()),
            options,
        })
    }

    /// The value of query option `key`, if given.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// Written with the password hidden.
impl fmt::Display for ServerUri {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}://", self.scheme)?;
        if let Some(user) = &self.user {
            write!(formatter, "{user}")?;
            if self.password.is_some() {
                write!(formatter, ":***")?;
            }
            write!(formatter, "@")?;
        }
        match &self.host {
            Some(host) if host.contains(':') => write!(formatter, "[{host}]")?,
            Some(host) => write!(formatter, "{host}")?,
            None => {}
        }
        if let Some(port) = self.port {
            write!(formatter, ":{port}")?;
        }
        if let Some(database) = &self.database {
            write!(formatter, "/{database}")?;
        }
        for (index, (key, value)) in self.options.iter().enumerate() {
            let separator = if index == 0 { '?' } else { '&' };
            if is_secret_option(key) {
                write!(formatter, "{separator}{key}=***")?;
            } else {
                write!(formatter, "{separator}{key}={value}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ServerUri {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ServerUri({self})")
    }
}

fn is_secret_option(key: &str) -> bool {
    key.to_ascii_lowercase().contains("password")
}

fn decode(text: &str) -> Result<String, UriError> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| UriError::Invalid {
            uri: String::new(),
            reason: "a percent-encoded part is not UTF-8".to_owned(),
        })
}

/// Query strings are form-encoded: `+` is a space, as SQLAlchemy reads them.
fn decode_query(text: &str) -> Result<String, UriError> {
    decode(&text.replace('+', " "))
}

/// Hides the password of a URI that did not parse.
fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &uri[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &uri[..scheme_end + 3], user, &uri[at..]),
                None => uri.to_owned(),
            }
        }
        _ => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(uri: &str, expected: Result<&str, ()>) {
        let parsed = BackendUri::parse(uri);
        match expected {
            Ok(path) => assert_eq!(
                parsed,
                Ok(BackendUri::Sqlite {
                    path: PathBuf::from(path)
                }),
                "{uri}"
            ),
            Err(()) => assert!(parsed.is_err(), "{uri}"),
        }
    }

    fn server(uri: &str) -> ServerUri {
        match BackendUri::parse(uri) {
            Ok(BackendUri::Postgres(server) | BackendUri::MySql(server)) => server,
            other => panic!("{uri}: {other:?}"),
        }
    }

    #[test]
    fn sqlite_uris() {
        sqlite("sqlite:///mlflow.db", Ok("mlflow.db"));
        sqlite("sqlite:////tmp/x/mlflow.db", Ok("/tmp/x/mlflow.db"));
        sqlite("sqlite:///:memory:", Ok(":memory:"));
        sqlite("sqlite+pysqlite:///mlflow.db", Ok("mlflow.db"));
        sqlite("sqlite:///", Err(()));
        sqlite("sqlite://", Err(()));
        sqlite("file:///tmp/mlruns", Err(()));
        sqlite("mssql://sa@db/x", Err(()));
        sqlite("mlruns", Err(()));
    }

    #[test]
    fn server_uris() {
        for scheme in [
            "postgresql",
            "postgres",
            "postgresql+psycopg2",
            "postgresql+psycopg",
        ] {
            let uri = format!("{scheme}://user:p%40ss%3Aw0rd@db.example.com:5433/ml%20flow?sslmode=require&application_name=ferro+flow");
            let parsed = BackendUri::parse(&uri).unwrap();
            let BackendUri::Postgres(server) = &parsed else {
                panic!("{parsed:?}")
            };
            assert_eq!(server.user.as_deref(), Some("user"));
            assert_eq!(server.password.as_deref(), Some("p@ss:w0rd"));
            assert_eq!(server.host.as_deref(), Some("db.example.com"));
            assert_eq!(server.port, Some(5433));
            assert_eq!(server.database.as_deref(), Some("ml flow"));
            assert_eq!(server.option("sslmode"), Some("require"));
            assert_eq!(server.option("application_name"), Some("ferro flow"));
            assert!(!parsed.redacted().contains("p@ss"), "{}", parsed.redacted());
            assert!(!format!("{parsed:?}").contains("w0rd"));
        }
        for scheme in [
            "mysql",
            "mysql+pymysql",
            "mysql+mysqldb",
            "mariadb+mariadbconnector",
        ] {
            let parsed = BackendUri::parse(&format!("{scheme}://root@127.0.0.1/mlflow")).unwrap();
            assert!(matches!(parsed, BackendUri::MySql(_)), "{parsed:?}");
        }
        let bare = server("postgresql:///mlflow?host=/var/run/postgresql");
        assert_eq!((&bare.user, &bare.host, bare.port), (&None, &None, None));
        assert_eq!(bare.database.as_deref(), Some("mlflow"));
        assert_eq!(bare.option("host"), Some("/var/run/postgresql"));
        let ipv6 = server("mysql://u:p@[::1]:3307/db");
        assert_eq!(ipv6.host.as_deref(), Some("::1"));
        assert_eq!(ipv6.port, Some(3307));
        assert_eq!(ipv6.to_string(), "mysql://u:***@[::1]:3307/db");
        assert_eq!(server("postgres://db").database, None);
        assert!(BackendUri::parse("postgresql://u:secret@host:port/db")
            .unwrap_err()
            .to_string()
            .contains("u:***@"));
    }

    #[test]
    fn secrets_are_redacted() {
        let parsed =
            BackendUri::parse("postgresql://me:hunter2@db/x?sslpassword=hunter3&sslmode=require")
                .unwrap();
        assert_eq!(
            parsed.redacted(),
            "postgresql://me:***@db/x?sslpassword=***&sslmode=require"
        );
        let error = BackendUri::parse("oracle://me:hunter2@db/x").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
