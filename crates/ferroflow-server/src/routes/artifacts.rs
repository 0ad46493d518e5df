//! The artifact endpoints: MLflow's proxied artifact API (`/mlflow-artifacts/...`), the tracking-side
//! listing (`/mlflow/artifacts/list`) and the UI's download route (`/get-artifact`).
//!
//! Every client path goes through [`ArtifactPath::parse`] before a store sees it. The router has already
//! percent-decoded wildcard captures and query values once; `ArtifactPath` refuses what is left of an
//! encoded separator or dot, so a double-encoded `..` never reaches a store.
//!
//! Proxied paths are relative to the served artifact root (`1/<run_id>/artifacts/a.txt`). Without a
//! served store (`--no-serve-artifacts`) those routes answer 503 with MLflow's plain-text message.
//!
//! The tracking-side routes resolve a run's `artifact_uri`: `mlflow-artifacts:` and `http(s)://…/api/2.0/
//! mlflow-artifacts/artifacts/…` roots map into the served store; local roots (`file://` or an absolute
//! path) are read only when they lie under a local `--default-artifact-root`. Anything else answers
//! NOT_IMPLEMENTED: the server never reads a location a client merely named.

use crate::error::{ApiError, ApiResult};
use crate::extract::MlflowRequest;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use ferroflow_artifacts::{ArtifactDownload, ArtifactStore, LocalArtifactStore};
use ferroflow_core::artifact_path::ArtifactPath;
use ferroflow_core::Error;
use ferroflow_proto::tracking::{Empty, FileInfo, ListArtifacts, ListArtifactsResponse};
use futures::TryStreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use std::path::{Component, PathBuf};
use std::sync::Arc;

/// The prefixes under which MLflow serves the artifact service.
const API_PREFIXES: [&str; 2] = ["/api/2.0", "/ajax-api/2.0"];

const MULTIPART_UPLOAD_UNSUPPORTED: &str =
    "Multipart upload is not supported for the current artifact repository";
const MULTIPART_DOWNLOAD_UNSUPPORTED: &str =
    "Multipart download is not supported for the current artifact repository";
const FILENAME_REQUIRED: &str = "Artifact path must include a filename (cannot end with '/').";

/// The artifact routes relative to `/api/2.0` and `/ajax-api/2.0`.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/mlflow-artifacts/artifacts", get(list_artifacts_mlflow_artifacts)),
        (
            "/mlflow-artifacts/artifacts/{*artifact_path}",
            get(download_artifact).put(upload_artifact).delete(delete_artifact),
        ),
        ("/mlflow-artifacts/mpu/create/{*artifact_path}", post(create_multipart_upload)),
        ("/mlflow-artifacts/mpu/complete/{*artifact_path}", post(complete_multipart_upload)),
        ("/mlflow-artifacts/mpu/abort/{*artifact_path}", post(abort_multipart_upload)),
        ("/mlflow-artifacts/presigned/{*artifact_path}", get(get_presigned_download_url)),
        ("/mlflow/artifacts/list", get(list_artifacts)),
    ]
}

/// Every artifact route under both prefixes, plus the UI's `/get-artifact`.
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for prefix in API_PREFIXES {
        for (path, method_router) in routes() {
            router = router.route(&format!("{prefix}{path}"), method_router);
        }
    }
    router.route("/get-artifact", get(get_artifact))
}

// ---------------------------------------------------------------------------------------------------------
// Extractors.
// ---------------------------------------------------------------------------------------------------------

/// The served artifact store. Without one, the request is refused the way MLflow refuses it under
/// `--no-serve-artifacts`: 503 with a plain-text message naming the route.
struct ServedArtifacts(Arc<dyn ArtifactStore>);

impl FromRequestParts<AppState> for ServedArtifacts {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match &state.artifacts {
            Some(store) => Ok(Self(Arc::clone(store))),
            None => {
                let route = parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("");
                Err(serving_disabled(route))
            }
        }
    }
}

