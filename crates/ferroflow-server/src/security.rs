//! The hardening layers around every route, as MLflow 3.17's security middleware
//! (`mlflow/server/security.py`, `security_utils.py`) has them, plus limits MLflow leaves to its WSGI server:
//!
//! - **Host check** (DNS rebinding): the `Host` header must match one of `--allowed-hosts`
//!   (`MLFLOW_SERVER_ALLOWED_HOSTS`), shell-style patterns compared like Python's `fnmatch`. The default is
//!   MLflow's: the localhost names on any port and the private address ranges (`10.*`, `192.168.*`,
//!   `172.16.*`–`172.31.*`, `fc00:*`, `fd00:*`), plus the address the server is bound to. `*` turns the check
//!   off. `/health` and `/version` are exempt. A refused request gets 403 `text/plain`.
//! - **Cross-origin writes** (CSRF): a POST, PUT, PATCH or DELETE to an API path (`/api/`, `/ajax-api/`,
//!   the artifact proxy; ferroflow adds OTLP's `/v1/`) whose `Origin` is neither a localhost origin nor one of
//!   `--cors-allowed-origins` (`MLFLOW_SERVER_CORS_ALLOWED_ORIGINS`) is refused with 403 before any handler
//!   runs, so a page on another site cannot rename the Default experiment with a `text/plain` form post.
//!   JSON-only POST bodies (`extract.rs`) close the same door for clients that send no `Origin`.
//! - **CORS**: answers preflights for the localhost origins and the allowlist, with credentials; with `*`
//!   every origin is allowed without credentials and nothing is blocked (as in MLflow).
//! - **Security headers** on every answer: `X-Content-Type-Options: nosniff`, `X-Frame-Options`
//!   (`--x-frame-options`, default `SAMEORIGIN`; `NONE` leaves it out) with the matching CSP
//!   `frame-ancestors`, and `Referrer-Policy: same-origin`. A successful `OPTIONS` on an API path answers 204.
//! - **Limits** that stay on even with `--disable-security-middleware`: request headers beyond
//!   [`MAX_HEADER_BYTES`] get 431, and a request whose handler runs longer than the request timeout gets 503
//!   (`TEMPORARILY_UNAVAILABLE`; the handler is dropped, so its transaction rolls back). Artifact transfers
//!   stream and are exempt from the timeout; JSON bodies are bounded in `extract.rs`, OTLP bodies in
//!   `routes/otlp.rs`.
//! - **Slow clients** (slowloris), enforced where connections are accepted (`connections.rs`): a client
//!   must send a request's whole header within `--header-read-timeout` (default
//!   [`DEFAULT_HEADER_READ_TIMEOUT`]) of starting it or of its previous answer, else the connection is
//!   closed; at most `--max-connections` connections are served at once, further ones wait in the
//!   listen backlog.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferroflow_proto::ErrorCode;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};

/// MLflow's answer to a refused `Host`.
pub const INVALID_HOST_MESSAGE: &str =
    "Invalid Host header - possible DNS rebinding attack detected";
/// MLflow's answer to a refused cross-origin write.
pub const CORS_BLOCKED_MESSAGE: &str = "Cross-origin request blocked";
/// The largest sum of header name and value lengths a request may carry.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The request timeout when none is configured.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a client may take to send a request's header (and an idle keep-alive connection may wait).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once when none is configured (gunicorn's `worker_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;

/// Paths the host check lets through (load balancers probe them by address).
const HEALTH_PATHS: [&str; 2] = ["/health", "/version"];
/// MLflow's localhost names.
const LOCALHOST_HOSTS: [&str; 4] = ["localhost", "127.0.0.1", "[::1]", "0.0.0.0"];
/// Hosts whose `http://` origins are always allowed.
const LOCALHOST_ORIGIN_HOSTS: [&str; 4] = ["localhost", "127.0.0.1", "[::1]", "::1"];

