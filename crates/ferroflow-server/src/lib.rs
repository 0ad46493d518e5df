//! The HTTP server: the MLflow REST API, the proxied artifact API, health and metrics, on axum.
//!
//! Handlers are thin: they decode the request (`extract`), call a service in `ferroflow-core` and encode
//! its answer; errors become MLflow's error JSON (`error`). This crate holds no SQL and no file I/O of its
//! own: stores come in through `AppState`.

pub mod auth;
pub mod connections;
pub mod error;
pub mod extract;
mod observe;
pub mod openapi;
pub mod otlp_decode;
pub mod routes;
pub mod security;
pub mod state;
pub mod ui;
pub mod webhook_delivery;

use axum::Router;
pub use observe::{spawn_metrics_upkeep, METRICS_UPKEEP_INTERVAL};
pub use security::SecuritySettings;
pub use state::{AppState, ServerConfig};
pub use webhook_delivery::WebhookSettings;

/// The prefixes under which MLflow serves every tracking route.
const API_PREFIXES: [&str; 2] = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"];
/// The prefixes of MLflow 3 routes.
const API_V3_PREFIXES: [&str; 2] = ["/api/3.0/mlflow", "/ajax-api/3.0/mlflow"];

/// Builds the whole application: every route of `openapi::route_table` (the one table, which
/// `/openapi.json` documents and the basic-auth rule walk covers), the basic-auth routes when it is on, and
/// the web UI as the fallback.
pub fn app(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    for (path, method_router) in openapi::route_table() {
        router = router.route(&path, method_router);
    }
    if state.auth.is_some() {
        router = mount_auth_routes(router);
    }
    let security = state.security.clone();
    let router = router
        .fallback(ui::serve_ui)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::middleware,
        ))
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state);
    security::harden(router, &security)
}

/// The basic-auth app's own routes (users, grants, roles), under MLflow's prefixes.
fn mount_auth_routes(mut router: Router<AppState>) -> Router<AppState> {
    for (path, method_router) in routes::auth::routes_root() {
        router = router.route(path, method_router);
    }
    for prefix in API_PREFIXES {
        for (path, method_router) in routes::auth::routes_v2() {
            router = router.route(&format!("{prefix}{path}"), method_router);
        }
    }
    for prefix in API_V3_PREFIXES {
        for (path, method_router) in routes::auth::routes_v3() {
            router = router.route(&format!("{prefix}{path}"), method_router);
        }
    }
    router
}

/// Serves `app` on `listener` until `shutdown` resolves; in-flight requests finish first. The slow-client
/// limits (header read timeout, connection cap) come from the state's security settings
/// (`connections.rs`); the peer address of each request, which feeds the failed-login rate limit of the
/// basic-auth app, is its `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = connections::ConnectionLimits::from(state.security.as_ref());
    connections::serve(listener, app(state), limits, shutdown).await
}