fn serving_disabled(route: &str) -> Response {
    // The route pattern, never the request path: nothing the client sent is echoed back.
    let flask_rule = route.replace("{*artifact_path}", "<path:artifact_path>");
    let message = format!(
        "Endpoint: {flask_rule} disabled due to the mlflow server running with `--no-serve-artifacts`. \
         To enable artifacts server functionality, run `mlflow server` with `--serve-artifacts`"
    );
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// The `{*artifact_path}` capture, decoded once by the router, parsed into an [`ArtifactPath`].
struct ArtifactPathParam {
    path: ArtifactPath,
    /// The client wrote a trailing `/`: the path names a directory, not a file.
    has_trailing_slash: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for ArtifactPathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // A capture that does not decode to UTF-8 is refused like any other bad path.
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::invalid_parameter(ferroflow_core::artifact_path::INVALID_PATH_MESSAGE))?;
        let path = ArtifactPath::parse(&raw)?;
        Ok(Self { path, has_trailing_slash: raw.ends_with('/') })
    }
}

// ---------------------------------------------------------------------------------------------------------
// The proxied artifact service (`MlflowArtifactsService`).
// ---------------------------------------------------------------------------------------------------------

/// `GET /mlflow-artifacts/artifacts/<path>`: the file's bytes, streamed, as an attachment.
async fn download_artifact(
    ServedArtifacts(store): ServedArtifacts,
    ArtifactPathParam { path, .. }: ArtifactPathParam,
) -> ApiResult<Response> {
    let download = store.get(&path).await?;
    Ok(attachment_response(&path, download))
}

/// `PUT /mlflow-artifacts/artifacts/<path>`: the body, streamed to the store. 200 with an empty body.
async fn upload_artifact(
    ServedArtifacts(store): ServedArtifacts,
    ArtifactPathParam { path, has_trailing_slash }: ArtifactPathParam,
    body: Body,
) -> ApiResult<StatusCode> {
    if has_trailing_slash || path.is_root() {
        return Err(ApiError::invalid_parameter(FILENAME_REQUIRED));
    }
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    store.put(&path, Box::pin(stream)).await?;
    Ok(StatusCode::OK)
}

/// `DELETE /mlflow-artifacts/artifacts/<path>`: the file or directory, recursively. `{}`.
async fn delete_artifact(
    ServedArtifacts(store): ServedArtifacts,
    ArtifactPathParam { path, .. }: ArtifactPathParam,
) -> ApiResult<Json<Empty>> {
    store.delete(&path).await?;
    Ok(Json(Empty {}))
}

#[derive(Debug, Default, Deserialize)]
struct ListArtifactsMlflowArtifacts {
    #[serde(default)]
    path: Option<String>,
}

/// `GET /mlflow-artifacts/artifacts?path=<dir>`: the directory's entries by basename; `{}` for a file or
/// a missing directory.
async fn list_artifacts_mlflow_artifacts(
    ServedArtifacts(store): ServedArtifacts,
    MlflowRequest(request): MlflowRequest<ListArtifactsMlflowArtifacts>,
) -> ApiResult<Json<ListArtifactsResponse>> {
    let directory = parse_optional_path(request.path.as_deref())?;
    let entries = store.list(&directory).await?.unwrap_or_default();
    let files = entries
        .into_iter()
        .map(|entry| FileInfo { path: entry.name, is_dir: entry.is_dir, file_size: file_size(entry.size) })
        .collect();
    Ok(Json(ListArtifactsResponse { root_uri: None, files, next_page_token: None }))
}

/// `POST /mlflow-artifacts/mpu/create/<path>`: no backend offers multipart uploads yet, so the client
/// falls back to a plain PUT.
async fn create_multipart_upload(
    ServedArtifacts(_store): ServedArtifacts,
    ArtifactPathParam { .. }: ArtifactPathParam,
) -> ApiResult<Response> {
    Err(Error::not_implemented(MULTIPART_UPLOAD_UNSUPPORTED).into())
}

async fn complete_multipart_upload(
    ServedArtifacts(_store): ServedArtifacts,
    ArtifactPathParam { .. }: ArtifactPathParam,
) -> ApiResult<Response> {
    Err(Error::not_implemented(MULTIPART_UPLOAD_UNSUPPORTED).into())
}

