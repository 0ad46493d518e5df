//! The in-process test harness shared by the HTTP test binaries: the whole router on a real SQLite store
//! and a local artifact folder in a temporary directory, and answers read back as text and JSON.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of the harness"
)]

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use ferroflow_server::{AppState, ServerConfig};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub struct TestApp {
    pub router: Router,
    pub directory: tempfile::TempDir,
}

/// The server's state on a real SQLite store (`mlflow.db`) and a local artifact folder (`artifacts/`) in
/// `directory`, without authentication or hardening settings of its own.
pub async fn test_state(directory: &std::path::Path) -> AppState {
    let store =
        ferroflow_store::SqliteStore::open(&directory.join("mlflow.db"), "mlflow-artifacts:/")
            .await
            .unwrap();
    let artifacts = ferroflow_artifacts::LocalArtifactStore::new(directory.join("artifacts"))
        .await
        .unwrap();
    AppState::new(
        std::sync::Arc::new(store),
        Some(std::sync::Arc::new(artifacts)),
        ServerConfig {
            default_artifact_root: "mlflow-artifacts:/".into(),
            serve_artifacts: true,
        },
        None,
    )
}

pub async fn test_app() -> TestApp {
    let directory = tempfile::tempdir().unwrap();
    let state = test_state(directory.path()).await;
    TestApp {
        router: ferroflow_server::app(state),
        directory,
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON: {}", self.text))
    }
}

impl TestApp {
    /// Sends a request as built.
    pub async fn send_request(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            content_type,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Sends `body` as JSON (when given) with `method` to `path`.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, |body| Body::from(body.to_string()));
        self.send_request(request.body(body).unwrap()).await
    }
}
