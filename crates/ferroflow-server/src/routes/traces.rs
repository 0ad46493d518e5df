//! The MLflow 3 trace and assessment endpoints. Each handler takes the ids of its path and its message,
//! calls the `TraceService` method of the same name and answers its response.
//!
//! MLflow serves them under `/api/3.0/mlflow`; the tag and delete routes under `/api/2.0/mlflow` as
//! well, and link-to-run and link-prompts under `/api/2.0/mlflow` only (where the 3.17 client calls
//! them).

use crate::error::ApiResult;
use crate::extract::{MlflowRequest, PathParams};
use crate::state::AppState;
use axum::extract::State;
use axum::routing::{get, patch, post, MethodRouter};
use axum::Json;
use ferroflow_core::traces::trace_not_ready;
use ferroflow_proto::traces::{
    AssessmentResponse, BatchGetTraceInfosResponse, BatchGetTraces, BatchGetTracesResponse,
    CreateAssessment, DeleteTraces, DeleteTracesResponse, GetTrace, LinkPromptsToTrace,
    LinkTracesToRun, SearchTracesV3, SearchTracesV3Response, StartTraceV3, TraceResponse,
    TraceTagRequest, UpdateAssessment,
};
use ferroflow_proto::tracking::Empty;

/// The routes relative to `/api/3.0/mlflow` (and `/ajax-api/3.0/mlflow`).
pub fn routes_v3() -> Vec<(&'static str, MethodRouter<AppState>)> {
    let mut routes = vec![
        ("/traces", post(start_trace)),
        ("/traces/get", get(get_trace)),
        ("/traces/batchGet", get(batch_get_traces)),
        ("/traces/batchGetInfos", post(batch_get_trace_infos)),
        ("/traces/search", post(search_traces)),
        ("/traces/{trace_id}", get(get_trace_info)),
        ("/traces/{trace_id}/assessments", post(create_assessment)),
        (
            "/traces/{trace_id}/assessments/{assessment_id}",
            get(get_assessment)
                .patch(update_assessment)
                .delete(delete_assessment),
        ),
    ];
    routes.extend(shared_routes());
    routes
}

/// The routes MLflow serves under both 2.0 and 3.0.
fn shared_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        (
            "/traces/{trace_id}/tags",
            patch(set_trace_tag).delete(delete_trace_tag),
        ),
        ("/traces/delete-traces", post(delete_traces)),
    ]
}

/// The routes relative to `/api/2.0/mlflow` (and `/ajax-api/2.0/mlflow`).
pub fn routes_v2() -> Vec<(&'static str, MethodRouter<AppState>)> {
    let mut routes = vec![
        ("/traces/link-to-run", post(link_traces_to_run)),
        ("/traces/link-prompts", post(link_prompts_to_trace)),
    ];
    routes.extend(shared_routes());
    routes
}

async fn start_trace(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<StartTraceV3>,
) -> ApiResult<Json<TraceResponse>> {
    Ok(Json(state.traces.start_trace(request).await?))
}

async fn get_trace_info(
    State(state): State<AppState>,
    PathParams(trace_id): PathParams<String>,
) -> ApiResult<Json<TraceResponse>> {
    Ok(Json(state.traces.get_trace_info(&trace_id).await?))
}

/// A trace whose spans are still arriving is asked for again after 1 s and 2 s, as MLflow's store
/// does, before the client is told it is not ready.
async fn get_trace(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<GetTrace>,
) -> ApiResult<Json<TraceResponse>> {
    for wait in [1, 2, 0] {
        if let Some(trace) = state.traces.get_trace(&request).await? {
            return Ok(Json(trace));
        }
        if wait > 0 {
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        }
    }
    Err(trace_not_ready(request.trace_id.as_deref().unwrap_or("")).into())
}

async fn batch_get_traces(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<BatchGetTraces>,
) -> ApiResult<Json<BatchGetTracesResponse>> {
    Ok(Json(state.traces.batch_get_traces(request).await?))
}

async fn batch_get_trace_infos(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<BatchGetTraces>,
) -> ApiResult<Json<BatchGetTraceInfosResponse>> {
    Ok(Json(state.traces.batch_get_trace_infos(request).await?))
}

async fn search_traces(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<SearchTracesV3>,
) -> ApiResult<Json<SearchTracesV3Response>> {
    Ok(Json(state.traces.search_traces(request).await?))
}

async fn set_trace_tag(
    State(state): State<AppState>,
    PathParams(trace_id): PathParams<String>,
    MlflowRequest(request): MlflowRequest<TraceTagRequest>,
) -> ApiResult<Json<Empty>> {
    Ok(Json(state.traces.set_trace_tag(&trace_id, request).await?))
}

async fn delete_trace_tag(
    State(state): State<AppState>,
    PathParams(trace_id): PathParams<String>,
    MlflowRequest(request): MlflowRequest<TraceTagRequest>,
) -> ApiResult<Json<Empty>> {
    Ok(Json(
        state.traces.delete_trace_tag(&trace_id, request).await?,
    ))
}

async fn delete_traces(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<DeleteTraces>,
) -> ApiResult<Json<DeleteTracesResponse>> {
    Ok(Json(state.traces.delete_traces(request).await?))
}

async fn link_traces_to_run(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<LinkTracesToRun>,
) -> ApiResult<Json<Empty>> {
    Ok(Json(state.traces.link_traces_to_run(request).await?))
}

async fn link_prompts_to_trace(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<LinkPromptsToTrace>,
) -> ApiResult<Json<Empty>> {
    Ok(Json(state.traces.link_prompts_to_trace(request).await?))
}

async fn create_assessment(
    State(state): State<AppState>,
    PathParams(trace_id): PathParams<String>,
    MlflowRequest(request): MlflowRequest<CreateAssessment>,
) -> ApiResult<Json<AssessmentResponse>> {
    Ok(Json(
        state.traces.create_assessment(&trace_id, request).await?,
    ))
}

async fn get_assessment(
    State(state): State<AppState>,
    PathParams((trace_id, assessment_id)): PathParams<(String, String)>,
) -> ApiResult<Json<AssessmentResponse>> {
    Ok(Json(
        state
            .traces
            .get_assessment(&trace_id, &assessment_id)
            .await?,
    ))
}

async fn update_assessment(
    State(state): State<AppState>,
    PathParams((trace_id, assessment_id)): PathParams<(String, String)>,
    MlflowRequest(request): MlflowRequest<UpdateAssessment>,
) -> ApiResult<Json<AssessmentResponse>> {
    Ok(Json(
        state
            .traces
            .update_assessment(&trace_id, &assessment_id, request)
            .await?,
    ))
}

async fn delete_assessment(
    State(state): State<AppState>,
    PathParams((trace_id, assessment_id)): PathParams<(String, String)>,
) -> ApiResult<Json<Empty>> {
    Ok(Json(
        state
            .traces
            .delete_assessment(&trace_id, &assessment_id)
            .await?,
    ))
}