async fn abort_multipart_upload(
    ServedArtifacts(_store): ServedArtifacts,
    ArtifactPathParam { .. }: ArtifactPathParam,
) -> ApiResult<Response> {
    Err(Error::not_implemented(MULTIPART_UPLOAD_UNSUPPORTED).into())
}

/// `GET /mlflow-artifacts/presigned/<path>`: no backend presigns downloads yet.
async fn get_presigned_download_url(
    ServedArtifacts(_store): ServedArtifacts,
    ArtifactPathParam { .. }: ArtifactPathParam,
) -> ApiResult<Response> {
    Err(Error::not_implemented(MULTIPART_DOWNLOAD_UNSUPPORTED).into())
}

// ---------------------------------------------------------------------------------------------------------
// Tracking-side routes that read a run's artifacts.
// ---------------------------------------------------------------------------------------------------------

/// `GET /mlflow/artifacts/list?run_id=&path=`: the run's `root_uri` and the entries of `path` with
/// run-relative paths (`model/MLmodel`). There is one page: `page_token` is ignored.
async fn list_artifacts(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<ListArtifacts>,
) -> ApiResult<Json<ListArtifactsResponse>> {
    let run_id = required_run_id(request.run_id, request.run_uuid)?;
    let relative = parse_optional_path(request.path.as_deref())?;
    let artifact_uri = run_artifact_uri(&state, &run_id).await?;
    let (store, run_root) = open_run_artifact_root(&state, &artifact_uri).await?;
    let entries = store.list(&run_root.join(&relative)).await?.unwrap_or_default();
    let files = entries
        .into_iter()
        .map(|entry| FileInfo {
            path: if relative.is_root() { entry.name } else { format!("{relative}/{}", entry.name) },
            is_dir: entry.is_dir,
            file_size: file_size(entry.size),
        })
        .collect();
    Ok(Json(ListArtifactsResponse { root_uri: Some(artifact_uri), files, next_page_token: None }))
}

#[derive(Debug, Default, Deserialize)]
struct GetArtifact {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_uuid: Option<String>,
}

/// `GET /get-artifact?path=&run_uuid=`: one file of a run, for the UI.
async fn get_artifact(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<GetArtifact>,
) -> ApiResult<Response> {
    let run_id = required_run_id(request.run_id, request.run_uuid)?;
    let raw_path = request.path.ok_or_else(|| Error::missing_parameter("path"))?;
    let relative = ArtifactPath::parse(&raw_path)?;
    let artifact_uri = run_artifact_uri(&state, &run_id).await?;
    let (store, run_root) = open_run_artifact_root(&state, &artifact_uri).await?;
    let download = store.get(&run_root.join(&relative)).await?;
    Ok(attachment_response(&relative, download))
}

fn required_run_id(run_id: Option<String>, run_uuid: Option<String>) -> Result<String, Error> {
    run_id
        .filter(|id| !id.is_empty())
        .or(run_uuid.filter(|id| !id.is_empty()))
        .ok_or_else(|| Error::missing_parameter("run_id"))
}

async fn run_artifact_uri(state: &AppState, run_id: &str) -> Result<String, Error> {
    let run = state.tracking.get_run_info(run_id).await?;
    let run = run.ok_or_else(|| Error::not_found(format!("Run with id={run_id} not found")))?;
    Ok(run.artifact_uri)
}

/// The store holding a run's artifacts and the run's root inside it.
async fn open_run_artifact_root(
    state: &AppState,
    artifact_uri: &str,
) -> Result<(Arc<dyn ArtifactStore>, ArtifactPath), Error> {
    match RunArtifactLocation::parse(artifact_uri)? {
        RunArtifactLocation::Proxied(root) => match &state.artifacts {
            Some(store) => Ok((Arc::clone(store), root)),
            None => Err(Error::not_implemented(format!(
                "cannot read artifacts at '{artifact_uri}': the server does not serve artifacts \
                 (--no-serve-artifacts)"
            ))),
        },
        RunArtifactLocation::Local(run_directory) => {
            let default_root = local_path(&state.config.default_artifact_root, true)
                .ok_or_else(|| unreadable_location(artifact_uri))?;
            let relative =
                run_directory.strip_prefix(&default_root).map_err(|_| unreadable_location(artifact_uri))?;
            let root = relative_artifact_path(relative)?;
            let store = LocalArtifactStore::new(default_root).await?;
            Ok((Arc::new(store), root))
        }
        RunArtifactLocation::Unsupported => Err(unreadable_location(artifact_uri)),
    }
}