/// The security settings, from `--allowed-hosts`, `--cors-allowed-origins`, `--x-frame-options`,
/// `--disable-security-middleware` and the request timeout.
#[derive(Debug, Clone)]
pub struct SecuritySettings {
    /// `--disable-security-middleware`: no host check, CORS or security headers (limits stay).
    pub disabled: bool,
    /// `--allowed-hosts` split at commas; `None` for MLflow's default list.
    pub allowed_hosts: Option<Vec<String>>,
    /// `--cors-allowed-origins` split at commas.
    pub cors_allowed_origins: Vec<String>,
    /// `--x-frame-options`: `SAMEORIGIN`, `DENY` or `NONE`.
    pub x_frame_options: String,
    /// The address the server listens on, added to the default allowed hosts.
    pub bound_address: Option<IpAddr>,
    /// How long a handler may run (artifact transfers excepted).
    pub request_timeout: Duration,
    /// `--header-read-timeout`: the time to send a request's header, from its first byte or from the
    /// previous answer on a kept-alive connection.
    pub header_read_timeout: Duration,
    /// `--max-connections`: connections served at once.
    pub max_connections: usize,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self {
            disabled: false,
            allowed_hosts: None,
            cors_allowed_origins: Vec::new(),
            x_frame_options: "SAMEORIGIN".to_owned(),
            bound_address: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Splits a comma-separated flag value as MLflow does (items trimmed, empty ones dropped).
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

impl SecuritySettings {
    /// The host patterns in force; `None` when every host is allowed.
    pub fn host_patterns(&self) -> Option<Vec<String>> {
        let mut patterns = match &self.allowed_hosts {
            Some(hosts) if !hosts.is_empty() => hosts.clone(),
            _ => default_allowed_hosts(),
        };
        if patterns.iter().any(|pattern| pattern == "*") {
            return None;
        }
        if self.allowed_hosts.is_none() {
            if let Some(address) = self
                .bound_address
                .filter(|address| !address.is_unspecified())
            {
                let host = match address {
                    IpAddr::V4(v4) => v4.to_string(),
                    IpAddr::V6(v6) => format!("[{v6}]"),
                };
                patterns.push(format!("{}:*", host.replace('[', "[[]")));
                patterns.push(host);
            }
        }
        Some(
            patterns
                .into_iter()
                .map(|pattern| pattern.to_ascii_lowercase())
                .collect(),
        )
    }

    fn wildcard_origins(&self) -> bool {
        self.cors_allowed_origins.iter().any(|origin| origin == "*")
    }
}

/// MLflow's default allowed hosts: localhost names with and without a port, and the private ranges.
pub fn default_allowed_hosts() -> Vec<String> {
    let mut hosts: Vec<String> = LOCALHOST_HOSTS
        .iter()
        .map(|host| (*host).to_owned())
        .collect();
    for host in LOCALHOST_HOSTS {
        hosts.push(format!("{}:*", host.replacen('[', "[[]", 1)));
    }
    hosts.push("192.168.*".to_owned());
    hosts.push("10.*".to_owned());
    for second in 16..32 {
        hosts.push(format!("172.{second}.*"));
    }
    hosts.push("fc00:*".to_owned());
    hosts.push("fd00:*".to_owned());
    hosts
}

/// Python's `fnmatch.fnmatchcase`: `*` any run, `?` one character, `[seq]` / `[!seq]` a set (with
/// ranges); a `[` without its `]` is literal.
pub fn fnmatch(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    // Iterative matching with one backtrack point for the last `*`: linear in practice, never exponential.
    let (mut text_at, mut pattern_at) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while text_at < text.len() {
        if pattern_at < pattern.len() {
            match pattern[pattern_at] {
                '*' => {
                    star = Some((pattern_at, text_at));
                    pattern_at += 1;
                    continue;
                }
                '?' => {
                    text_at += 1;
                    pattern_at += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = match_set(&pattern, pattern_at, text[text_at]) {
                        if matched {
                            text_at += 1;
                            pattern_at = next;
                            continue;
                        }
                    } else if text[text_at] == '[' {
                        text_at += 1;
                        pattern_at += 1;
                        continue;
                    }
                }
                literal if literal == text[text_at] => {
                    text_at += 1;
                    pattern_at += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((star_pattern, star_text)) => {
                pattern_at = star_pattern + 1;
                text_at = star_text + 1;
                star = Some((star_pattern, star_text + 1));
            }
            None => return false,
        }
    }
    pattern[pattern_at..]
        .iter()
        .all(|&character| character == '*')
}

/// Matches `character` against the set opening at `pattern[start] == '['`; `None` when the set has no
/// closing `]` (then the `[` is literal), else whether it matched and where the pattern goes on.
fn match_set(pattern: &[char], start: usize, character: char) -> Option<(bool, usize)> {
    let mut at = start + 1;
    let negated = pattern.get(at) == Some(&'!');
    if negated {
        at += 1;
    }
    let first = at;
    let mut matched = false;
    loop {
        let current = *pattern.get(at)?;
        if current == ']' && at > first {
            return Some((matched != negated, at + 1));
        }
        if pattern.get(at + 1) == Some(&'-') && pattern.get(at + 2).is_some_and(|end| *end != ']') {
            let end = pattern[at + 2];
            if current <= character && character <= end {
                matched = true;
            }
            at += 3;
        } else {
            if current == character {
                matched = true;
            }
            at += 1;
        }
    }
}

/// Whether `host` (a `Host` header) matches one of `patterns` (lower-cased).
pub fn is_allowed_host(host: &str, patterns: &[String]) -> bool {
    if host.is_empty() {
        return false;
    }
    let host = host.to_ascii_lowercase();
    patterns.iter().any(|pattern| {
        if pattern.contains('*') {
            fnmatch(&host, pattern)
        } else {
            host == *pattern
        }
    })
}

/// Whether `origin` is `scheme://localhost…`, `127.0.0.1` or `[::1]` (any scheme and port, as MLflow's
/// `is_localhost_origin`).
pub fn is_localhost_origin(origin: &str) -> bool {
    let Some((_, rest)) = origin.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((inner, _)) => inner,
            None => return false,
        }
    } else {
        authority.split(':').next().unwrap_or("")
    };
    let host = host.to_ascii_lowercase();
    LOCALHOST_ORIGIN_HOSTS
        .iter()
        .any(|allowed| host == allowed.trim_start_matches('[').trim_end_matches(']'))
}

/// MLflow's `LOCALHOST_ORIGIN_PATTERNS`: `http://` localhost origins, optionally with a port.
fn is_localhost_http_origin(origin: &str) -> bool {
    ["http://localhost", "http://127.0.0.1", "http://[::1]"]
        .iter()
        .any(|prefix| match origin.strip_prefix(prefix) {
            Some("") => true,
            Some(rest) => rest.strip_prefix(':').is_some_and(|port| {
                !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit())
            }),
            None => false,
        })
}

fn origin_in_list(origin: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|entry| {
        if entry.contains('*') {
            fnmatch(origin, entry)
        } else {
            origin == entry
        }
    })
}

