//! One structured log line per request at debug level, and Prometheus counters and latencies.

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // The route pattern, not the raw path: it keeps label cardinality bounded and ids out of metrics.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    tracing::debug!(method = %method, route = %route, status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request");
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("ferroflow_http_requests_total", &labels).increment(1);
    metrics::histogram!("ferroflow_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
    response
}

/// MLflow answers unknown routes with a non-JSON 404, which its client reads as ENDPOINT_NOT_FOUND.
pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}