fn unreadable_location(artifact_uri: &str) -> Error {
    Error::not_implemented(format!("this server cannot read artifacts at '{artifact_uri}'"))
}

/// Where a run's artifacts live, from its `artifact_uri`.
#[derive(Debug, PartialEq)]
enum RunArtifactLocation {
    /// Under the served artifact root: `mlflow-artifacts:/1/<run>/artifacts`, or an HTTP URL of this
    /// API (`http://host/api/2.0/mlflow-artifacts/artifacts/1/<run>/artifacts`).
    Proxied(ArtifactPath),
    /// An absolute local directory, from `file://` or a plain path.
    Local(PathBuf),
    /// A location this server does not read (cloud stores, other hosts).
    Unsupported,
}

impl RunArtifactLocation {
    fn parse(artifact_uri: &str) -> Result<Self, Error> {
        // A query or fragment could cut a later parse of the path short (MLflow CVE-2024-1593 and kin).
        if artifact_uri.contains(['?', '#']) || artifact_uri.chars().any(char::is_control) {
            return Err(Error::invalid_parameter(ferroflow_core::artifact_path::INVALID_PATH_MESSAGE));
        }
        let Some((scheme, rest)) = split_scheme(artifact_uri) else {
            return Ok(local_path(artifact_uri, false).map_or(Self::Unsupported, Self::Local));
        };
        match scheme.as_str() {
            "mlflow-artifacts" => {
                let path = strip_authority(rest).map_or(rest, |(_, path)| path);
                Ok(Self::Proxied(ArtifactPath::parse(path.trim_start_matches('/'))?))
            }
            "http" | "https" => {
                const ANCHOR: &str = "/api/2.0/mlflow-artifacts/artifacts/";
                let Some((_, path)) = strip_authority(rest) else {
                    return Ok(Self::Unsupported);
                };
                match path.split_once(ANCHOR) {
                    Some(("", root)) => Ok(Self::Proxied(ArtifactPath::parse(root.trim_start_matches('/'))?)),
                    _ => Ok(Self::Unsupported),
                }
            }
            "file" => Ok(local_path(artifact_uri, false).map_or(Self::Unsupported, Self::Local)),
            _ => Ok(Self::Unsupported),
        }
    }
}

/// `scheme:rest` with the scheme lowercased, when `uri` starts with a URI scheme of two or more
/// characters (one letter is a Windows drive).
fn split_scheme(uri: &str) -> Option<(String, &str)> {
    let (scheme, rest) = uri.split_once(':')?;
    let mut characters = scheme.chars();
    let starts_with_letter = characters.next().is_some_and(|first| first.is_ascii_alphabetic());
    let valid = starts_with_letter
        && scheme.len() >= 2
        && characters.all(|character| character.is_ascii_alphanumeric() || "+-.".contains(character));
    valid.then(|| (scheme.to_ascii_lowercase(), rest))
}

/// Splits `//authority/path` into the authority and `/path`; `None` when `rest` has no authority.
fn strip_authority(rest: &str) -> Option<(&str, &str)> {
    let after_slashes = rest.strip_prefix("//")?;
    Some(match after_slashes.find('/') {
        Some(index) => after_slashes.split_at(index),
        None => (after_slashes, ""),
    })
}

/// The local directory named by a `file:` URI or a plain path. A plain relative path is accepted only
/// for the configured root (`allow_relative`) and made absolute against the working directory.
fn local_path(location: &str, allow_relative: bool) -> Option<PathBuf> {
    let path = match split_scheme(location) {
        Some((scheme, rest)) if scheme == "file" => {
            let path = match strip_authority(rest) {
                Some(("" | "localhost", path)) => path,
                Some(_) => return None,
                None => rest,
            };
            // `file:` URIs are percent-encoded (`Path.as_uri()`): decode them once.
            PathBuf::from(percent_encoding::percent_decode_str(path).decode_utf8().ok()?.into_owned())
        }
        Some(_) => return None,
        None => PathBuf::from(location),
    };
    if path.is_absolute() {
        Some(path)
    } else if allow_relative && !location.is_empty() {
        std::path::absolute(path).ok()
    } else {
        None
    }
}

