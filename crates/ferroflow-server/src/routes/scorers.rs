//! The registered scorer endpoints (`/api/3.0/mlflow/scorers…`, MLflow 3 only). Each handler takes its
//! message and calls the `ScorerService` method of the same name.

use crate::error::ApiResult;
use crate::extract::MlflowRequest;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::{delete, get, post, MethodRouter};
use axum::Json;
use ferroflow_proto::scorers::{
    GetOnlineScoringConfigs, GetScorerResponse, ListScorerVersions, ListScorers,
    OnlineScoringConfigsResponse, RegisterScorer, RegisterScorerResponse, ScorerVersionRequest,
    ScorersResponse,
};
use ferroflow_proto::tracking::Empty;

/// The routes relative to `/api/3.0/mlflow` (and `/ajax-api/3.0/mlflow`).
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/scorers/register", post(register_scorer)),
        ("/scorers/list", get(list_scorers)),
        ("/scorers/versions", get(list_scorer_versions)),
        ("/scorers/get", get(get_scorer)),
        ("/scorers/delete", delete(delete_scorer)),
        ("/scorers/online-configs", get(online_configs)),
    ]
}

async fn register_scorer(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<RegisterScorer>,
) -> ApiResult<Json<RegisterScorerResponse>> {
    Ok(Json(state.scorers.register_scorer(request).await?))
}

async fn list_scorers(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<ListScorers>,
) -> ApiResult<Json<ScorersResponse>> {
    Ok(Json(state.scorers.list_scorers(request).await?))
}

async fn list_scorer_versions(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<ListScorerVersions>,
) -> ApiResult<Json<ScorersResponse>> {
    Ok(Json(state.scorers.list_scorer_versions(request).await?))
}

async fn get_scorer(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<ScorerVersionRequest>,
) -> ApiResult<Json<GetScorerResponse>> {
    Ok(Json(state.scorers.get_scorer(request).await?))
}

async fn delete_scorer(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<ScorerVersionRequest>,
) -> ApiResult<Json<Empty>> {
    Ok(Json(state.scorers.delete_scorer(request).await?))
}

async fn online_configs(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<GetOnlineScoringConfigs>,
) -> ApiResult<Json<OnlineScoringConfigsResponse>> {
    Ok(Json(state.scorers.online_configs(request).await?))
}
