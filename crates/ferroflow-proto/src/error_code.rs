//! The one table of MLflow error codes and the HTTP status each maps to.

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($($variant:ident => $status:literal),+ $(,)?) => {
        /// An MLflow `ErrorCode` (databricks.proto), as it appears in `error_code`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum ErrorCode {
            $($variant),+
        }

        impl ErrorCode {
            /// Every code, for tests that walk the table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The HTTP status MLflow answers with for this code.
            pub fn http_status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status),+
                }
            }
        }
    };
}

error_codes! {
    InternalError => 500,
    TemporarilyUnavailable => 503,
    IoError => 500,
    BadRequest => 400,
    ServiceUnderMaintenance => 503,
    WorkspaceTemporarilyUnavailable => 503,
    DeadlineExceeded => 504,
    Cancelled => 499,
    ResourceExhausted => 429,
    Aborted => 409,
    NotFound => 404,
    AlreadyExists => 409,
    Unauthenticated => 401,
    InvalidParameterValue => 400,
    EndpointNotFound => 404,
    MalformedRequest => 400,
    InvalidState => 500,
    PermissionDenied => 403,
    FeatureDisabled => 501,
    CustomerUnauthorized => 401,
    RequestLimitExceeded => 429,
    ResourceConflict => 409,
    NotImplemented => 501,
    DataLoss => 500,
    ResourceAlreadyExists => 400,
    ResourceDoesNotExist => 404,
    QuotaExceeded => 429,
    MaxBlockSizeExceeded => 400,
    MaxReadSizeExceeded => 400,
}

impl ErrorCode {
    /// The name as it is written on the wire, e.g. `RESOURCE_DOES_NOT_EXIST`.
    pub fn as_str(self) -> &'static str {
        // Exhaustive: a new variant forces a name here; a test checks it against serde.
        match self {
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
            ErrorCode::IoError => "IO_ERROR",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::ServiceUnderMaintenance => "SERVICE_UNDER_MAINTENANCE",
            ErrorCode::WorkspaceTemporarilyUnavailable => "WORKSPACE_TEMPORARILY_UNAVAILABLE",
            ErrorCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
            ErrorCode::Cancelled => "CANCELLED",
            ErrorCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorCode::Aborted => "ABORTED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::AlreadyExists => "ALREADY_EXISTS",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            ErrorCode::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            ErrorCode::MalformedRequest => "MALFORMED_REQUEST",
            ErrorCode::InvalidState => "INVALID_STATE",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::FeatureDisabled => "FEATURE_DISABLED",
            ErrorCode::CustomerUnauthorized => "CUSTOMER_UNAUTHORIZED",
            ErrorCode::RequestLimitExceeded => "REQUEST_LIMIT_EXCEEDED",
            ErrorCode::ResourceConflict => "RESOURCE_CONFLICT",
            ErrorCode::NotImplemented => "NOT_IMPLEMENTED",
            ErrorCode::DataLoss => "DATA_LOSS",
            ErrorCode::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            ErrorCode::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            ErrorCode::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorCode::MaxBlockSizeExceeded => "MAX_BLOCK_SIZE_EXCEEDED",
            ErrorCode::MaxReadSizeExceeded => "MAX_READ_SIZE_EXCEEDED",
        }
    }
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error_code: ErrorCode,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde_names() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
        }
    }

    #[test]
    fn statuses_follow_mlflow() {
        assert_eq!(ErrorCode::ResourceAlreadyExists.http_status(), 400);
        assert_eq!(ErrorCode::ResourceDoesNotExist.http_status(), 404);
        assert_eq!(ErrorCode::InvalidParameterValue.http_status(), 400);
        assert_eq!(ErrorCode::InvalidState.http_status(), 500);
        assert_eq!(ErrorCode::TemporarilyUnavailable.http_status(), 503);
    }
}
