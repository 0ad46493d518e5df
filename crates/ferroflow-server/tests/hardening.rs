//! The hardening layers (`security.rs`) and `/openapi.json` (`openapi.rs`), in process through the whole
//! router on a real SQLite store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod common;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use ferroflow_server::openapi::{concrete_path, route_table};
use ferroflow_server::SecuritySettings;
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::BTreeSet;
use tower::ServiceExt;

struct Hardened {
    router: Router,
    _directory: tempfile::TempDir,
}

async fn app_with(settings: SecuritySettings) -> Hardened {
    let directory = tempfile::tempdir().unwrap();
    let state = common::test_state(directory.path())
        .await
        .with_security(settings);
    Hardened {
        router: ferroflow_server::app(state),
        _directory: directory,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Hardened {
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

const SEARCH: &str = "/api/2.0/mlflow/experiments/search?max_results=1";
const CREATE: &str = "/api/2.0/mlflow/experiments/create";
const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn foreign_hosts_are_refused_as_mlflow_does() {
    let app = app_with(SecuritySettings::default()).await;
    for host in [
        "evil.example",
        "evil.example:5000",
        "localhost.evil.example",
        "8.8.8.8:80",
    ] {
        let reply = app.send(Method::GET, SEARCH, &[("host", host)], "").await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{host}");
        assert_eq!(
            reply.text,
            "Invalid Host header - possible DNS rebinding attack detected"
        );
        assert_eq!(reply.headers[header::CONTENT_TYPE], "text/plain");
        assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    for host in [
        "localhost:5000",
        "127.0.0.1",
        "[::1]:5000",
        "10.0.0.7:5000",
        "172.20.0.2",
    ] {
        let reply = app.send(Method::GET, SEARCH, &[("host", host)], "").await;
        assert_eq!(reply.status, StatusCode::OK, "{host}");
    }
    let health = app
        .send(Method::GET, "/health", &[("host", "evil.example")], "")
        .await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test]
async fn allowed_hosts_replace_the_defaults_and_star_allows_all() {
    let app = app_with(SecuritySettings {
        allowed_hosts: Some(vec!["mlflow.example.com".into(), "*.corp.example:*".into()]),
        ..SecuritySettings::default()
    })
    .await;
    for (host, status) in [
        ("mlflow.example.com", StatusCode::OK),
        ("ui.corp.example:443", StatusCode::OK),
        ("localhost:5000", StatusCode::FORBIDDEN),
    ] {
        let reply = app.send(Method::GET, SEARCH, &[("host", host)], "").await;
        assert_eq!(reply.status, status, "{host}");
    }
    let open = app_with(SecuritySettings {
        allowed_hosts: Some(vec!["*".into()]),
        ..SecuritySettings::default()
    })
    .await;
    let reply = open
        .send(Method::GET, SEARCH, &[("host", "evil.example")], "")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn cross_origin_writes_are_blocked() {
    let app = app_with(SecuritySettings {
        cors_allowed_origins: vec!["https://app.example.com".into()],
        ..SecuritySettings::default()
    })
    .await;
    let body = r#"{"name": "csrf"}"#;
    for origin in [
        "https://evil.example",
        "null",
        "http://localhost.evil.example",
    ] {
        for content_type in ["text/plain", "application/json"] {
            let reply = app
                .send(
                    Method::POST,
                    CREATE,
                    &[("origin", origin), ("content-type", content_type)],
                    body,
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{origin} {content_type}"
            );
            assert_eq!(reply.text, "Cross-origin request blocked");
        }
    }
    let reply = app
        .send(
            Method::DELETE,
            "/api/2.0/mlflow-artifacts/artifacts/a.txt",
            &[("origin", "https://evil.example")],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // Reads from anywhere, and writes from localhost or the allowlist, go through.
    let read = app
        .send(
            Method::GET,
            SEARCH,
            &[("origin", "https://evil.example")],
            "",
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    let local = app
        .send(
            Method::POST,
            CREATE,
            &[("origin", "http://localhost:3000"), JSON],
            r#"{"name": "a"}"#,
        )
        .await;
    assert_eq!(local.status, StatusCode::OK, "{}", local.text);
    let listed = app
        .send(
            Method::POST,
            CREATE,
            &[("origin", "https://app.example.com"), JSON],
            r#"{"name": "b"}"#,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(
        listed.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example.com"
    );
    assert_eq!(
        listed.headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS],
        "true"
    );
    // Without an Origin (scripts, the mlflow client) a text/plain POST is still refused: JSON only.
    let plain = app
        .send(
            Method::POST,
            CREATE,
            &[("content-type", "text/plain")],
            body,
        )
        .await;
    assert_eq!(plain.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn preflights_answer_allowed_origins_only() {
    let app = app_with(SecuritySettings::default()).await;
    let preflight = [
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];
    let local = app
        .send(
            Method::OPTIONS,
            CREATE,
            &[
                ("origin", "http://127.0.0.1:3000"),
                preflight[0],
                preflight[1],
            ],
            "",
        )
        .await;
    assert_eq!(local.status, StatusCode::NO_CONTENT);
    assert_eq!(
        local.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://127.0.0.1:3000"
    );
    let evil = app
        .send(
            Method::OPTIONS,
            CREATE,
            &[
                ("origin", "https://evil.example"),
                preflight[0],
                preflight[1],
            ],
            "",
        )
        .await;
    assert!(!evil
        .headers
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
}

#[tokio::test]
async fn security_headers_follow_x_frame_options() {
    let app = app_with(SecuritySettings::default()).await;
    let reply = app.send(Method::GET, SEARCH, &[], "").await;
    assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(reply.headers[header::X_FRAME_OPTIONS], "SAMEORIGIN");
    assert_eq!(
        reply.headers[header::CONTENT_SECURITY_POLICY],
        "frame-ancestors 'self'"
    );
    assert_eq!(reply.headers[header::REFERRER_POLICY], "same-origin");
    let deny = app_with(SecuritySettings {
        x_frame_options: "deny".into(),
        ..SecuritySettings::default()
    })
    .await;
    let reply = deny.send(Method::GET, SEARCH, &[], "").await;
    assert_eq!(reply.headers[header::X_FRAME_OPTIONS], "DENY");
    let none = app_with(SecuritySettings {
        x_frame_options: "NONE".into(),
        ..SecuritySettings::default()
    })
    .await;
    let reply = none.send(Method::GET, SEARCH, &[], "").await;
    assert!(!reply.headers.contains_key(header::X_FRAME_OPTIONS));
    assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

#[tokio::test]
async fn disabled_middleware_keeps_only_the_limits() {
    let app = app_with(SecuritySettings {
        disabled: true,
        ..SecuritySettings::default()
    })
    .await;
    let reply = app
        .send(Method::GET, SEARCH, &[("host", "evil.example")], "")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.headers.contains_key(header::X_FRAME_OPTIONS));
    let padding = "a".repeat(8 * 1024);
    let headers: Vec<(String, &str)> = (0..10)
        .map(|index| (format!("x-pad-{index}"), padding.as_str()))
        .collect();
    let borrowed: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), *value))
        .collect();
    let reply = app.send(Method::GET, SEARCH, &borrowed, "").await;
    assert_eq!(reply.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[tokio::test]
async fn experiment_artifact_locations_are_validated_as_mlflow_does() {
    let app = app_with(SecuritySettings::default()).await;
    let cases = [
        (
            "http://169.254.169.254/latest",
            "cannot use the 'http' scheme",
        ),
        (
            "mlflow-artifacts://internal:8080/x",
            "cannot use the 'mlflow-artifacts' scheme",
        ),
        (
            "mlflow-artifacts:/x#/../../etc",
            "can't include fragments or params",
        ),
        (
            "file:///tmp;/../../etc",
            "can't include fragments or params",
        ),
        ("s3://bucket/x?a=%252e%252e/y", "Invalid query string"),
        ("runs:/abc/x", "cannot be a runs:/ URI"),
    ];
    for (index, (location, message)) in cases.into_iter().enumerate() {
        let body =
            serde_json::json!({"name": format!("loc-{index}"), "artifact_location": location});
        let reply = app
            .send(Method::POST, CREATE, &[JSON], &body.to_string())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{location}: {}",
            reply.text
        );
        let error: Value = serde_json::from_str(&reply.text).unwrap();
        assert_eq!(error["error_code"], "INVALID_PARAMETER_VALUE");
        assert!(
            error["message"].as_str().unwrap().contains(message),
            "{location}: {error}"
        );
    }
    let accepted = serde_json::json!({"name": "loc-ok", "artifact_location": "s3://bucket/prefix"});
    let reply = app
        .send(Method::POST, CREATE, &[JSON], &accepted.to_string())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

fn openapi_template(template: &str) -> String {
    template
        .split('/')
        .map(|segment| segment.replacen("{*", "{", 1))
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn openapi_document_matches_the_mounted_routes() {
    let app = app_with(SecuritySettings::default()).await;
    let reply = app.send(Method::GET, "/openapi.json", &[], "").await;
    assert_eq!(reply.status, StatusCode::OK);
    let document: Value = serde_json::from_str(&reply.text).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    let table: BTreeSet<String> = route_table().into_iter().map(|(path, _)| path).collect();
    let documented: BTreeSet<String> = paths.keys().cloned().collect();
    let expected: BTreeSet<String> = table.iter().map(|path| openapi_template(path)).collect();
    assert_eq!(
        documented, expected,
        "every mounted path is documented, and only those"
    );
    let mut operations = 0;
    for template in &table {
        let item = paths[&openapi_template(template)].as_object().unwrap();
        assert!(!item.is_empty(), "{template} has no method");
        for method in item.keys() {
            operations += 1;
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let body = if method == Method::GET { "" } else { "{}" };
            let reply = app
                .send(method.clone(), &concrete_path(template), &[JSON], body)
                .await;
            assert_ne!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {template}"
            );
            assert!(
                !(reply.status == StatusCode::NOT_FOUND && reply.text == "Not Found"),
                "{method} {template} is documented but not routed"
            );
            assert!(
                // 501 is MLflow's answer for presigned and multipart transfers on a local store; /metrics
                // has no recorder in process.
                reply.status.as_u16() < 500
                    || reply.status == StatusCode::NOT_IMPLEMENTED
                    || template == "/metrics",
                "{method} {template}: {}",
                reply.text
            );
        }
    }
    assert!(operations > 200, "only {operations} operations");
    // A route that is not mounted is not documented either.
    assert!(!paths.contains_key("/api/2.0/mlflow/gateway-proxy"));
}