/// MLflow's `should_block_cors_request`: a state-changing request from a foreign origin.
pub fn should_block_cross_origin(origin: &str, method: &Method, allowed: &[String]) -> bool {
    let changes_state = [Method::POST, Method::PUT, Method::DELETE, Method::PATCH].contains(method);
    if origin.is_empty() || !changes_state || is_localhost_origin(origin) {
        return false;
    }
    if allowed.iter().any(|entry| entry == "*") {
        return false;
    }
    !origin_in_list(origin, allowed)
}

/// The paths whose writes are guarded against foreign origins and whose `OPTIONS` answers 204.
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/ajax-api/") || path.starts_with("/v1/")
}

/// Artifact transfers stream for as long as the file takes; the request timeout does not cut them.
fn is_streaming_path(path: &str) -> bool {
    path.contains("/mlflow-artifacts/") || path.contains("/get-artifact")
}

struct Resolved {
    settings: SecuritySettings,
    host_patterns: Option<Vec<String>>,
    frame_options: Option<HeaderValue>,
    frame_ancestors: Option<HeaderValue>,
}

fn resolve(settings: &SecuritySettings) -> Resolved {
    let frame = settings.x_frame_options.trim().to_ascii_uppercase();
    let (frame_options, frame_ancestors) = match frame.as_str() {
        "" | "NONE" => (None, None),
        "DENY" => (
            Some(HeaderValue::from_static("DENY")),
            Some(HeaderValue::from_static("frame-ancestors 'none'")),
        ),
        "SAMEORIGIN" => (
            Some(HeaderValue::from_static("SAMEORIGIN")),
            Some(HeaderValue::from_static("frame-ancestors 'self'")),
        ),
        // MLflow passes any other value through upper-cased; the CSP is left to that value's meaning.
        other => (HeaderValue::from_str(other).ok(), None),
    };
    Resolved {
        host_patterns: if settings.disabled {
            None
        } else {
            settings.host_patterns()
        },
        settings: settings.clone(),
        frame_options,
        frame_ancestors,
    }
}

