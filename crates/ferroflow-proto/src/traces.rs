//! MLflow 3 trace messages (service.proto, assessments.proto): `TraceInfoV3`, `Assessment` and the
//! requests and responses of the `/traces` endpoints, with MLflow's JSON names.
//!
//! `Timestamp` and `Duration` fields are their protobuf JSON strings (`"2026-11-26T10:16:51.833Z"`,
//! `"0.023s"`); the service converts them. Spans travel as OpenTelemetry `Span` JSON, built by the
//! service as `serde_json::Value`. Requests are lenient: every field is optional and the service reports
//! a missing one.

use crate::lenient;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// Deserializes a field that is `Some` whenever it is present, even as JSON `null` (a feedback value
/// of `None` is sent as `null`).
fn present<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

/// A string map that may be absent or `null`.
fn string_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(
        Option::<BTreeMap<String, Option<String>>>::deserialize(deserializer)?
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| (key, value.unwrap_or_default()))
            .collect(),
    )
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MlflowExperimentLocation {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceLocation {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub location_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlflow_experiment: Option<MlflowExperimentLocation>,
}

impl TraceLocation {
    /// The location of a trace in an MLflow experiment.
    pub fn experiment(experiment_id: impl Into<String>) -> Self {
        Self {
            location_type: Some("MLFLOW_EXPERIMENT".to_owned()),
            mlflow_experiment: Some(MlflowExperimentLocation {
                experiment_id: Some(experiment_id.into()),
            }),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssessmentSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssessmentError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    #[serde(default, deserialize_with = "present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AssessmentError>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SerializedValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serialization_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    #[serde(default, deserialize_with = "present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serialized_value: Option<SerializedValue>,
}

/// An assessment, as sent by the client and as answered (the answer always has id, name, source,
/// times and `valid`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<AssessmentSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expectation: Option<Expectation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AssessmentError>,
    #[serde(default, deserialize_with = "string_map")]
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid: Option<bool>,
}

/// `TraceInfoV3` as the server answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceInfoV3 {
    pub trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    pub trace_location: TraceLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_preview: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_preview: Option<String>,
    pub request_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_duration: Option<String>,
    pub state: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub trace_metadata: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assessments: Vec<Assessment>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// `TraceInfoV3` as the client sends it in StartTraceV3.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TraceInfoInput {
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default)]
    pub client_request_id: Option<String>,
    #[serde(default)]
    pub trace_location: Option<TraceLocation>,
    #[serde(default)]
    pub request_preview: Option<String>,
    #[serde(default)]
    pub response_preview: Option<String>,
    #[serde(default)]
    pub request_time: Option<String>,
    #[serde(default)]
    pub execution_duration: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "string_map")]
    pub trace_metadata: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "string_map")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub assessments: Vec<Assessment>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TraceInput {
    #[serde(default)]
    pub trace_info: Option<TraceInfoInput>,
}

/// `POST /api/3.0/mlflow/traces`.
#[derive(Debug, Default, Deserialize)]
pub struct StartTraceV3 {
    #[serde(default)]
    pub trace: Option<TraceInput>,
}

/// A trace as answered: its info and, for the endpoints that return spans, its OpenTelemetry spans.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub trace_info: TraceInfoV3,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct TraceResponse {
    pub trace: Trace,
}

/// `GET /traces/get`.
#[derive(Debug, Default, Deserialize)]
pub struct GetTrace {
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub allow_partial: Option<bool>,
}

/// `GET /traces/batchGet` and `POST /traces/batchGetInfos`.
#[derive(Debug, Default, Deserialize)]
pub struct BatchGetTraces {
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub trace_ids: Vec<String>,
    /// `None` when absent; MLflow then reads every experiment.
    #[serde(default, deserialize_with = "optional_list")]
    pub experiment_ids: Option<Vec<String>>,
}

fn optional_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    struct List(#[serde(deserialize_with = "lenient::one_or_many")] Vec<String>);
    Ok(Option::<List>::deserialize(deserializer)?.map(|list| list.0))
}

#[derive(Debug, Default, Serialize)]
pub struct BatchGetTracesResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub traces: Vec<Trace>,
}

