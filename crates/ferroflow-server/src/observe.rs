//! One structured log line per request at debug level, and Prometheus counters and latencies.

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use std::time::{Duration, Instant};

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

/// How often the Prometheus recorder is maintained when nobody scrapes `/metrics`.
pub const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Runs the Prometheus recorder's upkeep every `interval` while the runtime lives.
/// `PrometheusBuilder::install_recorder` leaves the upkeep to its caller: without it every latency sample
/// of every request stays in memory until `/metrics` is scraped, so a server nobody scrapes grows
/// without bound.
pub fn spawn_metrics_upkeep(
    handle: PrometheusHandle,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            handle.run_upkeep();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    #[tokio::test]
    async fn upkeep_runs_in_the_background_and_keeps_every_sample() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let upkeep = spawn_metrics_upkeep(handle.clone(), Duration::from_millis(5));
        metrics::with_local_recorder(&recorder, || {
            for _ in 0..1000 {
                metrics::histogram!("ferroflow_test_duration_seconds").record(0.5);
            }
        });
        // Several upkeeps drain the samples into the summary; none is lost on the way.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!upkeep.is_finished(), "the upkeep keeps running");
        let rendered = handle.render();
        assert!(
            rendered.contains("ferroflow_test_duration_seconds_count 1000"),
            "{rendered}"
        );
        upkeep.abort();
    }
}
