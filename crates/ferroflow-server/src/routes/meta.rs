//! `/health`, `/version`, `/api/3.0/mlflow/server-info` and `/metrics`.

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;

/// The MLflow version ferroflow speaks. The client reads it: spans go to `/v1/traces` only from 3.4 on.
pub const MLFLOW_VERSION: &str = "3.17.2";

pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    match state.tracking.ping().await {
        Ok(()) => (StatusCode::OK, "OK"),
        Err(error) => {
            tracing::warn!(%error, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "metadata store unavailable",
            )
        }
    }
}

pub async fn version() -> &'static str {
    MLFLOW_VERSION
}

pub async fn server_info(State(state): State<AppState>) -> impl IntoResponse {
    Json(serde_json::json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "trace_archival_enabled": false,
        // MLflow advertises multipart uploads when the served repository has them (S3 here).
        "multipart_uploads_enabled": state
            .artifacts
            .as_ref()
            .is_some_and(|store| store.multipart_uploads().is_some()),
        "multipart_downloads_enabled": false,
        "presigned_upload_run_id_supported": false,
        "presigned_upload_model_id_supported": false,
        "serve_artifacts": state.config.serve_artifacts,
        "features_enabled": {"gateway": false},
    }))
}

pub async fn prometheus_metrics(State(state): State<AppState>) -> impl IntoResponse {
    match &state.metrics {
        Some(handle) => (StatusCode::OK, handle.render()),
        None => (StatusCode::NOT_FOUND, String::new()),
    }
}