/// Wraps `router` (already given its state) in the hardening layers.
pub fn harden(router: Router, settings: &SecuritySettings) -> Router {
    let resolved = Arc::new(resolve(settings));
    let mut router = router.layer(axum::middleware::from_fn_with_state(
        resolved.clone(),
        request_timeout,
    ));
    if !settings.disabled {
        router = router
            .layer(cors_layer(settings))
            .layer(axum::middleware::from_fn_with_state(
                resolved.clone(),
                block_cross_origin_writes,
            ))
            .layer(axum::middleware::from_fn_with_state(
                resolved.clone(),
                check_host,
            ));
    }
    router
        .layer(axum::middleware::from_fn(limit_headers))
        .layer(axum::middleware::from_fn_with_state(
            resolved,
            security_headers,
        ))
}

fn cors_layer(settings: &SecuritySettings) -> CorsLayer {
    if settings.wildcard_origins() {
        return CorsLayer::new()
            .allow_origin(AllowOrigin::any())
            .allow_methods(AllowMethods::any())
            .allow_headers(AllowHeaders::any())
            .expose_headers(tower_http::cors::Any);
    }
    let allowed = settings.cors_allowed_origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _parts| {
            origin.to_str().is_ok_and(|origin| {
                is_localhost_http_origin(origin) || origin_in_list(origin, &allowed)
            })
        }))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
            Method::PATCH,
        ])
        .allow_headers(AllowHeaders::mirror_request())
}

fn plain_text(status: StatusCode, message: &'static str) -> Response {
    let mut response = (status, message).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// The host a request names: its `Host` header, else the authority of its URI (HTTP/2).
fn request_host(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get(header::HOST) {
        return Some(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    request
        .uri()
        .authority()
        .map(|authority| authority.as_str().to_owned())
}

async fn check_host(
    State(resolved): State<Arc<Resolved>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(patterns) = &resolved.host_patterns else {
        return next.run(request).await;
    };
    if HEALTH_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    // A request naming no host at all (no `Host`, no authority) comes from no browser, so it cannot be a
    // rebinding attack; in-process callers and HTTP/1.0 tools send none.
    if let Some(host) = request_host(&request) {
        if !is_allowed_host(&host, patterns) {
            tracing::warn!(host = %host.escape_debug(), "rejected request with invalid Host header");
            return plain_text(StatusCode::FORBIDDEN, INVALID_HOST_MESSAGE);
        }
    }
    next.run(request).await
}

async fn block_cross_origin_writes(
    State(resolved): State<Arc<Resolved>>,
    request: Request,
    next: Next,
) -> Response {
    if resolved.settings.wildcard_origins() || !is_api_path(request.uri().path()) {
        return next.run(request).await;
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        if should_block_cross_origin(
            &origin,
            request.method(),
            &resolved.settings.cors_allowed_origins,
        ) {
            tracing::warn!(origin = %origin.escape_debug(), "blocked cross-origin request");
            return plain_text(StatusCode::FORBIDDEN, CORS_BLOCKED_MESSAGE);
        }
    }
    next.run(request).await
}

async fn limit_headers(request: Request, next: Next) -> Response {
    let total: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if total > MAX_HEADER_BYTES {
        return plain_text(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request header fields too large",
        );
    }
    next.run(request).await
}

async fn request_timeout(
    State(resolved): State<Arc<Resolved>>,
    request: Request,
    next: Next,
) -> Response {
    if is_streaming_path(request.uri().path()) {
        return next.run(request).await;
    }
    let limit = resolved.settings.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout_s = limit.as_secs_f64(), "request timed out");
            crate::error::error_response(
                ErrorCode::TemporarilyUnavailable,
                format!(
                    "The request did not finish within {} seconds",
                    limit.as_secs()
                ),
            )
        }
    }
}

