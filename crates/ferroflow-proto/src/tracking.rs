//! Tracking service messages (service.proto): entities, requests and responses, with MLflow's JSON names.
//!
//! Responses omit unset optional fields and empty lists, as MLflow's protobuf JSON writer does.

use crate::lenient;
use serde::{Deserialize, Serialize};

/// A key/value tag on an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentTag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// A key/value tag on a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// A run parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<ExperimentTag>,
    pub workspace: String,
}

/// A metric value at a step. `value` may be NaN or infinite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub key: String,
    #[serde(serialize_with = "lenient::ser_f64")]
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    pub run_id: String,
    pub run_uuid: String,
    pub run_name: String,
    pub experiment_id: String,
    pub user_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunData {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<RunTag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputTag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInput {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<InputTag>,
    pub dataset: Dataset,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInput {
    pub model_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelOutput {
    pub model_id: String,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub step: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunInputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dataset_inputs: Vec<DatasetInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_inputs: Vec<ModelInput>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunOutputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_outputs: Vec<ModelOutput>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub info: RunInfo,
    pub data: RunData,
    pub inputs: RunInputs,
    /// MLflow's get and search send `outputs` always (`{}` when empty); its create-run answer has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<RunOutputs>,
}

/// One entry of an artifact listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    pub path: String,
    pub is_dir: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetSummary {
    pub experiment_id: String,
    pub name: String,
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------
// Requests. Every field is optional on the wire; the service reports a missing required one with MLflow's
// message. Repeated fields accept one value so that GET query strings decode into the same structs.
// ---------------------------------------------------------------------------------------------------------

/// A metric as a client sends it in log-metric and log-batch.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MetricInput {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub value: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub step: Option<i64>,
    #[serde(default)]
    pub model_id: Option<String>,
    #[serde(default)]
    pub dataset_name: Option<String>,
    #[serde(default)]
    pub dataset_digest: Option<String>,
}

/// A key and an optional value, as params and tags arrive.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KeyValueInput {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CreateExperiment {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub artifact_location: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub tags: Vec<KeyValueInput>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ExperimentIdRequest {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub experiment_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct GetExperimentByName {
    #[serde(default)]
    pub experiment_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct UpdateExperiment {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub experiment_id: Option<String>,
    #[serde(default)]
    pub new_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SetExperimentTag {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub experiment_id: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteExperimentTag {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub experiment_id: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchExperiments {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub max_results: Option<i64>,
    #[serde(default)]
    pub page_token: Option<String>,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub order_by: Vec<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub view_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CreateRun {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub experiment_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub run_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub start_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub tags: Vec<KeyValueInput>,
}

/// Any request that names one run: `run_id`, or the legacy `run_uuid`.
#[derive(Debug, Default, Deserialize)]
pub struct RunIdRequest {
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub run_uuid: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct UpdateRun {
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub run_uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub end_time: Option<i64>,
    #[serde(default)]
    pub run_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LogMetric {
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub run_uuid: Option<String>,
    #[serde(flatten)]
    pub metric: MetricInput,
}

#[derive(Debug, Default, Deserialize)]
pub struct LogParam {
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub run_uuid: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SetTag {
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub run_uuid: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteTag {
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LogBatch {
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub metrics: Vec<MetricInput>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub params: Vec<KeyValueInput>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub tags: Vec<KeyValueInput>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LogInputs {
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub datasets: Vec<DatasetInput>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub models: Vec<ModelInput>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LogOutputs {
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub models: Vec<ModelOutput>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchRuns {
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub experiment_ids: Vec<String>,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub run_view_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub max_results: Option<i64>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub order_by: Vec<String>,
    #[serde(default)]
    pub page_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct GetMetricHistory {
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub run_uuid: Option<String>,
    #[serde(default)]
    pub metric_key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub max_results: Option<i64>,
    #[serde(default)]
    pub page_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct GetMetricHistoryBulkInterval {
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub run_ids: Vec<String>,
    #[serde(default)]
    pub metric_key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub start_step: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub end_step: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub max_results: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct GetMetricHistoryBulk {
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub run_id: Vec<String>,
    #[serde(default)]
    pub metric_key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub max_results: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchDatasets {
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub experiment_ids: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListArtifacts {
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub run_uuid: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub page_token: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------
// Responses.
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct CreateExperimentResponse {
    pub experiment_id: String,
}

#[derive(Debug, Serialize)]
pub struct GetExperimentResponse {
    pub experiment: Experiment,
}

#[derive(Debug, Default, Serialize)]
pub struct SearchExperimentsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub experiments: Vec<Experiment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RunResponse {
    pub run: Run,
}

#[derive(Debug, Serialize)]
pub struct UpdateRunResponse {
    pub run_info: RunInfo,
}

#[derive(Debug, Default, Serialize)]
pub struct SearchRunsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<Run>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct MetricsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct SearchDatasetsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dataset_summaries: Vec<DatasetSummary>,
}

#[derive(Debug, Default, Serialize)]
pub struct ListArtifactsResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_uri: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// The `{}` answer of every void RPC.
#[derive(Debug, Default, Serialize)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_metric_serializes_as_string() {
        let metric = Metric {
            key: "m".into(),
            value: f64::NAN,
            timestamp: 1,
            step: 0,
            dataset_name: None,
            dataset_digest: None,
            model_id: None,
            run_id: None,
        };
        assert_eq!(
            serde_json::to_string(&metric).unwrap(),
            r#"{"key":"m","value":"NaN","timestamp":1,"step":0}"#
        );
    }

    #[test]
    fn empty_lists_are_omitted() {
        assert_eq!(
            serde_json::to_string(&SearchRunsResponse::default()).unwrap(),
            "{}"
        );
    }

    #[test]
    fn log_metric_accepts_string_numbers() {
        let request: LogMetric = serde_json::from_str(
            r#"{"run_id":"r","key":"k","value":"1.5","timestamp":"12","step":3}"#,
        )
        .unwrap();
        assert_eq!(request.metric.value, Some(1.5));
        assert_eq!(request.metric.timestamp, Some(12));
        assert_eq!(request.metric.step, Some(3));
    }
}
