//! Evaluation dataset messages (datasets.proto and the `/datasets` requests of service.proto), with
//! MLflow's JSON names. Tags, schema and profile travel as JSON strings, and so do the records of a
//! dataset (`records` is one JSON-encoded array), as MLflow sends them.

use crate::lenient;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dataset {
    pub dataset_id: String,
    pub name: String,
    /// A JSON object of the dataset's tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    pub digest: String,
    pub created_time: i64,
    pub last_update_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_by: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub experiment_ids: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CreateDataset {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub experiment_ids: Vec<String>,
    /// A JSON object of tags.
    #[serde(default)]
    pub tags: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchEvaluationDatasets {
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub experiment_ids: Vec<String>,
    #[serde(default)]
    pub filter_string: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub max_results: Option<i64>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub order_by: Vec<String>,
    #[serde(default)]
    pub page_token: Option<String>,
}

/// `PATCH /datasets/{id}/tags`: `tags` is a JSON object merged into the dataset's tags.
#[derive(Debug, Default, Deserialize)]
pub struct SetDatasetTags {
    #[serde(default)]
    pub tags: Option<String>,
}

/// `POST /datasets/{id}/records`: `records` is a JSON array of record objects.
#[derive(Debug, Default, Deserialize)]
pub struct UpsertDatasetRecords {
    #[serde(default)]
    pub records: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct GetDatasetRecords {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub max_results: Option<i64>,
    #[serde(default)]
    pub page_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteDatasetRecords {
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub dataset_record_ids: Vec<String>,
}

/// `add-experiments` and `remove-experiments`.
#[derive(Debug, Default, Deserialize)]
pub struct DatasetExperiments {
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub experiment_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetResponse {
    pub dataset: Dataset,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchEvaluationDatasetsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<Dataset>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpsertDatasetRecordsResponse {
    pub inserted_count: i64,
    pub updated_count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GetDatasetRecordsResponse {
    /// A JSON array of the records.
    pub records: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeleteDatasetRecordsResponse {
    pub deleted_count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GetDatasetExperimentIdsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub experiment_ids: Vec<String>,
}
