//! The tracking service endpoints (experiments, runs, metrics, datasets). Each handler decodes its message,
//! calls the service method of the same name and answers its response as JSON.

use crate::error::{ApiError, ApiResult};
use crate::extract::{read_message, MlflowRequest};
use crate::state::AppState;
use axum::extract::Request;
use axum::extract::State;
use axum::routing::{get, post, MethodRouter};
use axum::Json;
use ferroflow_core::validation;
use ferroflow_proto::tracking::*;

macro_rules! endpoints {
    ($($name:ident($request:ty) -> $response:ty;)+) => {
        $(
            async fn $name(
                State(state): State<AppState>,
                MlflowRequest(request): MlflowRequest<$request>,
            ) -> ApiResult<Json<$response>> {
                Ok(Json(state.service.$name(request).await?))
            }
        )+
    };
}

endpoints! {
    create_experiment(CreateExperiment) -> CreateExperimentResponse;
    get_experiment(ExperimentIdRequest) -> GetExperimentResponse;
    get_experiment_by_name(GetExperimentByName) -> GetExperimentResponse;
    delete_experiment(ExperimentIdRequest) -> Empty;
    restore_experiment(ExperimentIdRequest) -> Empty;
    update_experiment(UpdateExperiment) -> Empty;
    set_experiment_tag(SetExperimentTag) -> Empty;
    delete_experiment_tag(DeleteExperimentTag) -> Empty;
    search_experiments(SearchExperiments) -> SearchExperimentsResponse;
    create_run(CreateRun) -> RunResponse;
    get_run(RunIdRequest) -> RunResponse;
    update_run(UpdateRun) -> UpdateRunResponse;
    delete_run(RunIdRequest) -> Empty;
    restore_run(RunIdRequest) -> Empty;
    log_metric(LogMetric) -> Empty;
    log_param(LogParam) -> Empty;
    set_tag(SetTag) -> Empty;
    delete_tag(DeleteTag) -> Empty;
    log_inputs(LogInputs) -> Empty;
    log_outputs(LogOutputs) -> Empty;
    search_runs(SearchRuns) -> SearchRunsResponse;
    get_metric_history(GetMetricHistory) -> MetricsResponse;
    get_metric_history_bulk(GetMetricHistoryBulk) -> MetricsResponse;
    get_metric_history_bulk_interval(GetMetricHistoryBulkInterval) -> MetricsResponse;
    search_datasets(SearchDatasets) -> SearchDatasetsResponse;
}

/// log-batch also refuses bodies over MLflow's 1 MB, with MLflow's message.
async fn log_batch(State(state): State<AppState>, request: Request) -> ApiResult<Json<Empty>> {
    let (message, size) = read_message::<LogBatch>(request).await?;
    if size > validation::MAX_BATCH_LOG_REQUEST_SIZE {
        return Err(ApiError::invalid_parameter(format!(
            "Batched logging API requests must be at most {} bytes, got a request of size {size}.",
            validation::MAX_BATCH_LOG_REQUEST_SIZE
        )));
    }
    Ok(Json(state.service.log_batch(message).await?))
}

/// The tracking routes, relative to `/api/2.0/mlflow` (and `/ajax-api/2.0/mlflow`).
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/experiments/create", post(create_experiment)),
        ("/experiments/get", get(get_experiment)),
        ("/experiments/get-by-name", get(get_experiment_by_name)),
        ("/experiments/delete", post(delete_experiment)),
        ("/experiments/restore", post(restore_experiment)),
        ("/experiments/update", post(update_experiment)),
        ("/experiments/set-experiment-tag", post(set_experiment_tag)),
        (
            "/experiments/delete-experiment-tag",
            post(delete_experiment_tag),
        ),
        (
            "/experiments/search",
            post(search_experiments).get(search_experiments),
        ),
        ("/runs/create", post(create_run)),
        ("/runs/get", get(get_run)),
        ("/runs/update", post(update_run)),
        ("/runs/delete", post(delete_run)),
        ("/runs/restore", post(restore_run)),
        ("/runs/log-metric", post(log_metric)),
        ("/runs/log-parameter", post(log_param)),
        ("/runs/set-tag", post(set_tag)),
        ("/runs/delete-tag", post(delete_tag)),
        ("/runs/log-batch", post(log_batch)),
        ("/runs/log-inputs", post(log_inputs)),
        ("/runs/outputs", post(log_outputs)),
        ("/runs/search", post(search_runs).get(search_runs)),
        ("/metrics/get-history", get(get_metric_history)),
        (
            "/metrics/get-history-bulk-interval",
            get(get_metric_history_bulk_interval),
        ),
    ]
}

/// Routes MLflow serves under `/ajax-api/2.0/mlflow` only (the UI's).
pub fn ajax_only_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/metrics/get-history-bulk", get(get_metric_history_bulk)),
        ("/experiments/search-datasets", post(search_datasets)),
    ]
}
