//! The MLflow 3 logged model endpoints (`/logged-models`). Each handler takes the `{model_id}` of its path
//! and its message, calls the `LoggedModelService` method of the same name and answers its response.
//!
//! The artifact listing (`/logged-models/{model_id}/artifacts/directories`) reads models whose artifact
//! location is under the served artifact root (`mlflow-artifacts:`), the default when the server serves
//! artifacts; other locations answer NOT_IMPLEMENTED.

use crate::error::ApiResult;
use crate::extract::{MlflowRequest, PathParams};
use crate::state::AppState;
use axum::extract::State;
use axum::routing::{delete, get, patch, post, MethodRouter};
use axum::Json;
use ferroflow_core::artifact_path::{ArtifactPath, INVALID_PATH_MESSAGE};
use ferroflow_core::Error;
use ferroflow_proto::logged_models::{
    CreateLoggedModel, FinalizeLoggedModel, GetLoggedModel, ListLoggedModelArtifacts,
    LogLoggedModelParams, LoggedModelResponse, SearchLoggedModels, SearchLoggedModelsResponse,
    SetLoggedModelTags,
};
use ferroflow_proto::tracking::{Empty, FileInfo, ListArtifactsResponse};

/// The logged model routes, relative to `/api/2.0/mlflow` (and `/ajax-api/2.0/mlflow`).
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/logged-models", post(create_logged_model)),
        ("/logged-models/search", post(search_logged_models)),
        (
            "/logged-models/{model_id}",
            get(get_logged_model)
                .patch(finalize_logged_model)
                .delete(delete_logged_model),
        ),
        (
            "/logged-models/{model_id}/tags",
            patch(set_logged_model_tags),
        ),
        (
            "/logged-models/{model_id}/tags/{tag_key}",
            delete(delete_logged_model_tag),
        ),
        (
            "/logged-models/{model_id}/params",
            post(log_logged_model_params),
        ),
        (
            "/logged-models/{model_id}/artifacts/directories",
            get(list_logged_model_artifacts),
        ),
    ]
}

async fn create_logged_model(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<CreateLoggedModel>,
) -> ApiResult<Json<LoggedModelResponse>> {
    Ok(Json(
        state.logged_models.create_logged_model(request).await?,
    ))
}

async fn get_logged_model(
    State(state): State<AppState>,
    PathParams(model_id): PathParams<String>,
    MlflowRequest(request): MlflowRequest<GetLoggedModel>,
) -> ApiResult<Json<LoggedModelResponse>> {
    Ok(Json(
        state
            .logged_models
            .get_logged_model(&model_id, request)
            .await?,
    ))
}

/// MLflow finalizes the model the body names; the path's id is not read.
async fn finalize_logged_model(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<FinalizeLoggedModel>,
) -> ApiResult<Json<LoggedModelResponse>> {
    Ok(Json(
        state.logged_models.finalize_logged_model(request).await?,
    ))
}

async fn delete_logged_model(
    State(state): State<AppState>,
    PathParams(model_id): PathParams<String>,
) -> ApiResult<Json<Empty>> {
    Ok(Json(
        state.logged_models.delete_logged_model(&model_id).await?,
    ))
}

async fn set_logged_model_tags(
    State(state): State<AppState>,
    PathParams(model_id): PathParams<String>,
    MlflowRequest(request): MlflowRequest<SetLoggedModelTags>,
) -> ApiResult<Json<Empty>> {
    Ok(Json(
        state
            .logged_models
            .set_logged_model_tags(&model_id, request)
            .await?,
    ))
}

async fn delete_logged_model_tag(
    State(state): State<AppState>,
    PathParams((model_id, tag_key)): PathParams<(String, String)>,
) -> ApiResult<Json<Empty>> {
    Ok(Json(
        state
            .logged_models
            .delete_logged_model_tag(&model_id, &tag_key)
            .await?,
    ))
}

async fn log_logged_model_params(
    State(state): State<AppState>,
    PathParams(model_id): PathParams<String>,
    MlflowRequest(request): MlflowRequest<LogLoggedModelParams>,
) -> ApiResult<Json<Empty>> {
    Ok(Json(
        state
            .logged_models
            .log_logged_model_params(&model_id, request)
            .await?,
    ))
}

async fn search_logged_models(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<SearchLoggedModels>,
) -> ApiResult<Json<SearchLoggedModelsResponse>> {
    Ok(Json(
        state.logged_models.search_logged_models(request).await?,
    ))
}

/// `GET /logged-models/{model_id}/artifacts/directories?artifact_directory_path=`: the model's
/// `root_uri` and the entries of the directory, with paths relative to the model's artifact root. There
/// is one page: `page_token` is ignored.
async fn list_logged_model_artifacts(
    State(state): State<AppState>,
    PathParams(model_id): PathParams<String>,
    MlflowRequest(request): MlflowRequest<ListLoggedModelArtifacts>,
) -> ApiResult<Json<ListArtifactsResponse>> {
    let relative = match request.artifact_directory_path.as_deref() {
        None => ArtifactPath::root(),
        Some(raw) => ArtifactPath::parse(raw)?,
    };
    let artifact_uri = state
        .logged_models
        .logged_model_artifact_uri(&model_id)
        .await?;
    let unreadable = || {
        Error::not_implemented(format!(
            "this server cannot read artifacts at '{artifact_uri}'"
        ))
    };
    let store = state.artifacts.as_ref().ok_or_else(unreadable)?;
    let model_root = served_root(&artifact_uri).ok_or_else(unreadable)??;
    let entries = store
        .list(&model_root.join(&relative))
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
            // MLflow's `FileInfo.to_proto` sets `file_size` only when it is truthy: none for an empty file.
            file_size: entry
                .size
                .filter(|size| *size > 0)
                .and_then(|size| i64::try_from(size).ok()),
        })
        .collect();
    Ok(Json(ListArtifactsResponse {
        root_uri: Some(artifact_uri),
        files,
        next_page_token: None,
    }))
}

/// The path inside the served artifact root of an `mlflow-artifacts:` location (`mlflow-artifacts:/1/…`
/// or `mlflow-artifacts://host/1/…`); `None` for any other location.
fn served_root(artifact_uri: &str) -> Option<Result<ArtifactPath, Error>> {
    let rest = artifact_uri.strip_prefix("mlflow-artifacts:")?;
    if rest.contains(['?', '#']) {
        return Some(Err(Error::invalid_parameter(INVALID_PATH_MESSAGE)));
    }
    let path = match rest.strip_prefix("//") {
        Some(authority_and_path) => authority_and_path
            .find('/')
            .map_or("", |index| &authority_and_path[index..]),
        None => rest,
    };
    Some(ArtifactPath::parse(path.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_roots() {
        let root =
            |uri: &str| served_root(uri).map(|parsed| parsed.map(|path| path.to_string()).ok());
        assert_eq!(
            root("mlflow-artifacts:/1/models/m-1/artifacts"),
            Some(Some("1/models/m-1/artifacts".to_owned()))
        );
        assert_eq!(
            root("mlflow-artifacts://host:5000/1/models/m-1/artifacts"),
            Some(Some("1/models/m-1/artifacts".to_owned()))
        );
        assert_eq!(root("mlflow-artifacts:/../etc"), Some(None));
        assert_eq!(root("mlflow-artifacts:/1?x=/y"), Some(None));
        assert_eq!(root("s3://bucket/1/models"), None);
        assert_eq!(root("/tmp/art/1/models"), None);
    }
}
