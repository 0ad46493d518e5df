//! The basic-auth app in process: every mounted route has a permission rule, credentials are checked,
//! rules refuse, and failed logins are rate limited.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use base64::Engine;
use ferroflow_core::auth::{hash_password, parse_auth_config, AuthStore, DEFAULT_AUTH_INI};
use ferroflow_server::auth::{rule_for, Auth, MAX_FAILED_LOGINS};
use ferroflow_server::routes;
use std::sync::Arc;
use tower::ServiceExt;

const ADMIN_PASSWORD: &str = "admin-password-1234";
const READER_PASSWORD: &str = "reader-password-1234";
/// werkzeug's `pbkdf2:sha256:1000` hash of "abc": an admin that is cheap to verify for the route walk
/// (also proves MLflow's hashes log in).
const WALKER_HASH: &str = "pbkdf2:sha256:1000$O3zSBCANdPuohpxX$561cb015153c01fcd8766ffaff522aeb055a266ed4c10ab93febfbfced27efe4";

struct AuthApp {
    router: Router,
    _directory: tempfile::TempDir,
}

async fn auth_app() -> AuthApp {
    auth_app_with(DEFAULT_AUTH_INI).await
}

/// The app with basic auth configured by `ini` (its admin password set), a reader and a cheap admin.
async fn auth_app_with(ini: &str) -> AuthApp {
    let directory = tempfile::tempdir().unwrap();
    let auth_uri = format!("sqlite:///{}", directory.path().join("auth.db").display());
    let auth_store = ferroflow_store::SqlAuthStore::open(&auth_uri)
        .await
        .unwrap();
    let config = parse_auth_config(ini, None, Some(ADMIN_PASSWORD)).unwrap();
    let auth_store: Arc<dyn AuthStore> = Arc::new(auth_store);
    let auth = Auth::new(auth_store.clone(), &config);
    auth.bootstrap_admin(&config).await.unwrap();
    auth_store
        .create_user("reader", &hash_password(READER_PASSWORD).unwrap(), false)
        .await
        .unwrap();
    auth_store
        .create_user("walker", WALKER_HASH, true)
        .await
        .unwrap();
    let state = common::test_state(directory.path()).await.with_auth(auth);
    AuthApp {
        router: ferroflow_server::app(state),
        _directory: directory,
    }
}

fn basic(username: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {token}")
}

async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    credentials: Option<(&str, &str)>,
    body: &str,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some((username, password)) = credentials {
        builder = builder.header(header::AUTHORIZATION, basic(username, password));
    }
    let response = router
        .clone()
        .oneshot(builder.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// Every route pattern the app mounts: the one route table `lib.rs` mounts, and the auth routes.
fn mounted_patterns() -> Vec<String> {
    let mut patterns: Vec<String> = ferroflow_server::openapi::route_table()
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    for prefix in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
        patterns.extend(
            routes::auth::routes_v2()
                .into_iter()
                .map(|(path, _)| format!("{prefix}{path}")),
        );
    }
    patterns.extend(
        routes::auth::routes_root()
            .into_iter()
            .map(|(path, _)| path.to_owned()),
    );
    for prefix in ["/api/3.0/mlflow", "/ajax-api/3.0/mlflow"] {
        patterns.extend(
            routes::auth::routes_v3()
                .into_iter()
                .map(|(path, _)| format!("{prefix}{path}")),
        );
    }
    patterns
}

