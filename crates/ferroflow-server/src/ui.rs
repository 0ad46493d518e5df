//! The web UI: the files `scripts/build-ui` writes to `ui/dist`, embedded in the binary by `rust-embed`
//! (read from the folder at run time in debug builds), served at `/` with a single-page-app fallback.
//!
//! The UI is the router's fallback, so every API route keeps priority. Unknown paths under the API
//! prefixes still get the plain 404 MLflow's client expects; any other `GET` that names no file gets
//! `index.html`, whose client-side router shows the page. A binary built before the UI answers `/` with a
//! short page saying how to build it, so `cargo build` works on a fresh clone without npm.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../ui/dist/"]
#[allow_missing = true]
struct UiAssets;

/// Paths the UI never answers: the API and the other machine endpoints keep MLflow's plain 404.
const RESERVED_PREFIXES: [&str; 8] = [
    "/api/",
    "/ajax-api/",
    "/v1/",
    "/health",
    "/metrics",
    "/version",
    "/get-artifact",
    "/model-versions/",
];

/// Hashed build outputs (Vite writes `assets/<name>-<hash>.<ext>`) never change under one name.
const IMMUTABLE_CACHE: &str = "public, max-age=31536000, immutable";
/// `index.html` and unhashed files are checked again on every load, so a new build shows at once.
const REVALIDATE_CACHE: &str = "no-cache";

const NOT_BUILT_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>ferroflow</title></head><body style=\"font-family:sans-serif;margin:2rem\">\
<h1>ferroflow</h1><p>UI not built: run <code>scripts/build-ui</code>, then rebuild or restart the server.</p>\
<p>The API is served under <code>/api/2.0/mlflow</code>.</p></body></html>";

/// The router's fallback: an embedded file, `index.html` for client-side routes, or a plain 404.
pub async fn serve_ui(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if (method != Method::GET && method != Method::HEAD) || is_reserved(path) {
        return crate::observe::not_found().await;
    }
    let relative = path.trim_start_matches('/');
    if !relative.is_empty() && is_safe_relative_path(relative) {
        if let Some(file) = UiAssets::get(relative) {
            let cache = if relative.starts_with("assets/") {
                IMMUTABLE_CACHE
            } else {
                REVALIDATE_CACHE
            };
            return file_response(relative, file.data.into_owned(), cache);
        }
        // A missing hashed asset is a real 404: answering it with index.html would hide a stale page.
        if relative.starts_with("assets/") {
            return crate::observe::not_found().await;
        }
    }
    match UiAssets::get("index.html") {
        Some(index) => file_response("index.html", index.data.into_owned(), REVALIDATE_CACHE),
        None => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, REVALIDATE_CACHE),
            ],
            NOT_BUILT_PAGE,
        )
            .into_response(),
    }
}

fn is_reserved(path: &str) -> bool {
    RESERVED_PREFIXES
        .iter()
        .any(|prefix| path == prefix.trim_end_matches('/') || path.starts_with(prefix))
}

/// Only plain names separated by `/`: no `..`, no empty or dot segments, no backslashes or NUL.
fn is_safe_relative_path(relative: &str) -> bool {
    relative.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && !segment.contains(['\\', '\0', '%'])
    })
}

fn file_response(name: &str, data: Vec<u8>, cache: &'static str) -> Response {
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    let content_type = if mime.type_() == "text" || mime.subtype() == "javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    let mut response = Response::new(Body::from(data));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_paths_are_not_the_ui() {
        for path in [
            "/api/2.0/mlflow/experiments/search",
            "/ajax-api/2.0/mlflow/nope",
            "/v1/traces",
            "/health",
            "/metrics",
            "/get-artifact",
        ] {
            assert!(is_reserved(path), "{path}");
        }
        for path in [
            "/",
            "/experiments/1",
            "/runs",
            "/assets/index-abc.js",
            "/models",
        ] {
            assert!(!is_reserved(path), "{path}");
        }
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for path in [
            "../etc/passwd",
            "assets/../../x",
            "a//b",
            "a\\b",
            "%2e%2e/x",
            "./x",
        ] {
            assert!(!is_safe_relative_path(path), "{path}");
        }
        assert!(is_safe_relative_path("assets/index-abc123.js"));
    }
}
