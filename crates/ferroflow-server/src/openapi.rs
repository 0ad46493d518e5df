//! `GET /openapi.json`: an OpenAPI 3.1 description of every mounted route, generated from the route tables
//! that `lib.rs` mounts, so it cannot drift from them.
//!
//! The paths come from the same `routes()` functions and prefixes `lib.rs::app` uses ([`route_table`]). The
//! methods of each path are not written down a second time: they are read from the mounted router itself,
//! by sending each path a `TRACE` request, which axum answers 405 with the `Allow` header of the methods the
//! route serves (no handler runs). Path captures become path parameters (`{*artifact_path}` becomes
//! `{artifact_path}`). Each operation documents MLflow's two request encodings: GET takes the message as
//! query parameters, other methods a JSON object body; and MLflow's error JSON (`{"error_code",
//! "message"}`) as the answer to a refusal. The messages' fields are not described (the route tables do not
//! carry their types). `tests/openapi.rs` checks that every documented operation is served.

use crate::routes;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

/// The path of the document.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// Every route `lib.rs::app` mounts, with its full path, in mounting order.
pub fn route_table() -> Vec<(String, MethodRouter<AppState>)> {
    let mut table: Vec<(String, MethodRouter<AppState>)> = vec![
        ("/health".to_owned(), get(routes::meta::health)),
        ("/version".to_owned(), get(routes::meta::version)),
        ("/metrics".to_owned(), get(routes::meta::prometheus_metrics)),
        (
            "/api/3.0/mlflow/server-info".to_owned(),
            get(routes::meta::server_info),
        ),
        (
            "/ajax-api/3.0/mlflow/server-info".to_owned(),
            get(routes::meta::server_info),
        ),
        (OPENAPI_PATH.to_owned(), get(openapi_json)),
    ];
    let mut add = |prefix: &str, rows: Vec<(&'static str, MethodRouter<AppState>)>| {
        for (path, method_router) in rows {
            table.push((format!("{prefix}{path}"), method_router));
        }
    };
    for prefix in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
        add(prefix, routes::tracking::routes());
        add(prefix, routes::logged_models::routes());
        add(prefix, routes::registry::routes());
        add(prefix, routes::webhooks::routes());
        add(prefix, routes::traces::routes_v2());
    }
    for prefix in ["/api/3.0/mlflow", "/ajax-api/3.0/mlflow"] {
        add(prefix, routes::traces::routes_v3());
        add(prefix, routes::eval_datasets::routes());
        add(prefix, routes::scorers::routes());
    }
    add("", routes::otlp::routes());
    add("/ajax-api/2.0/mlflow", routes::tracking::ajax_only_routes());
    for prefix in ["/api/2.0", "/ajax-api/2.0"] {
        add(prefix, routes::artifacts::routes());
    }
    add("", routes::artifacts::ui_routes());
    table
}

/// The methods `router` serves at `path` (a route template), read from its 405 answer to `TRACE`.
async fn served_methods(router: &Router, path: &str) -> Vec<String> {
    let concrete = concrete_path(path);
    let request = match Request::builder()
        .method(Method::TRACE)
        .uri(&concrete)
        .body(Body::empty())
    {
        Ok(request) => request,
        Err(_) => return Vec::new(),
    };
    let Ok(response) = router.clone().oneshot(request).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return Vec::new();
    }
    let allow = response
        .headers()
        .get(header::ALLOW)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let mut methods: Vec<String> = allow
        .split(',')
        .map(|method| method.trim().to_ascii_lowercase())
        .filter(|method| !method.is_empty() && method != "head" && method != "options")
        .collect();
    methods.sort();
    methods.dedup();
    methods
}

/// A request path for the template: each capture replaced by a plain segment.
pub fn concrete_path(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "x"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The OpenAPI form of a template (`{*rest}` becomes `{rest}`) and its path parameters.
fn openapi_path(template: &str) -> (String, Vec<String>) {
    let mut parameters = Vec::new();
    let path = template
        .split('/')
        .map(|segment| {
            match segment
                .strip_prefix('{')
                .and_then(|inner| inner.strip_suffix('}'))
            {
                Some(name) => {
                    let name = name.trim_start_matches('*').to_owned();
                    let rendered = format!("{{{name}}}");
                    parameters.push(name);
                    rendered
                }
                None => segment.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    (path, parameters)
}

fn operation(method: &str, path: &str, parameters: &[String]) -> Value {
    let operation_id = format!(
        "{method}{}",
        path.split(['/', '-', '.', '{', '}'])
            .filter(|part| !part.is_empty())
            .map(|part| {
                let mut characters = part.chars();
                characters.next().map_or(String::new(), |first| {
                    first.to_ascii_uppercase().to_string() + characters.as_str()
                })
            })
            .collect::<String>()
    );
    let mut operation = Map::new();
    operation.insert("operationId".to_owned(), json!(operation_id));
    let parameters: Vec<Value> = parameters
        .iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if !parameters.is_empty() {
        operation.insert("parameters".to_owned(), Value::Array(parameters));
    }
    if method != "get" && method != "delete" {
        let body = if path.contains("/mlflow-artifacts/artifacts/") && method == "put" {
            json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}})
        } else if path == "/v1/traces" {
            json!({"required": true, "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}},
            }})
        } else {
            json!({"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}}})
        };
        operation.insert("requestBody".to_owned(), body);
    }
    operation.insert(
        "responses".to_owned(),
        json!({
            "200": {"description": "The endpoint's response message"},
            "default": {"description": "MLflow's error JSON", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        }),
    );
    Value::Object(operation)
}

/// The document for the routes of `table`, as `router` (the application) serves them.
pub async fn document(router: &Router, table: &[String]) -> Value {
    let mut paths = Map::new();
    for template in table {
        let methods = served_methods(router, template).await;
        if methods.is_empty() {
            continue;
        }
        let (path, parameters) = openapi_path(template);
        let mut item = Map::new();
        for method in methods {
            item.insert(method.clone(), operation(&method, &path, &parameters));
        }
        paths.insert(path, Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ferroflow",
            "description": "MLflow's tracking server REST API, as ferroflow serves it",
            "version": routes::meta::MLFLOW_VERSION,
        },
        "paths": paths,
        "components": {"schemas": {
            "Message": {"type": "object", "description": "The endpoint's request message as JSON (GET: as query parameters)"},
            "Error": {
                "type": "object",
                "required": ["error_code", "message"],
                "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
            },
        }},
    })
}

/// `GET /openapi.json`.
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    let paths: Vec<String> = route_table().into_iter().map(|(path, _)| path).collect();
    let application = crate::app(state);
    Json(document(&application, &paths).await).into_response()
}