/// A concrete path for a pattern: `{name}` and `{*rest}` filled in.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|segment| {
            if segment.starts_with("{*") {
                "1/a/b.txt".to_owned()
            } else if segment.starts_with('{') {
                "x1".to_owned()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_mounted_route_has_a_permission_rule() {
    let app = auth_app().await;
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let open = [
        "/health",
        "/api/3.0/mlflow/server-info",
        "/ajax-api/3.0/mlflow/server-info",
    ];
    let mut checked = 0;
    let mut missing = Vec::new();
    for pattern in mounted_patterns() {
        if open.contains(&pattern.as_str()) {
            continue;
        }
        for method in &methods {
            // As the admin (who passes every rule), 405 tells the method is not mounted.
            let (status, _, _) = send(
                &app.router,
                method.clone(),
                &concrete(&pattern),
                Some(("walker", "abc")),
                "{}",
            )
            .await;
            if status == StatusCode::METHOD_NOT_ALLOWED {
                continue;
            }
            checked += 1;
            if rule_for(method, &pattern).is_none() {
                missing.push(format!("{method} {pattern}"));
            }
        }
    }
    assert!(checked > 150, "only {checked} routes walked");
    assert!(missing.is_empty(), "routes without a rule: {missing:#?}");
}

#[tokio::test]
async fn credentials_are_checked_and_rules_refuse() {
    let app = auth_app().await;
    let (status, headers, text) = send(&app.router, Method::GET, "/version", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Basic realm=\"mlflow\"");
    assert!(text.starts_with("You are not authenticated."));
    let (status, _, _) = send(&app.router, Method::GET, "/health", None, "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, text) = send(
        &app.router,
        Method::GET,
        "/version",
        Some(("reader", READER_PASSWORD)),
        "",
    )
    .await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "3.17.2"));
    let (status, _, text) = send(
        &app.router,
        Method::POST,
        "/api/2.0/mlflow/webhooks",
        Some(("reader", READER_PASSWORD)),
        r#"{"name": "w", "url": "https://example.com", "events": []}"#,
    )
    .await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::FORBIDDEN, "Permission denied")
    );
    // The reader creates an experiment and owns it; the Default experiment stays read-only.
    let (status, _, text) = send(
        &app.router,
        Method::POST,
        "/api/2.0/mlflow/experiments/create",
        Some(("reader", READER_PASSWORD)),
        r#"{"name": "owned"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let experiment_id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["experiment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (experiment, expected) in [
        (experiment_id.as_str(), StatusCode::OK),
        ("0", StatusCode::FORBIDDEN),
    ] {
        let (status, _, text) = send(
            &app.router,
            Method::POST,
            "/api/2.0/mlflow/experiments/set-experiment-tag",
            Some(("reader", READER_PASSWORD)),
            &format!(r#"{{"experiment_id": "{experiment}", "key": "k", "value": "v"}}"#),
        )
        .await;
        assert_eq!(status, expected, "{experiment}: {text}");
    }
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_user_and_address() {
    let app = auth_app().await;
    for _ in 0..MAX_FAILED_LOGINS {
        let (status, _, _) = send(
            &app.router,
            Method::GET,
            "/version",
            Some(("reader", "wrong-password-1")),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, _) = send(
        &app.router,
        Method::GET,
        "/version",
        Some(("reader", READER_PASSWORD)),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(header::RETRY_AFTER));
    // Another user is not locked out.
    let (status, _, _) = send(
        &app.router,
        Method::GET,
        "/version",
        Some(("admin", ADMIN_PASSWORD)),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn cached_credentials_are_dropped_when_the_user_changes() {
    let ini = format!("{DEFAULT_AUTH_INI}auth_cache_ttl_seconds = 60\n");
    let app = auth_app_with(&ini).await;
    let reader = Some(("reader", READER_PASSWORD));
    let admin = Some(("walker", "abc"));
    for _ in 0..2 {
        let (status, _, _) = send(&app.router, Method::GET, "/version", reader, "").await;
        assert_eq!(status, StatusCode::OK);
    }
    // A new password: the old one is refused at once, though it was remembered.
    let new_password = "reader-password-5678";
    let (status, _, text) = send(
        &app.router,
        Method::PATCH,
        "/api/2.0/mlflow/users/update-password",
        admin,
        &format!(r#"{{"username": "reader", "password": "{new_password}"}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, _, _) = send(&app.router, Method::GET, "/version", reader, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let renewed = Some(("reader", new_password));
    let (status, _, _) = send(&app.router, Method::GET, "/version", renewed, "").await;
    assert_eq!(status, StatusCode::OK);
    // Deleted: refused at once.
    let (status, _, text) = send(
        &app.router,
        Method::DELETE,
        "/api/2.0/mlflow/users/delete",
        admin,
        r#"{"username": "reader"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, _, _) = send(&app.router, Method::GET, "/version", renewed, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
