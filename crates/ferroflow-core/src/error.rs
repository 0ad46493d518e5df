//! The error every service and store call returns: an MLflow error code and a message for the client.

use ferroflow_proto::ErrorCode;
use std::fmt;

/// An error with the MLflow code the client sees. Internal failures keep their cause for the server log and
/// show the client a generic message.
#[derive(Debug)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
        }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceDoesNotExist, message)
    }

    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceAlreadyExists, message)
    }

    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidState, message)
    }

    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotImplemented, message)
    }

    /// MLflow's message for a required field that is absent or empty.
    pub fn missing_parameter(name: &str) -> Self {
        Self::invalid_parameter(format!(
            "Missing value for required parameter '{name}'. See the API docs for more information about \
             request parameters."
        ))
    }

    /// An internal failure: the cause is kept for the log, the client sees a generic message.
    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            code: ErrorCode::InternalError,
            message: "internal error".to_owned(),
            source: Some(Box::new(cause)),
        }
    }

    /// A store is out of disk space: RESOURCE_EXHAUSTED with a message that says so (never a path or SQL);
    /// the cause is kept for the log.
    pub fn out_of_space(
        message: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            code: ErrorCode::ResourceExhausted,
            message: message.into(),
            source: Some(Box::new(cause)),
        }
    }

    /// The store is unreachable for now; clients retry.
    pub fn unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            code: ErrorCode::TemporarilyUnavailable,
            message: "the metadata store is temporarily unavailable".to_owned(),
            source: Some(Box::new(cause)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.code.as_str(), self.message)?;
        if let Some(source) = &self.source {
            write!(formatter, " ({source})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}
