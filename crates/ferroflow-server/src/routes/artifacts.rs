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
//! path) are read only when they lie under a local `--default-artifact-root`, and cloud roots (`s3://`,
//! `gs://`, `wasbs://`, `abfss://`) only when they lie under a cloud `--default-artifact-root`, through
//! the store the server opened for it with its own credentials. Anything else answers NOT_IMPLEMENTED:
//! the server never reads a location a client merely named.
//!
//! Multipart uploads (`/mlflow-artifacts/mpu/{create,complete,abort}/<dir>`) follow MLflow's handlers: the
//! object is `<dir>/<basename of the client's local file>`, the store presigns one URL per part, and a
//! store without [`MultipartUploads`](ferroflow_artifacts::MultipartUploads) answers NOT_IMPLEMENTED
//! with MLflow's message, on which the client falls back to one streamed PUT.

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
use ferroflow_artifacts::{
    local_path, relative_artifact_path, ArtifactDownload, ArtifactLocation, ArtifactStore,
    LocalArtifactStore, MultipartUploads, RunArtifactLocation, UploadedPart,
};
use ferroflow_core::artifact_path::ArtifactPath;
use ferroflow_core::Error;
use ferroflow_proto::lenient;
use ferroflow_proto::registry::ModelVersionKey;
use ferroflow_proto::tracking::{Empty, FileInfo, ListArtifacts, ListArtifactsResponse};
use futures::TryStreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
        (
            "/mlflow-artifacts/artifacts",
            get(list_artifacts_mlflow_artifacts),
        ),
        (
            "/mlflow-artifacts/artifacts/{*artifact_path}",
            get(download_artifact)
                .put(upload_artifact)
                .delete(delete_artifact),
        ),
        (
            "/mlflow-artifacts/mpu/create/{*artifact_path}",
            post(create_multipart_upload),
        ),
        (
            "/mlflow-artifacts/mpu/complete/{*artifact_path}",
            post(complete_multipart_upload),
        ),
        (
            "/mlflow-artifacts/mpu/abort/{*artifact_path}",
            post(abort_multipart_upload),
        ),
        (
            "/mlflow-artifacts/presigned/{*artifact_path}",
            get(get_presigned_download_url),
        ),
        ("/mlflow/artifacts/list", get(list_artifacts)),
    ]
}

/// Every artifact route under both prefixes, plus the UI's `/get-artifact` and
/// `/model-versions/get-artifact`.
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for prefix in API_PREFIXES {
        for (path, method_router) in routes() {
            router = router.route(&format!("{prefix}{path}"), method_router);
        }
    }
    for (path, method_router) in ui_routes() {
        router = router.route(path, method_router);
    }
    router
}

