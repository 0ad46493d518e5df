//! Turning errors into MLflow's error JSON: `{"error_code": ..., "message": ...}` with the code's status.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ferroflow_core::Error;
use ferroflow_proto::{ErrorCode, ErrorResponse};

/// The error type of every handler.
#[derive(Debug)]
pub struct ApiError(pub Error);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

impl ApiError {
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        ApiError(Error::invalid_parameter(message))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        if let Some(source) = &error.source {
            // Internal causes are logged once, here, and never sent to the client.
            tracing::error!(error_code = error.code.as_str(), cause = %source, "request failed");
        }
        error_response(error.code, error.message)
    }
}

/// Builds MLflow's error body with the status of `code`.
pub fn error_response(code: ErrorCode, message: String) -> Response {
    let status =
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&ErrorResponse {
        error_code: code,
        message,
    })
    .unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
