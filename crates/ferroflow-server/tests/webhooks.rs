//! Registry webhooks end to end in process: CRUD and URL rules through the router, and deliveries to a
//! local HTTP receiver started by the test (signature checked, retries observed, the request that caused
//! the event not held up).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{Answer, TestApp};
use ferroflow_core::fernet::FernetKey;
use ferroflow_server::{AppState, ServerConfig, WebhookSettings};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const API: &str = "/api/2.0/mlflow";

/// What the receiver saw: the headers and body of each request.
#[derive(Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// Answer 503 to this many requests first.
    failures: Arc<Mutex<usize>>,
}

async fn receive(State(received): State<Received>, headers: HeaderMap, body: String) -> StatusCode {
    received.requests.lock().unwrap().push((headers, body));
    let mut failures = received.failures.lock().unwrap();
    if *failures > 0 {
        *failures -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::OK
}

async fn receiver(failures: usize) -> (String, Received) {
    let received = Received::default();
    *received.failures.lock().unwrap() = failures;
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/hook"), received)
}

async fn app(settings: WebhookSettings) -> TestApp {
    let directory = tempfile::tempdir().unwrap();
    let store = ferroflow_store::SqliteStore::open(
        &directory.path().join("mlflow.db"),
        "mlflow-artifacts:/",
    )
    .await
    .unwrap();
    let state = AppState::new(
        Arc::new(store),
        None,
        ServerConfig {
            default_artifact_root: "mlflow-artifacts:/".into(),
            serve_artifacts: false,
        },
        None,
    )
    .with_webhook_settings(settings, FernetKey::generate());
    TestApp {
        router: ferroflow_server::app(state),
        directory,
    }
}

fn local_settings() -> WebhookSettings {
    WebhookSettings {
        allowed_schemes: vec!["http".into(), "https".into()],
        allow_private_ips: true,
        backoff: Duration::from_millis(20),
        ..WebhookSettings::default()
    }
}

impl TestApp {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.send(method, &format!("{API}{path}"), body).await
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let answer = self.call(method, path, body).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
        answer.json()
    }
}

async fn wait_for(received: &Received, count: usize) -> Vec<(HeaderMap, String)> {
    for _ in 0..200 {
        if received.requests.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    received.requests.lock().unwrap().clone()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).unwrap().to_str().unwrap()
}