#[derive(Debug, Default, Serialize)]
pub struct BatchGetTraceInfosResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trace_infos: Vec<TraceInfoV3>,
}

/// A location of a trace search.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchLocation {
    #[serde(rename = "type", default)]
    pub location_type: Option<String>,
    #[serde(default)]
    pub mlflow_experiment: Option<MlflowExperimentLocation>,
}

/// `POST /traces/search`.
#[derive(Debug, Default, Deserialize)]
pub struct SearchTracesV3 {
    /// `None` when absent (MLflow requires the field).
    #[serde(default, deserialize_with = "optional_locations")]
    pub locations: Option<Vec<SearchLocation>>,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub max_results: Option<i64>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub order_by: Vec<String>,
    #[serde(default)]
    pub page_token: Option<String>,
}

fn optional_locations<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<SearchLocation>>, D::Error> {
    #[derive(Deserialize)]
    struct List(#[serde(deserialize_with = "lenient::one_or_many")] Vec<SearchLocation>);
    Ok(Option::<List>::deserialize(deserializer)?.map(|list| list.0))
}

#[derive(Debug, Default, Serialize)]
pub struct SearchTracesV3Response {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub traces: Vec<TraceInfoV3>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `POST /traces/delete-traces`.
#[derive(Debug, Default, Deserialize)]
pub struct DeleteTraces {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub experiment_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub max_timestamp_millis: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub max_traces: Option<i64>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub request_ids: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct DeleteTracesResponse {
    pub traces_deleted: i64,
}

/// `PATCH` and `DELETE /traces/{id}/tags`.
#[derive(Debug, Default, Deserialize)]
pub struct TraceTagRequest {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
}

/// `POST /traces/link-to-run`.
#[derive(Debug, Default, Deserialize)]
pub struct LinkTracesToRun {
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub trace_ids: Vec<String>,
    #[serde(default)]
    pub run_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PromptVersionRef {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub version: Option<String>,
}

/// `POST /traces/link-prompts`.
#[derive(Debug, Default, Deserialize)]
pub struct LinkPromptsToTrace {
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub prompt_versions: Vec<PromptVersionRef>,
}

/// `POST /traces/{trace_id}/assessments`.
#[derive(Debug, Default, Deserialize)]
pub struct CreateAssessment {
    #[serde(default)]
    pub assessment: Option<Assessment>,
}

/// `PATCH /traces/{trace_id}/assessments/{assessment_id}`. `update_mask` is a protobuf `FieldMask`:
/// comma-separated lowerCamel paths in JSON (or an object with `paths`).
#[derive(Debug, Default, Deserialize)]
pub struct UpdateAssessment {
    #[serde(default)]
    pub assessment: Option<Assessment>,
    #[serde(default)]
    pub update_mask: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct AssessmentResponse {
    pub assessment: Assessment,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_null_value_is_present() {
        let parsed: Assessment = serde_json::from_str(r#"{"feedback": {"value": null}}"#).unwrap();
        assert_eq!(
            parsed.feedback.unwrap().value,
            Some(serde_json::Value::Null)
        );
        let parsed: Assessment = serde_json::from_str(r#"{"feedback": {}}"#).unwrap();
        assert_eq!(parsed.feedback.unwrap().value, None);
    }

    #[test]
    fn start_trace_parses_the_client_message() {
        let parsed: StartTraceV3 = serde_json::from_str(
            r#"{"trace": {"trace_info": {"trace_id": "tr-1", "trace_location": {"type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": "1"}}, "request_time": "2026-11-26T10:16:51.833Z",
            "execution_duration": "0.023s", "state": "OK", "trace_metadata": {"a": "b"},
            "tags": {"mlflow.traceName": "outer"}}}}"#,
        )
        .unwrap();
        let info = parsed.trace.unwrap().trace_info.unwrap();
        assert_eq!(info.trace_id.as_deref(), Some("tr-1"));
        assert_eq!(info.tags["mlflow.traceName"], "outer");
        assert_eq!(
            info.trace_location
                .unwrap()
                .mlflow_experiment
                .unwrap()
                .experiment_id
                .as_deref(),
            Some("1")
        );
    }
}