/// The UI's download routes, at the server root.
pub fn ui_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/get-artifact", get(get_artifact)),
        (
            "/model-versions/get-artifact",
            get(get_model_version_artifact),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------------------
// Extractors.
// ---------------------------------------------------------------------------------------------------------

/// The served artifact store. Without one, the request is refused the way MLflow refuses it under
/// `--no-serve-artifacts`: 503 with a plain-text message naming the route.
struct ServedArtifacts(Arc<dyn ArtifactStore>);

impl FromRequestParts<AppState> for ServedArtifacts {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match &state.artifacts {
            Some(store) => Ok(Self(Arc::clone(store))),
            None => {
                let route = parts
                    .extensions
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str)
                    .unwrap_or("");
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
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
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
            .map_err(|_| {
                ApiError::invalid_parameter(ferroflow_core::artifact_path::INVALID_PATH_MESSAGE)
            })?;
        let path = ArtifactPath::parse(&raw)?;
        Ok(Self {
            path,
            has_trailing_slash: raw.ends_with('/'),
        })
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
    ArtifactPathParam {
        path,
        has_trailing_slash,
    }: ArtifactPathParam,
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
        .map(|entry| FileInfo {
            path: entry.name,
            is_dir: entry.is_dir,
            file_size: file_size(entry.size),
        })
        .collect();
    Ok(Json(ListArtifactsResponse {
        root_uri: None,
        files,
        next_page_token: None,
    }))
}

#[derive(Debug, Default, Deserialize)]
struct CreateMultipartUpload {
    /// The client's local file; its basename names the object.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    path: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    num_parts: Option<i64>,
}

#[derive(Debug, Serialize)]
struct CreateMultipartUploadResponse {
    upload_id: String,
    credentials: Vec<MultipartUploadCredential>,
}

#[derive(Debug, Serialize)]
struct MultipartUploadCredential {
    url: String,
    part_number: i64,
    /// Omitted when empty, as protobuf's JSON writer does.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct CompleteMultipartUpload {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    path: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    upload_id: Option<String>,
    #[serde(default)]
    parts: Option<Vec<MultipartUploadPart>>,
}

#[derive(Debug, Default, Deserialize)]
struct MultipartUploadPart {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    part_number: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    etag: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AbortMultipartUpload {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    path: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    upload_id: Option<String>,
}

/// The served store's multipart uploads, or MLflow's NOT_IMPLEMENTED answer.
fn multipart_uploads(store: &dyn ArtifactStore) -> Result<&dyn MultipartUploads, Error> {
    store
        .multipart_uploads()
        .ok_or_else(|| Error::not_implemented(MULTIPART_UPLOAD_UNSUPPORTED))
}

/// MLflow's object of a multipart upload: `<directory>/<basename of the client's local file>`.
fn multipart_target(
    directory: &ArtifactPath,
    local_file: Option<String>,
) -> Result<ArtifactPath, Error> {
    let local_file = local_file
        .filter(|local_file| !local_file.is_empty())
        .ok_or_else(|| Error::missing_parameter("path"))?;
    let file_name = ArtifactPath::parse(local_file.rsplit('/').next().unwrap_or_default())?;
    if file_name.is_root() {
        return Err(Error::invalid_parameter(FILENAME_REQUIRED));
    }
    Ok(directory.join(&file_name))
}

/// `POST /mlflow-artifacts/mpu/create/<dir>` `{path, num_parts}`: starts the upload and answers
/// `{upload_id, credentials: [{url, part_number, headers}]}`, one presigned URL per part.
async fn create_multipart_upload(
    ServedArtifacts(store): ServedArtifacts,
    ArtifactPathParam { path, .. }: ArtifactPathParam,
    MlflowRequest(request): MlflowRequest<CreateMultipartUpload>,
) -> ApiResult<Json<CreateMultipartUploadResponse>> {
    let target = multipart_target(&path, request.path)?;
    let uploads = multipart_uploads(store.as_ref())?;
    let num_parts = u32::try_from(request.num_parts.unwrap_or(0)).unwrap_or(0);
    let created = uploads.create_multipart_upload(&target, num_parts).await?;
    let credentials = created
        .credentials
        .into_iter()
        .map(|credential| MultipartUploadCredential {
            url: credential.url,
            part_number: i64::from(credential.part_number),
            headers: credential.headers.into_iter().collect(),
        })
        .collect();
    Ok(Json(CreateMultipartUploadResponse {
        upload_id: created.upload_id,
        credentials,
    }))
}

/// `POST /mlflow-artifacts/mpu/complete/<dir>` `{path, upload_id, parts: [{part_number, etag}]}`: joins
/// the parts into the object. `{}`.
async fn complete_multipart_upload(
    ServedArtifacts(store): ServedArtifacts,
    ArtifactPathParam { path, .. }: ArtifactPathParam,
    MlflowRequest(request): MlflowRequest<CompleteMultipartUpload>,
) -> ApiResult<Json<Empty>> {
    let target = multipart_target(&path, request.path)?;
    let parts = request
        .parts
        .filter(|parts| !parts.is_empty())
        .ok_or_else(|| Error::missing_parameter("parts"))?;
    let uploads = multipart_uploads(store.as_ref())?;
    let upload_id = required_upload_id(request.upload_id)?;
    let parts = parts
        .into_iter()
        .map(|part| {
            let part_number = part
                .part_number
                .and_then(|number| u32::try_from(number).ok())
                .ok_or_else(|| {
                    Error::invalid_parameter("each part needs a positive part_number")
                })?;
            Ok(UploadedPart {
                part_number,
                etag: part.etag.unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    uploads
        .complete_multipart_upload(&target, &upload_id, parts)
        .await?;
    Ok(Json(Empty {}))
}

/// `POST /mlflow-artifacts/mpu/abort/<dir>` `{path, upload_id}`: cancels the upload. `{}`.
async fn abort_multipart_upload(
    ServedArtifacts(store): ServedArtifacts,
    ArtifactPathParam { path, .. }: ArtifactPathParam,
    MlflowRequest(request): MlflowRequest<AbortMultipartUpload>,
) -> ApiResult<Json<Empty>> {
    let target = multipart_target(&path, request.path)?;
    let uploads = multipart_uploads(store.as_ref())?;
    let upload_id = required_upload_id(request.upload_id)?;
    uploads.abort_multipart_upload(&target, &upload_id).await?;
    Ok(Json(Empty {}))
}

fn required_upload_id(upload_id: Option<String>) -> Result<String, Error> {
    upload_id
        .filter(|upload_id| !upload_id.is_empty())
        .ok_or_else(|| Error::missing_parameter("upload_id"))
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
    let entries = store
        .list(&run_root.join(&relative))
        .await?
        .unwrap_or_default();
    let files = entries
        .into_iter()
        .map(|entry| FileInfo {
            path: if relative.is_root() {
                entry.name
            } else {
                format!("{relative}/{}", entry.name)
            },
            is_dir: entry.is_dir,
            file_size: file_size(entry.size),
        })
        .collect();
    Ok(Json(ListArtifactsResponse {
        root_uri: Some(artifact_uri),
        files,
        next_page_token: None,
    }))
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
    let raw_path = request
        .path
        .ok_or_else(|| Error::missing_parameter("path"))?;
    let relative = ArtifactPath::parse(&raw_path)?;
    let artifact_uri = run_artifact_uri(&state, &run_id).await?;
    let (store, run_root) = open_run_artifact_root(&state, &artifact_uri).await?;
    let download = store.get(&run_root.join(&relative)).await?;
    Ok(attachment_response(&relative, download))
}

#[derive(Debug, Default, Deserialize)]
struct GetModelVersionArtifact {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    path: Option<String>,
}

/// `GET /model-versions/get-artifact?name=&version=&path=`: one file of a registered model version (from
/// its download URI: the run's or the logged model's artifacts), for the UI.
async fn get_model_version_artifact(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<GetModelVersionArtifact>,
) -> ApiResult<Response> {
    let raw_path = request
        .path
        .ok_or_else(|| Error::missing_parameter("path"))?;
    let relative = ArtifactPath::parse(&raw_path)?;
    let artifact_uri = state
        .registry
        .get_model_version_download_uri(ModelVersionKey {
            name: request.name,
            version: request.version,
        })
        .await?
        .artifact_uri;
    let (store, root) = open_run_artifact_root(&state, &artifact_uri).await?;
    let download = store.get(&root.join(&relative)).await?;
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
            let relative = run_directory
                .strip_prefix(&default_root)
                .map_err(|_| unreadable_location(artifact_uri))?;
            let root = relative_artifact_path(relative)?;
            let store = LocalArtifactStore::new(default_root).await?;
            Ok((Arc::new(store), root))
        }
        RunArtifactLocation::Cloud => {
            let store = state
                .default_root_artifacts
                .as_ref()
                .ok_or_else(|| unreadable_location(artifact_uri))?;
            let default_root = ArtifactLocation::parse(&state.config.default_artifact_root)
                .map_err(|_| unreadable_location(artifact_uri))?;
            let relative = default_root
                .relative_path_of(artifact_uri)?
                .ok_or_else(|| unreadable_location(artifact_uri))?;
            Ok((Arc::clone(store), ArtifactPath::parse(&relative)?))
        }
        RunArtifactLocation::Unsupported => Err(unreadable_location(artifact_uri)),
    }
}

fn unreadable_location(artifact_uri: &str) -> Error {
    Error::not_implemented(format!(
        "this server cannot read artifacts at '{artifact_uri}'"
    ))
}

// ---------------------------------------------------------------------------------------------------------
// Responses.
// ---------------------------------------------------------------------------------------------------------

fn parse_optional_path(raw: Option<&str>) -> Result<ArtifactPath, Error> {
    raw.map_or_else(|| Ok(ArtifactPath::root()), ArtifactPath::parse)
}

/// MLflow's `FileInfo.to_proto` sets `file_size` only when it is truthy, so an empty file has none.
fn file_size(size: Option<u64>) -> Option<i64> {
    size.filter(|size| *size > 0)
        .and_then(|size| i64::try_from(size).ok())
}

/// A download as MLflow sends it: always an attachment, with a guessed type and `nosniff`, so a browser
/// never renders an artifact on the server's origin.
fn attachment_response(path: &ArtifactPath, download: ArtifactDownload) -> Response {
    let file_name = path.file_name().unwrap_or("download");
    let mut response = Response::new(Body::from_stream(download.stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(guess_mime_type(file_name)),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(download.size));
    let disposition = HeaderValue::from_str(&content_disposition(file_name))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
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
    mime_guess::from_path(file_name)
        .first_raw()
        .unwrap_or("application/octet-stream")
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
    let fallback: String = file_name
        .chars()
        .filter(|character| character.is_ascii() && !character.is_ascii_control())
        .collect();
    let fallback = if fallback.is_empty() {
        "download".to_owned()
    } else {
        fallback
    };
    let encoded = percent_encoding::utf8_percent_encode(file_name, FILENAME_STAR_ENCODE);
    format!(
        "attachment; filename={}; filename*=UTF-8''{encoded}",
        quote_header_value(&fallback)
    )
}

fn quote_header_value(value: &str) -> String {
    if !value.is_empty() && value.chars().all(is_token_character) {
        return value.to_owned();
    }
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ServerConfig;
    use axum::http::{HeaderMap, Method, Request};
    use ferroflow_core::model::NewRun;
    use ferroflow_core::store::TrackingStore;
    use http_body_util::BodyExt;
    use serde_json::{json, Value};
    use std::path::{Path as FsPath, PathBuf};
    use tower::ServiceExt;

    const RUN_ID: &str = "0123456789abcdef0123456789abcdef";
    const PROXIED: &str = "/api/2.0/mlflow-artifacts/artifacts";

    /// A server over a temporary directory: `artifacts/` is the served root, `outside/secret.txt` sits
    /// beside it and must never be reached, `mlflow.db` holds the runs.
    struct Harness {
        directory: tempfile::TempDir,
        app: Router,
    }

    struct Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: bytes::Bytes,
    }

    impl Answer {
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap_or_else(|error| {
                panic!(
                    "not JSON ({error}): {:?}",
                    String::from_utf8_lossy(&self.body)
                )
            })
        }

        fn header(&self, name: header::HeaderName) -> &str {
            self.headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
        }

        fn assert_error(&self, status: StatusCode, error_code: &str) {
            assert_eq!(
                self.status,
                status,
                "body {:?}",
                String::from_utf8_lossy(&self.body)
            );
            assert_eq!(self.json()["error_code"], error_code);
            assert_eq!(self.header(header::CONTENT_TYPE), "application/json");
        }
    }

    enum Serving {
        /// The proxied API is on, rooted at `artifacts/`.
        Served,
        /// `--no-serve-artifacts` with `--default-artifact-root file://<dir>/mlruns`.
        NotServed,
        /// `--no-serve-artifacts` with `--default-artifact-root s3://bucket/root`, opened as this store.
        CloudRoot(Arc<dyn ArtifactStore>),
    }

    async fn harness(
        serving: Serving,
        run_artifact_uri: impl FnOnce(&FsPath) -> String,
    ) -> Harness {
        let directory = tempfile::tempdir().unwrap();
        let base = directory.path().canonicalize().unwrap();
        std::fs::create_dir(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/secret.txt"), b"secret").unwrap();
        let (artifacts, default_artifact_root): (Option<Arc<dyn ArtifactStore>>, String) =
            match serving {
                Serving::Served => {
                    let store = LocalArtifactStore::new(base.join("artifacts"))
                        .await
                        .unwrap();
                    (Some(Arc::new(store)), "mlflow-artifacts:".to_owned())
                }
                Serving::NotServed | Serving::CloudRoot(_) => {
                    (None, format!("file://{}", base.join("mlruns").display()))
                }
            };
        let (default_artifact_root, cloud_root) = match serving {
            Serving::CloudRoot(store) => ("s3://bucket/root".to_owned(), Some(store)),
            _ => (default_artifact_root, None),
        };
        let tracking =
            ferroflow_store::SqliteStore::open(&base.join("mlflow.db"), &default_artifact_root)
                .await
                .unwrap();
        tracking
            .create_run(NewRun {
                run_id: RUN_ID.to_owned(),
                experiment_id: "0".to_owned(),
                run_name: "run".to_owned(),
                user_id: "tester".to_owned(),
                start_time: 1,
                artifact_uri: run_artifact_uri(&base),
                tags: vec![],
            })
            .await
            .unwrap();
        let config = ServerConfig {
            serve_artifacts: artifacts.is_some(),
            default_artifact_root,
        };
        let mut state = AppState::new(Arc::new(tracking), artifacts, config, None);
        if let Some(store) = cloud_root {
            state = state.with_default_root_artifacts(store);
        }
        Harness {
            directory,
            app: router().with_state(state),
        }
    }

    async fn served() -> Harness {
        harness(Serving::Served, |_| {
            format!("mlflow-artifacts:/0/{RUN_ID}/artifacts")
        })
        .await
    }

    impl Harness {
        fn base(&self) -> PathBuf {
            self.directory.path().canonicalize().unwrap()
        }

        async fn send(&self, method: Method, uri: &str, body: impl Into<Body>) -> Answer {
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .body(body.into())
                .unwrap();
            let response = self.app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            Answer {
                status,
                headers,
                body,
            }
        }

        async fn get(&self, uri: &str) -> Answer {
            self.send(Method::GET, uri, Body::empty()).await
        }

        async fn post_json(&self, uri: &str, body: Value) -> Answer {
            let request = Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            let response = self.app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            Answer {
                status,
                headers,
                body,
            }
        }

        async fn put(&self, uri: &str, content: &'static [u8]) -> Answer {
            self.send(Method::PUT, uri, content).await
        }

        /// Every file and directory under the temporary directory, except the database's files.
        fn tree(&self) -> Vec<String> {
            fn walk(directory: &FsPath, prefix: &str, into: &mut Vec<String>) {
                for entry in std::fs::read_dir(directory).unwrap() {
                    let entry = entry.unwrap();
                    let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                    if name.starts_with("mlflow.db") {
                        continue;
                    }
                    into.push(name.clone());
                    if entry.file_type().unwrap().is_dir() {
                        walk(&entry.path(), &format!("{name}/"), into);
                    }
                }
            }
            let mut names = Vec::new();
            walk(&self.base(), "", &mut names);
            names.sort();
            names
        }

        fn assert_outside_untouched(&self) {
            assert_eq!(
                std::fs::read(self.base().join("outside/secret.txt")).unwrap(),
                b"secret"
            );
            let outside: Vec<String> = self
                .tree()
                .into_iter()
                .filter(|name| name.starts_with("outside"))
                .collect();
            assert_eq!(outside, ["outside", "outside/secret.txt"]);
        }
    }

    #[tokio::test]
    async fn upload_then_download_round_trips_on_both_prefixes() {
        let harness = served().await;
        for prefix in ["/api/2.0", "/ajax-api/2.0"] {
            let uri = format!("{prefix}/mlflow-artifacts/artifacts/0/{RUN_ID}/artifacts/dir/a.txt");
            let upload = harness.put(&uri, b"hello").await;
            assert_eq!(upload.status, StatusCode::OK);
            assert!(
                upload.body.is_empty(),
                "MLflow answers an upload with an empty body"
            );

            let download = harness.get(&uri).await;
            assert_eq!(download.status, StatusCode::OK);
            assert_eq!(&download.body[..], b"hello");
            assert_eq!(download.header(header::CONTENT_TYPE), "text/plain");
            assert_eq!(download.header(header::CONTENT_LENGTH), "5");
            assert_eq!(
                download.header(header::CONTENT_DISPOSITION),
                "attachment; filename=a.txt"
            );
            assert_eq!(download.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        }
        let on_disk = harness
            .base()
            .join(format!("artifacts/0/{RUN_ID}/artifacts/dir/a.txt"));
        assert_eq!(std::fs::read(on_disk).unwrap(), b"hello");
    }

    #[tokio::test]
    async fn upload_overwrites_and_decodes_the_path_once() {
        let harness = served().await;
        assert_eq!(
            harness
                .put(&format!("{PROXIED}/d/a%20b.bin"), b"one")
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            harness
                .put(&format!("{PROXIED}/d/a%20b.bin"), b"two")
                .await
                .status,
            StatusCode::OK
        );
        let download = harness.get(&format!("{PROXIED}/d/a%20b.bin")).await;
        assert_eq!(&download.body[..], b"two");
        assert_eq!(
            download.header(header::CONTENT_TYPE),
            "application/octet-stream"
        );
        assert_eq!(
            download.header(header::CONTENT_DISPOSITION),
            "attachment; filename=\"a b.bin\""
        );
        assert_eq!(
            std::fs::read(harness.base().join("artifacts/d/a b.bin")).unwrap(),
            b"two"
        );
    }

    #[tokio::test]
    async fn download_of_a_missing_file_is_404() {
        let harness = served().await;
        let answer = harness
            .get(&format!("{PROXIED}/0/{RUN_ID}/artifacts/model"))
            .await;
        answer.assert_error(StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
        assert_eq!(
            answer.json()["message"],
            format!("No such artifact: '0/{RUN_ID}/artifacts/model'")
        );
    }

    #[tokio::test]
    async fn download_of_a_directory_is_400() {
        let harness = served().await;
        harness.put(&format!("{PROXIED}/model/MLmodel"), b"m").await;
        let answer = harness.get(&format!("{PROXIED}/model")).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
        assert_eq!(
            answer.json()["message"],
            "Artifact path refers to a directory, not a file: 'model'"
        );
    }

    #[tokio::test]
    async fn upload_needs_a_file_name() {
        let harness = served().await;
        let answer = harness.put(&format!("{PROXIED}/dir/"), b"x").await;
        answer.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
        assert_eq!(answer.json()["message"], FILENAME_REQUIRED);
        assert_eq!(
            harness.tree(),
            ["artifacts", "outside", "outside/secret.txt"]
        );
    }

    #[tokio::test]
    async fn listing_gives_basenames_and_empty_for_files_or_missing_directories() {
        let harness = served().await;
        let run_root = format!("0/{RUN_ID}/artifacts");
        harness
            .put(&format!("{PROXIED}/{run_root}/model/MLmodel"), b"12345")
            .await;
        harness
            .put(&format!("{PROXIED}/{run_root}/a.txt"), b"a")
            .await;

        let listing = harness.get(&format!("{PROXIED}?path={run_root}")).await;
        assert_eq!(listing.status, StatusCode::OK);
        assert_eq!(
            listing.json(),
            json!({"files": [
                {"path": "a.txt", "is_dir": false, "file_size": 1},
                {"path": "model", "is_dir": true},
            ]})
        );
        let nested = harness
            .get(&format!(
                "/ajax-api/2.0/mlflow-artifacts/artifacts?path={run_root}/model"
            ))
            .await;
        assert_eq!(
            nested.json(),
            json!({"files": [{"path": "MLmodel", "is_dir": false, "file_size": 5}]})
        );
        let root = harness.get(PROXIED).await;
        assert_eq!(
            root.json(),
            json!({"files": [{"path": "0", "is_dir": true}]})
        );
        let empty_path = harness.get(&format!("{PROXIED}?path=")).await;
        assert_eq!(empty_path.json(), root.json());
        for shape in [
            format!("{run_root}/a.txt"),
            format!("{run_root}/missing"),
            format!("{run_root}/model/"),
        ] {
            let answer = harness.get(&format!("{PROXIED}?path={shape}")).await;
            assert_eq!(answer.status, StatusCode::OK, "{shape}");
            if shape.ends_with('/') {
                assert_eq!(answer.json()["files"][0]["path"], "MLmodel");
            } else {
                assert_eq!(answer.json(), json!({}), "{shape}");
            }
        }
    }

    #[tokio::test]
    async fn delete_removes_files_and_directories() {
        let harness = served().await;
        harness
            .put(&format!("{PROXIED}/d/model/MLmodel"), b"m")
            .await;
        harness.put(&format!("{PROXIED}/d/keep.txt"), b"k").await;
        let answer = harness
            .send(Method::DELETE, &format!("{PROXIED}/d/model"), Body::empty())
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.json(), json!({}));
        let missing = harness
            .send(Method::DELETE, &format!("{PROXIED}/d/never"), Body::empty())
            .await;
        assert_eq!(missing.status, StatusCode::OK);
        assert_eq!(
            harness.tree(),
            [
                "artifacts",
                "artifacts/d",
                "artifacts/d/keep.txt",
                "outside",
                "outside/secret.txt"
            ]
        );
    }

    /// Security cases 1-5: each shape, on each proxied route, is refused with 400 and touches nothing.
    #[tokio::test]
    async fn traversal_attempts_are_refused_everywhere() {
        let harness = served().await;
        let attacks = [
            "../outside/secret.txt",
            "a/../../outside/secret.txt",
            "..%2Foutside%2Fsecret.txt",
            "%2e%2e/outside/secret.txt",
            "%2E%2E%2Foutside%2Fsecret.txt",
            "%2e%2e%2foutside%2fsecret.txt",
            "%252e%252e%252foutside%252fsecret.txt",
            "%252E%252E/outside/secret.txt",
            "..%252foutside",
            "/%2e%2e/outside/secret.txt",
            "%2F..%2Foutside%2Fsecret.txt",
            "/etc/passwd",
            "%2Fetc%2Fpasswd",
            "C:%5CWindows%5Cwin.ini",
            "C:/Windows/win.ini",
            "..%5Coutside%5Csecret.txt",
            "%5C..%5C..%5Coutside",
            "dir/%5c..%5c..%5csecret",
            "file:%2F%2F%2Fetc%2Fpasswd",
            "a%00b.txt",
            "nul%00/../x",
            "dir%23/../../outside",
            "a/./b",
            "a//b",
            "%FF%FE",
        ];
        for attack in attacks {
            for prefix in [
                "/api/2.0/mlflow-artifacts/artifacts",
                "/ajax-api/2.0/mlflow-artifacts/artifacts",
            ] {
                let uri = format!("{prefix}/{attack}");
                for method in [Method::GET, Method::PUT, Method::DELETE] {
                    let answer = harness
                        .send(method.clone(), &uri, Body::from("pwned"))
                        .await;
                    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{method} {uri}");
                    assert_eq!(
                        answer.json()["error_code"],
                        "INVALID_PARAMETER_VALUE",
                        "{method} {uri}"
                    );
                    assert_eq!(answer.json()["message"], "Invalid path", "{method} {uri}");
                }
            }
            for route in ["mpu/create", "mpu/complete", "mpu/abort"] {
                let uri = format!("/api/2.0/mlflow-artifacts/{route}/{attack}");
                let answer = harness.send(Method::POST, &uri, Body::from("{}")).await;
                answer.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
            }
            let presigned = harness
                .get(&format!("/api/2.0/mlflow-artifacts/presigned/{attack}"))
                .await;
            presigned.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
        }
        assert_eq!(
            harness.tree(),
            ["artifacts", "outside", "outside/secret.txt"]
        );
    }

    #[tokio::test]
    async fn traversal_in_list_queries_is_refused() {
        let harness = served().await;
        for attack in [
            "..",
            "../outside",
            "%2e%2e",
            "%252e%252e%252f",
            "/etc",
            "..%5Coutside",
            "a%2500",
            "C:%5C",
        ] {
            let answer = harness.get(&format!("{PROXIED}?path={attack}")).await;
            answer.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
            let answer = harness
                .get(&format!(
                    "/api/2.0/mlflow/artifacts/list?run_id={RUN_ID}&path={attack}"
                ))
                .await;
            answer.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
            let answer = harness
                .get(&format!("/get-artifact?run_uuid={RUN_ID}&path={attack}"))
                .await;
            answer.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
        }
        harness.assert_outside_untouched();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlinks_out_of_the_root_are_refused() {
        let harness = served().await;
        std::os::unix::fs::symlink(
            harness.base().join("outside"),
            harness.base().join("artifacts/link"),
        )
        .unwrap();
        let download = harness.get(&format!("{PROXIED}/link/secret.txt")).await;
        download.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
        let upload = harness
            .put(&format!("{PROXIED}/link/planted.txt"), b"x")
            .await;
        upload.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
        let delete = harness
            .send(
                Method::DELETE,
                &format!("{PROXIED}/link/secret.txt"),
                Body::empty(),
            )
            .await;
        delete.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
        let listing = harness.get(&format!("{PROXIED}?path=link")).await;
        listing.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
        harness.assert_outside_untouched();
    }

    #[tokio::test]
    async fn multipart_and_presigned_are_not_implemented() {
        let harness = served().await;
        let request = json!({
            "path": "/home/user/big.bin",
            "num_parts": 2,
            "upload_id": "id",
            "parts": [{"part_number": 1, "etag": "e1"}, {"part_number": 2, "etag": "e2"}],
        });
        for route in ["mpu/create", "mpu/complete", "mpu/abort"] {
            let uri = format!("/api/2.0/mlflow-artifacts/{route}/0/{RUN_ID}/artifacts");
            let answer = harness.post_json(&uri, request.clone()).await;
            answer.assert_error(StatusCode::NOT_IMPLEMENTED, "NOT_IMPLEMENTED");
            assert_eq!(answer.json()["message"], MULTIPART_UPLOAD_UNSUPPORTED);
        }
        let answer = harness
            .get("/ajax-api/2.0/mlflow-artifacts/presigned/a.bin")
            .await;
        answer.assert_error(StatusCode::NOT_IMPLEMENTED, "NOT_IMPLEMENTED");
        assert_eq!(answer.json()["message"], MULTIPART_DOWNLOAD_UNSUPPORTED);
    }

    #[tokio::test]
    async fn multipart_requests_need_their_fields() {
        let harness = served().await;
        let uri = format!("/api/2.0/mlflow-artifacts/mpu/complete/0/{RUN_ID}/artifacts");
        for (body, message) in [
            (
                json!({"upload_id": "id", "parts": [{"part_number": 1}]}),
                "'path'",
            ),
            (json!({"path": "/tmp/a.bin", "upload_id": "id"}), "'parts'"),
            (json!({"path": "/tmp/a.bin", "parts": []}), "'parts'"),
        ] {
            let answer = harness.post_json(&uri, body).await;
            answer.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
            let text = answer.json()["message"].as_str().unwrap_or("").to_owned();
            assert!(text.contains(message), "{text}");
        }
    }

    #[test]
    fn multipart_targets_follow_mlflow() {
        let directory = ArtifactPath::parse("0/run/artifacts/model").unwrap();
        let target = |local: &str| {
            multipart_target(&directory, Some(local.to_owned()))
                .map(|path| path.to_string())
                .map_err(|error| error.code)
        };
        assert_eq!(
            target("/home/me/weights.bin"),
            Ok("0/run/artifacts/model/weights.bin".to_owned())
        );
        assert_eq!(
            target("weights.bin"),
            Ok("0/run/artifacts/model/weights.bin".to_owned())
        );
        for bad in ["/home/me/", "/home/me/..", "C:\\x\\weights.bin", ""] {
            assert_eq!(
                target(bad),
                Err(ferroflow_proto::ErrorCode::InvalidParameterValue),
                "{bad:?}"
            );
        }
    }

    /// `--no-serve-artifacts` with an `s3://` default root: runs under it are listed and read through
    /// the server's store; runs elsewhere are not.
    #[tokio::test]
    async fn cloud_run_roots_are_read_under_the_default_root() {
        let memory: Arc<dyn object_store::ObjectStore> =
            Arc::new(object_store::memory::InMemory::new());
        let store: Arc<dyn ArtifactStore> =
            Arc::new(ferroflow_artifacts::ObjectStoreArtifactStore::new(
                memory,
                object_store::path::Path::from("root"),
            ));
        let file = ArtifactPath::parse(&format!("0/{RUN_ID}/artifacts/model/MLmodel")).unwrap();
        let content = futures::stream::iter([Ok(bytes::Bytes::from_static(b"flavors: {}"))]);
        store.put(&file, Box::pin(content)).await.unwrap();

        let under_root = harness(Serving::CloudRoot(Arc::clone(&store)), |_| {
            format!("s3://bucket/root/0/{RUN_ID}/artifacts")
        })
        .await;
        let listing = under_root
            .get(&format!(
                "/api/2.0/mlflow/artifacts/list?run_id={RUN_ID}&path=model"
            ))
            .await;
        assert_eq!(listing.status, StatusCode::OK, "{:?}", listing.json());
        assert_eq!(
            listing.json(),
            json!({
                "root_uri": format!("s3://bucket/root/0/{RUN_ID}/artifacts"),
                "files": [{"path": "model/MLmodel", "is_dir": false, "file_size": 11}],
            })
        );
        let download = under_root
            .get(&format!(
                "/get-artifact?path=model/MLmodel&run_uuid={RUN_ID}"
            ))
            .await;
        assert_eq!(download.status, StatusCode::OK);
        assert_eq!(&download.body[..], b"flavors: {}");

        for (artifact_uri, status) in [
            (
                "s3://bucket/elsewhere/0/run/artifacts",
                StatusCode::NOT_IMPLEMENTED,
            ),
            (
                "s3://other-bucket/root/0/run/artifacts",
                StatusCode::NOT_IMPLEMENTED,
            ),
            ("s3://bucket/root/../elsewhere", StatusCode::BAD_REQUEST),
        ] {
            let elsewhere = harness(Serving::CloudRoot(Arc::clone(&store)), |_| {
                artifact_uri.to_owned()
            })
            .await;
            let listing = elsewhere
                .get(&format!("/api/2.0/mlflow/artifacts/list?run_id={RUN_ID}"))
                .await;
            assert_eq!(
                listing.status,
                status,
                "{artifact_uri}: {:?}",
                listing.json()
            );
        }
    }

    #[tokio::test]
    async fn proxied_routes_answer_503_text_when_artifacts_are_not_served() {
        let harness = harness(Serving::NotServed, |_| {
            "s3://bucket/0/run/artifacts".to_owned()
        })
        .await;
        let requests = [
            (Method::GET, format!("{PROXIED}/a.txt")),
            (Method::PUT, format!("{PROXIED}/a.txt")),
            (Method::DELETE, format!("{PROXIED}/a.txt")),
            (Method::GET, format!("{PROXIED}?path=a")),
            (Method::GET, format!("{PROXIED}/../traversal/still/503")),
            (
                Method::POST,
                "/api/2.0/mlflow-artifacts/mpu/create/a.txt".to_owned(),
            ),
            (
                Method::GET,
                "/ajax-api/2.0/mlflow-artifacts/presigned/a.txt".to_owned(),
            ),
        ];
        for (method, uri) in requests {
            let answer = harness.send(method.clone(), &uri, Body::from("x")).await;
            assert_eq!(
                answer.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{method} {uri}"
            );
            assert_eq!(
                answer.header(header::CONTENT_TYPE),
                "text/plain; charset=utf-8"
            );
            let text = String::from_utf8(answer.body.to_vec()).unwrap();
            assert!(text.contains("--no-serve-artifacts"), "{text}");
            assert!(
                !text.contains("traversal"),
                "the request path is never echoed: {text}"
            );
        }
        let text = harness.get(&format!("{PROXIED}/a.txt")).await.body;
        assert_eq!(
            String::from_utf8_lossy(&text),
            "Endpoint: /api/2.0/mlflow-artifacts/artifacts/<path:artifact_path> disabled due to the mlflow \
             server running with `--no-serve-artifacts`. To enable artifacts server functionality, run \
             `mlflow server` with `--serve-artifacts`"
        );
    }

    #[tokio::test]
    async fn tracking_listing_gives_run_relative_paths() {
        let harness = served().await;
        let run_root = format!("{PROXIED}/0/{RUN_ID}/artifacts");
        harness
            .put(&format!("{run_root}/model/MLmodel"), b"12345")
            .await;
        harness
            .put(&format!("{run_root}/model/sub/x.bin"), b"xy")
            .await;
        harness.put(&format!("{run_root}/a.txt"), b"a").await;
        let root_uri = format!("mlflow-artifacts:/0/{RUN_ID}/artifacts");

        let top = harness
            .get(&format!("/api/2.0/mlflow/artifacts/list?run_id={RUN_ID}"))
            .await;
        assert_eq!(top.status, StatusCode::OK);
        assert_eq!(
            top.json(),
            json!({"root_uri": root_uri, "files": [
                {"path": "a.txt", "is_dir": false, "file_size": 1},
                {"path": "model", "is_dir": true},
            ]})
        );
        let nested = harness
            .get(&format!(
                "/ajax-api/2.0/mlflow/artifacts/list?run_uuid={RUN_ID}&path=model"
            ))
            .await;
        assert_eq!(
            nested.json(),
            json!({"root_uri": root_uri, "files": [
                {"path": "model/MLmodel", "is_dir": false, "file_size": 5},
                {"path": "model/sub", "is_dir": true},
            ]})
        );
        let file = harness
            .get(&format!(
                "/api/2.0/mlflow/artifacts/list?run_id={RUN_ID}&path=a.txt"
            ))
            .await;
        assert_eq!(file.json(), json!({"root_uri": root_uri}));
        let token = harness
            .get(&format!(
                "/api/2.0/mlflow/artifacts/list?run_id={RUN_ID}&page_token=abc"
            ))
            .await;
        assert_eq!(
            token.json(),
            top.json(),
            "a page token is ignored: there is one page"
        );
    }

    #[tokio::test]
    async fn tracking_listing_errors() {
        let harness = served().await;
        let missing_run = harness
            .get("/api/2.0/mlflow/artifacts/list?run_id=ffffffffffffffffffffffffffffffff")
            .await;
        missing_run.assert_error(StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
        assert_eq!(
            missing_run.json()["message"],
            "Run with id=ffffffffffffffffffffffffffffffff not found"
        );
        let no_run_id = harness.get("/api/2.0/mlflow/artifacts/list?path=a").await;
        no_run_id.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
        assert_eq!(
            no_run_id.json()["message"],
            "Missing value for required parameter 'run_id'. See the API docs for more information about request parameters."
        );
    }

    #[tokio::test]
    async fn get_artifact_downloads_a_run_file() {
        let harness = served().await;
        harness
            .put(
                &format!("{PROXIED}/0/{RUN_ID}/artifacts/model/MLmodel"),
                b"flavors: {}",
            )
            .await;
        let answer = harness
            .get(&format!(
                "/get-artifact?path=model/MLmodel&run_uuid={RUN_ID}"
            ))
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(&answer.body[..], b"flavors: {}");
        assert_eq!(answer.header(header::CONTENT_TYPE), "text/plain");
        assert_eq!(
            answer.header(header::CONTENT_DISPOSITION),
            "attachment; filename=MLmodel"
        );
        assert_eq!(answer.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");

        let missing = harness
            .get(&format!("/get-artifact?path=nope.txt&run_id={RUN_ID}"))
            .await;
        missing.assert_error(StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
        let no_path = harness.get(&format!("/get-artifact?run_id={RUN_ID}")).await;
        no_path.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    }

    #[tokio::test]
    async fn local_run_roots_under_the_default_root_are_read_without_serving() {
        let harness = harness(Serving::NotServed, |base| {
            format!("file://{}/mlruns/0/{RUN_ID}/artifacts", base.display())
        })
        .await;
        let run_directory = harness.base().join(format!("mlruns/0/{RUN_ID}/artifacts"));
        std::fs::create_dir_all(run_directory.join("model")).unwrap();
        std::fs::write(run_directory.join("model/MLmodel"), b"m").unwrap();

        let listing = harness
            .get(&format!("/api/2.0/mlflow/artifacts/list?run_id={RUN_ID}"))
            .await;
        assert_eq!(listing.status, StatusCode::OK, "{:?}", listing.json());
        assert_eq!(
            listing.json()["files"],
            json!([{"path": "model", "is_dir": true}])
        );
        let download = harness
            .get(&format!("/get-artifact?path=model/MLmodel&run_id={RUN_ID}"))
            .await;
        assert_eq!(&download.body[..], b"m");
    }

    #[tokio::test]
    async fn run_roots_that_leave_the_default_root_are_not_read() {
        let cases: [(RunArtifactUri, StatusCode); 4] = [
            (
                |base| format!("{}/outside", base.display()),
                StatusCode::NOT_IMPLEMENTED,
            ),
            (
                |base| format!("file://{}/mlruns/../outside", base.display()),
                StatusCode::BAD_REQUEST,
            ),
            (
                |_| "s3://bucket/0/run/artifacts".to_owned(),
                StatusCode::NOT_IMPLEMENTED,
            ),
            (
                |_| "file://evil-host/etc".to_owned(),
                StatusCode::NOT_IMPLEMENTED,
            ),
        ];
        for (artifact_uri, status) in cases {
            let harness = harness(Serving::NotServed, artifact_uri).await;
            let listing = harness
                .get(&format!("/api/2.0/mlflow/artifacts/list?run_id={RUN_ID}"))
                .await;
            assert_eq!(listing.status, status, "{:?}", listing.json());
            let download = harness
                .get(&format!("/get-artifact?path=secret.txt&run_id={RUN_ID}"))
                .await;
            assert_eq!(download.status, status, "{:?}", download.json());
            harness.assert_outside_untouched();
        }
    }

    #[tokio::test]
    async fn proxied_run_roots_with_traversal_are_refused() {
        let harness = harness(Serving::Served, |_| {
            "mlflow-artifacts:/../outside".to_owned()
        })
        .await;
        let listing = harness
            .get(&format!("/api/2.0/mlflow/artifacts/list?run_id={RUN_ID}"))
            .await;
        listing.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
        let download = harness
            .get(&format!("/get-artifact?path=secret.txt&run_id={RUN_ID}"))
            .await;
        download.assert_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    }

    /// Builds a run's `artifact_uri` from the temporary directory.
    type RunArtifactUri = fn(&FsPath) -> String;

    #[test]
    fn mime_types_follow_mlflow() {
        for (name, expected) in [
            ("a.txt", "text/plain"),
            ("data.json", "text/plain"),
            ("conda.yaml", "text/plain"),
            ("MLmodel", "text/plain"),
            ("MLproject", "text/plain"),
            ("image.png", "image/png"),
            ("page.html", "text/html"),
            ("model.pkl", "application/octet-stream"),
            ("noextension", "application/octet-stream"),
            (".hidden", "application/octet-stream"),
        ] {
            assert_eq!(guess_mime_type(name), expected, "{name}");
        }
    }

    #[test]
    fn content_disposition_follows_mlflow() {
        assert_eq!(content_disposition("a.txt"), "attachment; filename=a.txt");
        assert_eq!(
            content_disposition("a b.txt"),
            "attachment; filename=\"a b.txt\""
        );
        assert_eq!(
            content_disposition("q\"x\\.txt"),
            "attachment; filename=\"q\\\"x\\\\.txt\""
        );
        assert_eq!(
            content_disposition("naïve.txt"),
            "attachment; filename=nave.txt; filename*=UTF-8''na%C3%AFve.txt"
        );
        assert_eq!(
            content_disposition("日本語"),
            "attachment; filename=download; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E"
        );
    }
}
