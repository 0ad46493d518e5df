//! `POST /v1/traces`: OpenTelemetry (OTLP/HTTP) span ingest, as MLflow's `otel_api.py` serves it.
//!
//! - `Content-Type` `application/x-protobuf` (what the mlflow client and most SDKs send) or
//!   `application/json` (OTLP JSON: camelCase names, hex ids); anything else is 400.
//! - `Content-Encoding` none, `gzip` or `deflate` (zlib or raw); anything else is 400.
//! - `x-mlflow-experiment-id` names the experiment (absent: 422, as FastAPI answers a missing header);
//!   `x-mlflow-run-id` links the finished traces to a run.
//! - The body is decoded with `opentelemetry-proto` (prost, or its serde types for JSON). A body that
//!   does not decode, or has no `resourceSpans`, is 400 and stores nothing; a span without ids is 422.
//! - The whole batch is one store transaction. The answer is an empty protobuf
//!   `ExportTraceServiceResponse`; store errors are MLflow's error JSON.
//!
//! Errors of this route are `{"detail": ...}`, FastAPI's shape, as MLflow answers them.

use crate::error::ApiError;
use crate::otlp_decode::decode_export;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Json;

/// The largest OTLP body accepted, compressed or not.
const MAX_OTLP_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The OTLP route, at the server root.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/v1/traces", post(export_traces))]
}

fn detail(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({ "detail": message.into() })),
    )
        .into_response()
}

/// A refusal of the body: its status and `detail`.
#[derive(Debug)]
struct Rejection(StatusCode, &'static str);

impl Rejection {
    fn into_response(self) -> Response {
        detail(self.0, self.1)
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

async fn export_traces(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let content_type = header_text(&headers, header::CONTENT_TYPE.as_str());
    let media_type = content_type.map(|value| {
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    let json = match media_type.as_deref() {
        Some("application/x-protobuf") => false,
        Some("application/json") => true,
        _ => {
            return detail(
                StatusCode::BAD_REQUEST,
                format!(
                "Invalid Content-Type: {}. Expected: application/x-protobuf or application/json",
                content_type.unwrap_or("None")
            ),
            )
        }
    };
    let Some(experiment_id) = header_text(&headers, "x-mlflow-experiment-id").map(str::to_owned)
    else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({"detail": [{
                "type": "missing",
                "loc": ["header", "x-mlflow-experiment-id"],
                "msg": "Field required",
                "input": null,
            }]})),
        )
            .into_response();
    };
    let run_id = header_text(&headers, "x-mlflow-run-id").map(str::to_owned);
    let limited = http_body_util::Limited::new(request.into_body(), MAX_OTLP_BODY_BYTES);
    let body = match http_body_util::BodyExt::collect(limited).await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return detail(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The OTLP request body is too large",
            )
        }
    };
    let encoding = header_text(&headers, header::CONTENT_ENCODING.as_str()).map(str::to_owned);
    let decoded = tokio::task::spawn_blocking(move || {
        decode_export(&body, encoding.as_deref(), json, MAX_OTLP_BODY_BYTES)
            .map_err(|message| Rejection(StatusCode::BAD_REQUEST, message))
    })
    .await;
    let resources = match decoded {
        Ok(Ok(resources)) => resources,
        Ok(Err(rejection)) => return rejection.into_response(),
        Err(_) => {
            return detail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Failed to decode the OpenTelemetry request",
            )
        }
    };
    match state
        .traces
        .log_spans(&experiment_id, run_id.as_deref(), &resources)
        .await
    {
        Ok(true) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Body::empty(),
        )
            .into_response(),
        Ok(false) => detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Cannot convert OpenTelemetry span to MLflow span",
        ),
        Err(error) => ApiError(error).into_response(),
    }
}
