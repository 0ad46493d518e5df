//! The model registry endpoints (`/registered-models`, `/model-versions`), which also carry the prompt
//! registry. Each handler decodes its message, calls the `RegistryService` method of the same name and
//! answers its response as JSON.

use crate::error::ApiResult;
use crate::extract::MlflowRequest;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::{delete, get, patch, post, MethodRouter};
use axum::Json;
use ferroflow_proto::registry::*;
use ferroflow_proto::tracking::Empty;

macro_rules! endpoints {
    ($($name:ident($request:ty) -> $response:ty;)+) => {
        $(
            async fn $name(
                State(state): State<AppState>,
                MlflowRequest(request): MlflowRequest<$request>,
            ) -> ApiResult<Json<$response>> {
                Ok(Json(state.registry.$name(request).await?))
            }
        )+
    };
}

endpoints! {
    create_registered_model(CreateRegisteredModel) -> RegisteredModelResponse;
    get_registered_model(RegisteredModelName) -> RegisteredModelResponse;
    rename_registered_model(RenameRegisteredModel) -> RegisteredModelResponse;
    update_registered_model(UpdateRegisteredModel) -> RegisteredModelResponse;
    delete_registered_model(RegisteredModelName) -> Empty;
    search_registered_models(SearchRegisteredModels) -> SearchRegisteredModelsResponse;
    get_latest_versions(GetLatestVersions) -> ModelVersionsResponse;
    set_registered_model_tag(SetRegisteredModelTag) -> Empty;
    delete_registered_model_tag(DeleteRegisteredModelTag) -> Empty;
    set_registered_model_alias(RegisteredModelAliasRequest) -> Empty;
    delete_registered_model_alias(RegisteredModelAliasRequest) -> Empty;
    get_model_version_by_alias(RegisteredModelAliasRequest) -> ModelVersionResponse;
    create_model_version(CreateModelVersion) -> ModelVersionResponse;
    get_model_version(ModelVersionKey) -> ModelVersionResponse;
    update_model_version(UpdateModelVersion) -> ModelVersionResponse;
    delete_model_version(ModelVersionKey) -> Empty;
    transition_model_version_stage(TransitionModelVersionStage) -> ModelVersionResponse;
    search_model_versions(SearchModelVersions) -> ModelVersionsResponse;
    get_model_version_download_uri(ModelVersionKey) -> ModelVersionDownloadUriResponse;
    set_model_version_tag(SetModelVersionTag) -> Empty;
    delete_model_version_tag(DeleteModelVersionTag) -> Empty;
}

/// The registry routes, relative to `/api/2.0/mlflow` (and `/ajax-api/2.0/mlflow`), with MLflow's
/// methods.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/registered-models/create", post(create_registered_model)),
        ("/registered-models/get", get(get_registered_model)),
        ("/registered-models/rename", post(rename_registered_model)),
        ("/registered-models/update", patch(update_registered_model)),
        ("/registered-models/delete", delete(delete_registered_model)),
        ("/registered-models/search", get(search_registered_models)),
        (
            "/registered-models/get-latest-versions",
            post(get_latest_versions).get(get_latest_versions),
        ),
        ("/registered-models/set-tag", post(set_registered_model_tag)),
        (
            "/registered-models/delete-tag",
            delete(delete_registered_model_tag),
        ),
        (
            "/registered-models/alias",
            post(set_registered_model_alias)
                .delete(delete_registered_model_alias)
                .get(get_model_version_by_alias),
        ),
        ("/model-versions/create", post(create_model_version)),
        ("/model-versions/get", get(get_model_version)),
        ("/model-versions/update", patch(update_model_version)),
        ("/model-versions/delete", delete(delete_model_version)),
        (
            "/model-versions/transition-stage",
            post(transition_model_version_stage),
        ),
        ("/model-versions/search", get(search_model_versions)),
        (
            "/model-versions/get-download-uri",
            get(get_model_version_download_uri),
        ),
        ("/model-versions/set-tag", post(set_model_version_tag)),
        (
            "/model-versions/delete-tag",
            delete(delete_model_version_tag),
        ),
    ]
}