fn expected_signature(secret: &str, headers: &HeaderMap, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(
        format!(
            "{}.{}.{}",
            header(headers, "x-mlflow-delivery-id"),
            header(headers, "x-mlflow-timestamp"),
            body
        )
        .as_bytes(),
    );
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn webhook_crud_matches_mlflow() {
    let app = app(WebhookSettings {
        allowed_schemes: vec!["https".into()],
        ..WebhookSettings::default()
    })
    .await;
    let created = app
        .ok(
            Method::POST,
            "/webhooks",
            Some(
                json!({"name": "hook", "url": "https://8.8.8.8/hook", "secret": "s",
                "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}),
            ),
        )
        .await;
    let webhook = &created["webhook"];
    let webhook_id = webhook["webhook_id"].as_str().unwrap().to_owned();
    assert_eq!(webhook_id.len(), 36);
    assert_eq!(webhook["status"], "ACTIVE");
    assert_eq!(
        webhook["events"],
        json!([{"entity": "MODEL_VERSION", "action": "CREATED"}])
    );
    assert!(webhook.get("secret").is_none());

    let listed = app.ok(Method::GET, "/webhooks", None).await;
    assert_eq!(listed["webhooks"][0]["webhook_id"], webhook_id.as_str());
    let updated = app
        .ok(
            Method::PATCH,
            &format!("/webhooks/{webhook_id}"),
            Some(json!({"status": "DISABLED", "description": "off"})),
        )
        .await;
    assert_eq!(updated["webhook"]["status"], "DISABLED");
    assert_eq!(updated["webhook"]["description"], "off");
    assert_eq!(updated["webhook"]["name"], "hook");
    assert_eq!(
        app.ok(Method::DELETE, &format!("/webhooks/{webhook_id}"), None)
            .await,
        json!({})
    );
    let missing = app
        .call(Method::GET, &format!("/webhooks/{webhook_id}"), None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json()["message"],
        format!("Webhook with ID {webhook_id} not found.")
    );

    // URL rules: https only here, and never a non-public address.
    for (url, message) in [
        (
            "http://8.8.8.8/hook",
            "Invalid webhook URL scheme: 'http'. Allowed schemes are: https.",
        ),
        (
            "https://127.0.0.1/hook",
            "Webhook URL must not resolve to a non-public IP address. '127.0.0.1' resolves to 127.0.0.1.",
        ),
        (
            "https://169.254.169.254/latest",
            "Webhook URL must not resolve to a non-public IP address. '169.254.169.254' resolves to \
             169.254.169.254.",
        ),
    ] {
        let refused = app
            .call(
                Method::POST,
                "/webhooks",
                Some(json!({"name": "hook", "url": url,
                    "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]})),
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{url}");
        assert_eq!(refused.json()["message"], message);
    }
    let refused = app
        .call(
            Method::POST,
            "/webhooks",
            Some(json!({"name": "hook", "url": "https://8.8.8.8/hook",
                "events": [{"entity": "MODEL_VERSION", "action": "SET"}]})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.json()["message"],
        "Invalid action 'set' for entity 'model_version'. Valid actions are: ['created']"
    );
}

#[tokio::test]
async fn events_are_delivered_signed_with_retries() {
    let (url, received) = receiver(2).await;
    let app = app(local_settings()).await;
    app.ok(
        Method::POST,
        "/webhooks",
        Some(json!({"name": "hook", "url": url, "secret": "top-secret",
            "events": [{"entity": "MODEL_VERSION", "action": "CREATED"},
                       {"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"}]})),
    )
    .await;
    app.ok(
        Method::POST,
        "/registered-models/create",
        Some(json!({"name": "m"})),
    )
    .await;
    app.ok(
        Method::POST,
        "/model-versions/create",
        Some(json!({"name": "m", "source": "s3://bucket/m", "tags": [{"key": "k", "value": "v"}]})),
    )
    .await;
    // Two 503 answers, then the third attempt is accepted.
    let requests = wait_for(&received, 3).await;
    assert_eq!(requests.len(), 3);
    let (headers, body) = &requests[2];
    assert_eq!(
        header(headers, "x-mlflow-signature"),
        expected_signature("top-secret", headers, body)
    );
    assert_ne!(
        header(&requests[0].0, "x-mlflow-delivery-id"),
        header(headers, "x-mlflow-delivery-id")
    );
    let delivered: Value = serde_json::from_str(body).unwrap();
    assert_eq!(delivered["entity"], "model_version");
    assert_eq!(delivered["action"], "created");
    assert_eq!(
        delivered["data"],
        json!({"name": "m", "version": "1", "source": "s3://bucket/m", "run_id": null,
            "tags": {"k": "v"}, "description": null})
    );
    assert!(delivered["timestamp"].as_str().unwrap().ends_with("+00:00"));

    // An event the webhook does not subscribe to is not sent; one it does is.
    app.ok(
        Method::POST,
        "/model-versions/set-tag",
        Some(json!({"name": "m", "version": "1", "key": "a", "value": "b"})),
    )
    .await;
    app.ok(
        Method::POST,
        "/registered-models/alias",
        Some(json!({"name": "m", "alias": "prod", "version": "1"})),
    )
    .await;
    let requests = wait_for(&received, 4).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(received.requests.lock().unwrap().len(), 4);
    let delivered: Value = serde_json::from_str(&requests[3].1).unwrap();
    assert_eq!(delivered["entity"], "model_version_alias");
    assert_eq!(
        delivered["data"],
        json!({"name": "m", "alias": "prod", "version": "1"})
    );
}

#[tokio::test]
async fn test_endpoint_reports_the_receivers_answer() {
    let (url, received) = receiver(0).await;
    let app = app(local_settings()).await;
    let created = app
        .ok(
            Method::POST,
            "/webhooks",
            Some(json!({"name": "hook", "url": url,
                "events": [{"entity": "PROMPT_ALIAS", "action": "DELETED"}]})),
        )
        .await;
    let webhook_id = created["webhook"]["webhook_id"].as_str().unwrap();
    let tested = app
        .ok(
            Method::POST,
            &format!("/webhooks/{webhook_id}/test"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        tested,
        json!({"result": {"success": true, "response_status": 200, "response_body": ""}})
    );
    let requests = wait_for(&received, 1).await;
    let (headers, body) = &requests[0];
    assert!(headers.get("x-mlflow-signature").is_none());
    let delivered: Value = serde_json::from_str(body).unwrap();
    assert_eq!(delivered["entity"], "prompt_alias");
    assert_eq!(delivered["action"], "deleted");
    assert_eq!(
        delivered["data"],
        json!({"name": "example_prompt", "alias": "example_alias"})
    );

    // A receiver that is gone: the result says so, with no status.
    app.ok(
        Method::PATCH,
        &format!("/webhooks/{webhook_id}"),
        Some(json!({"url": "http://127.0.0.1:9/hook"})),
    )
    .await;
    let tested = app
        .ok(
            Method::POST,
            &format!("/webhooks/{webhook_id}/test"),
            Some(json!({})),
        )
        .await;
    assert_eq!(tested["result"]["success"], false);
    assert!(tested["result"].get("response_status").is_none());
    assert!(tested["result"]["error_message"]
        .as_str()
        .unwrap()
        .starts_with("Failed to test webhook: "));
}
