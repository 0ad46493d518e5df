//! The HTTP server: the MLflow REST API, the proxied artifact API, health and metrics, on axum.
//!
//! Handlers are thin: they decode the request (`extract`), call a service in `ferroflow-core` and encode
//! its answer; errors become MLflow's error JSON (`error`). This crate holds no SQL and no file I/O of its
//! own: stores come in through `AppState`.

pub mod auth;
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

use axum::routing::get;
use axum::Router;
pub use observe::{spawn_metrics_upkeep, METRICS_UPKEEP_INTERVAL};
pub use security::SecuritySettings;
pub use state::{AppState, ServerConfig};
pub use webhook_delivery::WebhookSettings;

/// The prefixes under which MLflow serves every tracking route.
const API_PREFIXES: [&str; 2] = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"];
/// The prefixes of MLflow 3 routes.
const API_V3_PREFIXES: [&str; 2] = ["/api/3.0/mlflow", "/ajax-api/3.0/mlflow"];

/// Builds the whole application.
pub fn app(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new()
        .route("/health", get(routes::meta::health))
        .route("/version", get(routes::meta::version))
        .route("/metrics", get(routes::meta::prometheus_metrics))
        .route(
            "/api/3.0/mlflow/server-info",
            get(routes::meta::server_info),
        )
        .route(
            "/ajax-api/3.0/mlflow/server-info",
            get(routes::meta::server_info),
        )
        .route(openapi::OPENAPI_PATH, get(openapi::openapi_json));
    for prefix in API_PREFIXES {
        for (path, method_router) in routes::tracking::routes() {
            router = router.route(&format!("{prefix}{path}"), method_router);
        }
        for (path, method_router) in routes::logged_models::routes() {
            router = router.route(&format!("{prefix}{path}"), method_router);
        }
        for (path, method_router) in routes::registry::routes() {
            router = router.route(&format!("{prefix}{path}"), method_router);
        }
        for (path, method_router) in routes::webhooks::routes() {
            router = router.route(&format!("{prefix}{path}"), method_router);
        }
        for (path, method_router) in routes::traces::routes_v2() {
            router = router.route(&format!("{prefix}{path}"), method_router);
        }
    }
    for prefix in API_V3_PREFIXES {
        for (path, method_router) in routes::traces::routes_v3() {
            router = router.route(&format!("{prefix}{path}"), method_router);
        }
        for (path, method_router) in routes::eval_datasets::routes() {
            router = router.route(&format!("{prefix}{path}"), method_router);
        }
        for (path, method_router) in routes::scorers::routes() {
            router = router.route(&format!("{prefix}{path}"), method_router);
        }
    }
    for (path, method_router) in routes::otlp::routes() {
        router = router.route(path, method_router);
    }
    for (path, method_router) in routes::tracking::ajax_only_routes() {
        router = router.route(&format!("/ajax-api/2.0/mlflow{path}"), method_router);
    }
    if state.auth.is_some() {
        router = mount_auth_routes(router);
    }
    let security = state.security.clone();
    let router = router
        .merge(routes::artifacts::router())
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

/// Serves `app` on `listener` until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address feeds the failed-login rate limit of the basic-auth app.
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
