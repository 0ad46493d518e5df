//! The evaluation dataset endpoints (`/api/3.0/mlflow/datasets…`, MLflow 3 only). Each handler takes
//! the ids of its path and its message and calls the `EvalDatasetService` method of the same name.

use crate::error::ApiResult;
use crate::extract::{MlflowRequest, PathParams};
use crate::state::AppState;
use axum::extract::State;
use axum::routing::{get, patch, post, MethodRouter};
use axum::Json;
use ferroflow_proto::eval_datasets::{
    CreateDataset, DatasetExperiments, DatasetResponse, DeleteDatasetRecords,
    DeleteDatasetRecordsResponse, GetDatasetExperimentIdsResponse, GetDatasetRecords,
    GetDatasetRecordsResponse, SearchEvaluationDatasets, SearchEvaluationDatasetsResponse,
    SetDatasetTags, UpsertDatasetRecords, UpsertDatasetRecordsResponse,
};
use ferroflow_proto::tracking::Empty;

/// The routes relative to `/api/3.0/mlflow` (and `/ajax-api/3.0/mlflow`).
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/datasets/create", post(create_dataset)),
        (
            "/datasets/search",
            post(search_datasets).get(search_datasets),
        ),
        (
            "/datasets/{dataset_id}",
            get(get_dataset).delete(delete_dataset),
        ),
        ("/datasets/{dataset_id}/tags", patch(set_dataset_tags)),
        (
            "/datasets/{dataset_id}/tags/{key}",
            axum::routing::delete(delete_dataset_tag),
        ),
        (
            "/datasets/{dataset_id}/records",
            post(upsert_records).get(get_records).delete(delete_records),
        ),
        ("/datasets/{dataset_id}/experiment-ids", get(experiment_ids)),
        (
            "/datasets/{dataset_id}/add-experiments",
            post(add_experiments),
        ),
        (
            "/datasets/{dataset_id}/remove-experiments",
            post(remove_experiments),
        ),
    ]
}

async fn create_dataset(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<CreateDataset>,
) -> ApiResult<Json<DatasetResponse>> {
    Ok(Json(state.eval_datasets.create_dataset(request).await?))
}

async fn get_dataset(
    State(state): State<AppState>,
    PathParams(dataset_id): PathParams<String>,
) -> ApiResult<Json<DatasetResponse>> {
    Ok(Json(state.eval_datasets.get_dataset(&dataset_id).await?))
}

async fn delete_dataset(
    State(state): State<AppState>,
    PathParams(dataset_id): PathParams<String>,
) -> ApiResult<Json<Empty>> {
    Ok(Json(state.eval_datasets.delete_dataset(&dataset_id).await?))
}

async fn search_datasets(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<SearchEvaluationDatasets>,
) -> ApiResult<Json<SearchEvaluationDatasetsResponse>> {
    Ok(Json(state.eval_datasets.search_datasets(request).await?))
}

async fn set_dataset_tags(
    State(state): State<AppState>,
    PathParams(dataset_id): PathParams<String>,
    MlflowRequest(request): MlflowRequest<SetDatasetTags>,
) -> ApiResult<Json<Empty>> {
    Ok(Json(
        state
            .eval_datasets
            .set_dataset_tags(&dataset_id, request)
            .await?,
    ))
}

async fn delete_dataset_tag(
    State(state): State<AppState>,
    PathParams((dataset_id, key)): PathParams<(String, String)>,
) -> ApiResult<Json<Empty>> {
    Ok(Json(
        state
            .eval_datasets
            .delete_dataset_tag(&dataset_id, &key)
            .await?,
    ))
}

async fn upsert_records(
    State(state): State<AppState>,
    PathParams(dataset_id): PathParams<String>,
    MlflowRequest(request): MlflowRequest<UpsertDatasetRecords>,
) -> ApiResult<Json<UpsertDatasetRecordsResponse>> {
    Ok(Json(
        state
            .eval_datasets
            .upsert_records(&dataset_id, request)
            .await?,
    ))
}

async fn get_records(
    State(state): State<AppState>,
    PathParams(dataset_id): PathParams<String>,
    MlflowRequest(request): MlflowRequest<GetDatasetRecords>,
) -> ApiResult<Json<GetDatasetRecordsResponse>> {
    Ok(Json(
        state
            .eval_datasets
            .get_records(&dataset_id, request)
            .await?,
    ))
}

async fn delete_records(
    State(state): State<AppState>,
    PathParams(dataset_id): PathParams<String>,
    MlflowRequest(request): MlflowRequest<DeleteDatasetRecords>,
) -> ApiResult<Json<DeleteDatasetRecordsResponse>> {
    Ok(Json(
        state
            .eval_datasets
            .delete_records(&dataset_id, request)
            .await?,
    ))
}

async fn experiment_ids(
    State(state): State<AppState>,
    PathParams(dataset_id): PathParams<String>,
) -> ApiResult<Json<GetDatasetExperimentIdsResponse>> {
    Ok(Json(state.eval_datasets.experiment_ids(&dataset_id).await?))
}

async fn add_experiments(
    State(state): State<AppState>,
    PathParams(dataset_id): PathParams<String>,
    MlflowRequest(request): MlflowRequest<DatasetExperiments>,
) -> ApiResult<Json<DatasetResponse>> {
    Ok(Json(
        state
            .eval_datasets
            .add_experiments(&dataset_id, request)
            .await?,
    ))
}

async fn remove_experiments(
    State(state): State<AppState>,
    PathParams(dataset_id): PathParams<String>,
    MlflowRequest(request): MlflowRequest<DatasetExperiments>,
) -> ApiResult<Json<DatasetResponse>> {
    Ok(Json(
        state
            .eval_datasets
            .remove_experiments(&dataset_id, request)
            .await?,
    ))
}
