//! `--backend-store-uri` as MLflow users write it.

use std::path::PathBuf;

/// A parsed backend store URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendUri {
    /// `sqlite:///relative.db`, `sqlite:////absolute/path.db` or `sqlite:///:memory:`.
    Sqlite { path: PathBuf },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UriError {
    #[error("unsupported backend store uri '{0}': expected sqlite:///<path>")]
    Unsupported(String),
}

impl BackendUri {
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        // SQLAlchemy form: `sqlite://` + `/` + path, so an absolute path has four slashes.
        if let Some(rest) = uri.strip_prefix("sqlite:///") {
            let path = rest.split('?').next().unwrap_or(rest);
            if path.is_empty() {
                return Err(UriError::Unsupported(uri.to_owned()));
            }
            return Ok(BackendUri::Sqlite {
                path: PathBuf::from(path),
            });
        }
        Err(UriError::Unsupported(uri.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(uri: &str, expected: Result<&str, ()>) {
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

    #[test]
    fn sqlite_uris() {
        check("sqlite:///mlflow.db", Ok("mlflow.db"));
        check("sqlite:////tmp/x/mlflow.db", Ok("/tmp/x/mlflow.db"));
        check("sqlite:///:memory:", Ok(":memory:"));
        check("sqlite:///", Err(()));
        check("postgres://localhost/db", Err(()));
        check("file:///tmp/mlruns", Err(()));
    }
}