async fn security_headers(
    State(resolved): State<Arc<Resolved>>,
    request: Request,
    next: Next,
) -> Response {
    if resolved.settings.disabled {
        return next.run(request).await;
    }
    let is_options = request.method() == Method::OPTIONS;
    let api_path = is_api_path(request.uri().path());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(value) = &resolved.frame_options {
        headers.insert(header::X_FRAME_OPTIONS, value.clone());
    }
    if let Some(value) = &resolved.frame_ancestors {
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
            headers.insert(header::CONTENT_SECURITY_POLICY, value.clone());
        }
    }
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    if is_options && api_path && response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::NO_CONTENT;
        *response.body_mut() = axum::body::Body::empty();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_follows_python() {
        let cases = [
            ("localhost:5000", "localhost:*", true),
            ("localhost", "localhost:*", false),
            ("[::1]:5000", "[[]::1]:*", true),
            ("10.1.2.3:80", "10.*", true),
            ("110.1.2.3", "10.*", false),
            ("172.16.0.1", "172.16.*", true),
            ("172.32.0.1", "172.16.*", false),
            ("app-1.internal.com", "app-*.internal.com", true),
            ("app-1.evil.com", "app-*.internal.com", false),
            ("abc", "a?c", true),
            ("abc", "a[a-c]c", true),
            ("adc", "a[!a-c]c", true),
            ("abc", "a[!a-c]c", false),
            ("a[c", "a[c", true),
            ("", "*", true),
            (
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
                "*a*a*a*a*a*a*a*a*c",
                false,
            ),
        ];
        for (text, pattern, expected) in cases {
            assert_eq!(fnmatch(text, pattern), expected, "{text} ~ {pattern}");
        }
    }

    #[test]
    fn default_hosts_are_mlflows() {
        let patterns = SecuritySettings::default()
            .host_patterns()
            .unwrap_or_default();
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
            "0.0.0.0:80",
            "192.168.1.9:5000",
            "10.0.0.1",
            "172.20.1.1:5000",
            "fd00:1",
        ] {
            assert!(is_allowed_host(host, &patterns), "{host}");
        }
        for host in [
            "evil.com",
            "evil.com:5000",
            "localhost.evil.com",
            "127.0.0.1.nip.io:5000",
            "8.8.8.8:5000",
            "172.15.0.1",
            "",
        ] {
            assert!(!is_allowed_host(host, &patterns), "{host}");
        }
    }

    #[test]
    fn bound_address_and_explicit_lists() {
        let bound = SecuritySettings {
            bound_address: Some(IpAddr::from([203, 0, 113, 7])),
            ..SecuritySettings::default()
        };
        let patterns = bound.host_patterns().unwrap_or_default();
        assert!(is_allowed_host("203.0.113.7:5000", &patterns));
        assert!(is_allowed_host("203.0.113.7", &patterns));
        let explicit = SecuritySettings {
            allowed_hosts: Some(split_list("mlflow.example.com, 10.0.0.100:5000")),
            ..SecuritySettings::default()
        };
        let patterns = explicit.host_patterns().unwrap_or_default();
        assert!(is_allowed_host("MLflow.example.com", &patterns));
        assert!(!is_allowed_host("localhost:5000", &patterns));
        let any = SecuritySettings {
            allowed_hosts: Some(vec!["*".to_owned()]),
            ..SecuritySettings::default()
        };
        assert_eq!(any.host_patterns(), None);
    }

    #[test]
    fn cross_origin_writes() {
        let allowed = split_list("https://app.example.com,https://*.corp.example");
        let check =
            |origin: &str, method: Method| should_block_cross_origin(origin, &method, &allowed);
        assert!(check("https://evil.example", Method::POST));
        assert!(check("null", Method::DELETE));
        assert!(check("http://localhost.evil.example", Method::PATCH));
        assert!(!check("https://evil.example", Method::GET));
        assert!(!check("", Method::POST));
        assert!(!check("http://localhost:3000", Method::POST));
        assert!(!check("http://[::1]:3000", Method::PUT));
        assert!(!check("https://app.example.com", Method::POST));
        assert!(!check("https://ui.corp.example", Method::POST));
        assert!(is_localhost_http_origin("http://127.0.0.1:5000"));
        assert!(!is_localhost_http_origin("http://127.0.0.1:5000.evil.com"));
        assert!(!is_localhost_http_origin("https://localhost"));
    }
}