/// A relative file-system path, as found under the configured root, as an [`ArtifactPath`].
fn relative_artifact_path(relative: &std::path::Path) -> Result<ArtifactPath, Error> {
    let mut segments = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(segment) => segments.push(segment.to_str().ok_or_else(invalid_path)?),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return Err(invalid_path()),
        }
    }
    ArtifactPath::parse(&segments.join("/"))
}

fn invalid_path() -> Error {
    Error::invalid_parameter(ferroflow_core::artifact_path::INVALID_PATH_MESSAGE)
}

// ---------------------------------------------------------------------------------------------------------
// Responses.
// ---------------------------------------------------------------------------------------------------------

fn parse_optional_path(raw: Option<&str>) -> Result<ArtifactPath, Error> {
    raw.map_or_else(|| Ok(ArtifactPath::root()), ArtifactPath::parse)
}

fn file_size(size: Option<u64>) -> Option<i64> {
    size.and_then(|size| i64::try_from(size).ok())
}

/// A download as MLflow sends it: always an attachment, with a guessed type and `nosniff`, so a browser
/// never renders an artifact on the server's origin.
fn attachment_response(path: &ArtifactPath, download: ArtifactDownload) -> Response {
    let file_name = path.file_name().unwrap_or("download");
    let mut response = Response::new(Body::from_stream(download.stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(guess_mime_type(file_name)));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(download.size));
    let disposition = HeaderValue::from_str(&content_disposition(file_name))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Extensions MLflow serves as `text/plain` (`mlflow.utils.mime_type_utils.get_text_extensions`); a
/// name without extension is compared whole, for `MLmodel` and `MLproject`.
const TEXT_EXTENSIONS: &[&str] = &[
    "txt",
    "log",
    "err",
    "cfg",
    "conf",
    "cnf",
    "cf",
    "ini",
    "properties",
    "prop",
    "hocon",
    "toml",
    "yaml",
    "yml",
    "xml",
    "json",
    "js",
    "py",
    "py3",
    "csv",
    "tsv",
    "md",
    "rst",
    "ipynb",
    "MLmodel",
    "MLproject",
];

fn guess_mime_type(file_name: &str) -> &'static str {
    let extension = match file_name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => extension,
        _ => file_name,
    };
    if TEXT_EXTENSIONS.contains(&extension) {
        return "text/plain";
    }
    mime_guess::from_path(file_name).first_raw().unwrap_or("application/octet-stream")
}

/// RFC 6266 token characters: a name made only of these needs no quotes.
fn is_token_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(character)
}

/// What `urllib.parse.quote(name, safe="!#$&+-.^_`|~")` leaves unencoded, besides letters and digits.
const FILENAME_STAR_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// MLflow's `Content-Disposition` (`_content_disposition_attachment`): `attachment; filename=<name>`,
/// quoted when needed; a non-ASCII name gets an ASCII fallback plus `filename*=UTF-8''<encoded>`.
fn content_disposition(file_name: &str) -> String {
    if file_name.is_ascii() {
        return format!("attachment; filename={}", quote_header_value(file_name));
    }
    let fallback: String =
        file_name.chars().filter(|character| character.is_ascii() && !character.is_ascii_control()).collect();
    let fallback = if fallback.is_empty() { "download".to_owned() } else { fallback };
    let encoded = percent_encoding::utf8_percent_encode(file_name, FILENAME_STAR_ENCODE);
    format!("attachment; filename={}; filename*=UTF-8''{encoded}", quote_header_value(&fallback))
}

fn quote_header_value(value: &str) -> String {
    if !value.is_empty() && value.chars().all(is_token_character) {
        return value.to_owned();
    }
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}
