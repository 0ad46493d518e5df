//! MLflow 3 traces: the [`TraceStore`] trait and the [`TraceService`] that validates each trace request
//! as MLflow does, turns OpenTelemetry spans into MLflow's stored form, and drives the store.
//!
//! A trace reaches the server twice, in either order: its spans through OTLP (`POST /v1/traces`,
//! [`TraceService::log_spans`]) and its info when the root span ends (`StartTraceV3`,
//! [`TraceService::start_trace`]). Both create the `trace_info` row when missing and merge into it
//! otherwise; whatever `StartTraceV3` sends wins over what spans imply, and ferroflow always answers it
//! with `mlflow.trace.spansLocation=TRACKING_STORE`, so the client never uploads `traces.json`.
//!
//! Spans are stored as MLflow stores them: one `spans` row each, whose `content` is the JSON of
//! MLflow's `Span.to_dict()` (ids in base64, attribute values as JSON text, Python's `json.dumps`
//! layout), so `mlflow server` reads them back and the other way round. `GET /traces/get` turns that
//! JSON back into OpenTelemetry span JSON with typed attribute values. The span conversions live in
//! `trace_spans.rs` and are re-exported here.
//!
//! Search pages use MLflow's trace page token, base64 of `{"offset": N}`.

use crate::error::{Error, Result};
use crate::ids::now_millis;
use crate::model::LifecycleStage;
use crate::store::TrackingStore;
use crate::trace_filter::{
    parse_trace_filter, parse_trace_order_bys, TraceCondition, TraceOrderBy, TRACE_NAME_TAG,
};
use crate::trace_json::{
    duration_from_millis, millis_from_duration, millis_from_timestamp, timestamp_from_millis,
    OrderedJson,
};
pub use crate::trace_spans::{
    aggregate_nodes, aggregation_nodes_of_content, cost_columns, mlflow_trace_id, otel_span_json,
    spans_from_otlp, token_columns, OtlpEvent, OtlpLink, OtlpResourceSpans, OtlpSpan,
    UnconvertibleSpan,
};
use crate::trace_spans::{attribute_value, token_count, truncate_chars};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ferroflow_proto::traces::{
    Assessment, AssessmentError, AssessmentResponse, AssessmentSource, BatchGetTraceInfosResponse,
    BatchGetTraces, BatchGetTracesResponse, CreateAssessment, DeleteTraces, DeleteTracesResponse,
    Expectation, Feedback, GetTrace, LinkPromptsToTrace, LinkTracesToRun, SearchTracesV3,
    SearchTracesV3Response, SerializedValue, StartTraceV3, Trace, TraceInfoV3, TraceLocation,
    TraceResponse, TraceTagRequest, UpdateAssessment,
};
use ferroflow_proto::tracking::Empty;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// MLflow's default page size of a trace search, and its largest.
pub const DEFAULT_SEARCH_TRACES_MAX_RESULTS: usize = 100;
pub const MAX_SEARCH_TRACES_MAX_RESULTS: i64 = 500;
/// The most traces one `link-to-run` request may link.
pub const MAX_TRACE_LINKS_PER_REQUEST: usize = 100;
/// The longest trace tag key and value (values are truncated), and the longest preview.
pub const MAX_TRACE_TAG_KEY_LENGTH: usize = 250;
pub const MAX_TRACE_TAG_VALUE_LENGTH: usize = 8000;
pub const MAX_PREVIEW_LENGTH: usize = 1000;

pub const SPANS_LOCATION_TAG: &str = "mlflow.trace.spansLocation";
pub const ARTIFACT_LOCATION_TAG: &str = "mlflow.artifactLocation";
pub const ARCHIVE_LOCATION_TAG: &str = "mlflow.trace.archiveLocation";
pub const ARCHIVAL_FAILURE_TAG: &str = "mlflow.trace.archivalFailure";
pub const TRACKING_STORE: &str = "TRACKING_STORE";
pub const INFO_FINALIZED_METADATA: &str = "mlflow.trace.infoFinalized";
pub const TOKEN_USAGE_METADATA: &str = "mlflow.trace.tokenUsage";
pub const COST_METADATA: &str = "mlflow.trace.cost";
pub const SESSION_METADATA: &str = "mlflow.trace.session";
pub const USER_METADATA: &str = "mlflow.trace.user";
pub const SIZE_STATS_METADATA: &str = "mlflow.trace.sizeStats";

/// The token usage keys, which are also the `trace_info` column names, in MLflow's order.
pub const TOKEN_KEYS: [&str; 6] = [
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation_input_tokens_above_1hr",
];
/// The cost keys, which are also the `trace_info` column names.
pub const COST_KEYS: [&str; 3] = ["input_cost", "output_cost", "total_cost"];

/// The trace columns MLflow derives from metadata (session, token usage, cost). `None` leaves a column
/// as it is when merging.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceAnalytics {
    pub session_id: Option<String>,
    pub tokens: [Option<i64>; 6],
    pub costs: [Option<f64>; 3],
}

impl TraceAnalytics {
    pub fn has_tokens(&self) -> bool {
        self.tokens.iter().any(Option::is_some)
    }

    pub fn has_costs(&self) -> bool {
        self.costs.iter().any(Option::is_some)
    }
}

/// A stored assessment row, its JSON columns as text.
#[derive(Debug, Clone, PartialEq)]
pub struct AssessmentRecord {
    pub assessment_id: String,
    pub trace_id: String,
    pub name: String,
    /// `feedback`, `expectation` or `issue`.
    pub assessment_type: String,
    /// The value as Python's `json.dumps`.
    pub value: String,
    pub error: Option<String>,
    pub created_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub source_type: String,
    pub source_id: Option<String>,
    pub run_id: Option<String>,
    pub span_id: Option<String>,
    pub rationale: Option<String>,
    pub overrides: Option<String>,
    pub valid: bool,
    pub metadata: Option<String>,
    /// The number searches compare (`assessment_aggregate` in MLflow).
    pub aggregate_value: Option<f64>,
    pub is_numeric_value: bool,
}

/// A trace's info as stored, with its tags, metadata (the analytics columns folded back in) and
/// assessments.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceInfo {
    pub trace_id: String,
    pub experiment_id: String,
    pub request_time: i64,
    pub execution_duration: Option<i64>,
    pub state: String,
    pub client_request_id: Option<String>,
    pub request_preview: Option<String>,
    pub response_preview: Option<String>,
    pub trace_metadata: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub assessments: Vec<AssessmentRecord>,
}

/// A trace info from StartTraceV3, everything decided.
#[derive(Debug, Clone)]
pub struct NewTrace {
    pub trace_id: String,
    pub experiment_id: i64,
    pub request_time: i64,
    pub execution_duration: Option<i64>,
    pub state: String,
    pub client_request_id: Option<String>,
    pub request_preview: Option<String>,
    pub response_preview: Option<String>,
    pub trace_name: Option<String>,
    pub analytics: TraceAnalytics,
    /// Distinct keys, `mlflow.traceName` excluded.
    pub tags: Vec<(String, String)>,
    /// Distinct keys, the analytics keys excluded.
    pub metadata: Vec<(String, String)>,
}

/// One `spans` row.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub span_type: Option<String>,
    /// `OK`, `ERROR` or `UNSET`.
    pub status: String,
    pub start_time_unix_nano: i64,
    pub end_time_unix_nano: Option<i64>,
    pub content: String,
    pub input_cost: Option<f64>,
    pub output_cost: Option<f64>,
    pub total_cost: Option<f64>,
    pub model_name: Option<String>,
    pub model_provider: Option<String>,
}

/// A span's place in the tree and the usage (or cost) it carries, for MLflow's tree-aware sums.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregationNode {
    pub span_id: String,
    pub parent_id: Option<String>,
    pub data: Option<Vec<(String, f64)>>,
}

/// The spans of one trace in an ingest batch, with what they imply about the trace.
#[derive(Debug, Clone)]
pub struct TraceSpans {
    pub trace_id: String,
    pub spans: Vec<SpanRecord>,
    pub min_start_ms: i64,
    pub max_end_ms: Option<i64>,
    /// `OK` or `ERROR` when the batch holds the root span.
    pub root_state: Option<String>,
    pub request_preview: Option<String>,
    pub response_preview: Option<String>,
    pub trace_name: Option<String>,
    pub usage_nodes: Vec<AggregationNode>,
    pub cost_nodes: Vec<AggregationNode>,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    /// Resource attributes, then the root span's `mlflow.traceTag.*` attributes (later wins).
    pub tags: Vec<(String, String)>,
}

impl TraceSpans {
    pub fn has_usage(&self) -> bool {
        self.usage_nodes.iter().any(|node| node.data.is_some())
    }

    pub fn has_cost(&self) -> bool {
        self.cost_nodes.iter().any(|node| node.data.is_some())
    }
}

/// An ingest batch: spans of one or more traces of an experiment.
#[derive(Debug, Clone)]
pub struct LogSpans {
    pub experiment_id: i64,
    /// The experiment's artifact location, for the `mlflow.artifactLocation` tag of created traces.
    pub experiment_artifact_location: String,
    pub traces: Vec<TraceSpans>,
}

/// A stored span, as read back for a trace.
#[derive(Debug, Clone)]
pub struct StoredSpan {
    pub trace_id: String,
    pub parent_span_id: Option<String>,
    pub start_time_unix_nano: i64,
    pub content: String,
}

/// A parsed trace search.
#[derive(Debug, Clone)]
pub struct TraceQuery {
    pub experiment_ids: Vec<i64>,
    pub filter: Vec<TraceCondition>,
    pub order_by: Vec<TraceOrderBy>,
    pub max_results: usize,
    pub offset: usize,
}

#[derive(Debug, Clone)]
pub struct TracePage {
    pub traces: Vec<TraceInfo>,
    pub has_more: bool,
}

/// Which traces `delete-traces` removes.
#[derive(Debug, Clone)]
pub enum TraceDeletion {
    Ids(Vec<String>),
    OlderThan {
        max_timestamp_millis: i64,
        max_traces: Option<i64>,
    },
}

/// Why an assessment write failed in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssessmentWrite {
    Done,
    TraceNotFound,
    OverriddenNotFound,
}

#[async_trait]
pub trait TraceStore: Send + Sync + 'static {
    /// Creates or merges the trace from StartTraceV3 in one transaction and returns it as stored.
    async fn start_trace(&self, trace: NewTrace) -> Result<TraceInfo>;
    /// Stores the spans of a batch and creates or updates their traces, in one transaction.
    async fn log_spans(&self, batch: LogSpans) -> Result<()>;
    /// The traces with these ids, in the order of `trace_ids`; missing ids are skipped.
    async fn trace_infos(&self, trace_ids: &[String]) -> Result<Vec<TraceInfo>>;
    /// The stored spans of these traces, any order.
    async fn trace_spans(&self, trace_ids: &[String]) -> Result<Vec<StoredSpan>>;
    /// One page of traces of the experiments matching the query.
    async fn search_traces(&self, query: TraceQuery) -> Result<TracePage>;
    /// Upserts a tag (`mlflow.traceName` goes to its column); false when there is no such trace.
    async fn set_trace_tag(&self, trace_id: &str, key: &str, value: &str) -> Result<bool>;
    /// `None` when there is no such trace, `Some(false)` when it has no such tag.
    async fn delete_trace_tag(&self, trace_id: &str, key: &str) -> Result<Option<bool>>;
    /// Deletes the experiment's selected traces with everything attached; returns how many.
    async fn delete_traces(&self, experiment_id: i64, deletion: TraceDeletion) -> Result<i64>;
    /// Adds `entity_associations` rows from each existing trace to the destination, keeping existing
    /// ones.
    async fn link_traces(
        &self,
        trace_ids: &[String],
        destination_type: &str,
        destination_ids: &[String],
        now: i64,
    ) -> Result<()>;
    /// Inserts the assessment (its experiment and trace time taken from the trace), marking the one it
    /// overrides invalid.
    async fn create_assessment(&self, assessment: &AssessmentRecord) -> Result<AssessmentWrite>;
    async fn get_assessment(
        &self,
        trace_id: &str,
        assessment_id: &str,
    ) -> Result<Option<AssessmentRecord>>;
    /// Rewrites the mutable columns of an existing assessment.
    async fn update_assessment(&self, assessment: &AssessmentRecord) -> Result<()>;
    /// Deletes it and makes valid again the one it overrode; a missing one is no error.
    async fn delete_assessment(&self, trace_id: &str, assessment_id: &str) -> Result<()>;
    async fn trace_exists(&self, trace_id: &str) -> Result<bool>;
}

/// The metadata MLflow synthesizes from the analytics columns when reading a trace:
/// `mlflow.trace.session`, `mlflow.trace.tokenUsage`, `mlflow.trace.cost` (Python JSON, keys in
/// MLflow's order).
pub fn analytics_metadata(analytics: &TraceAnalytics) -> Vec<(String, String)> {
    let mut metadata = Vec::new();
    if let Some(session) = &analytics.session_id {
        metadata.push((SESSION_METADATA.to_owned(), session.clone()));
    }
    let tokens: Vec<(String, OrderedJson)> = TOKEN_KEYS
        .iter()
        .zip(analytics.tokens.iter())
        .filter_map(|(key, value)| value.map(|value| ((*key).to_owned(), OrderedJson::Int(value))))
        .collect();
    if !tokens.is_empty() {
        metadata.push((
            TOKEN_USAGE_METADATA.to_owned(),
            OrderedJson::Object(tokens).python_dumps(true),
        ));
    }
    let costs: Vec<(String, OrderedJson)> = COST_KEYS
        .iter()
        .zip(analytics.costs.iter())
        .filter_map(|(key, value)| {
            value.map(|value| ((*key).to_owned(), OrderedJson::Float(value)))
        })
        .collect();
    if !costs.is_empty() {
        metadata.push((
            COST_METADATA.to_owned(),
            OrderedJson::Object(costs).python_dumps(true),
        ));
    }
    metadata
}

/// MLflow's `analytics_columns_from_metadata`: the columns a StartTraceV3's metadata sets.
fn analytics_from_metadata(metadata: &BTreeMap<String, String>) -> TraceAnalytics {
    let mut analytics = TraceAnalytics {
        session_id: metadata.get(SESSION_METADATA).cloned(),
        ..TraceAnalytics::default()
    };
    let object = |key: &str| match metadata.get(key).and_then(|text| OrderedJson::parse(text)) {
        Some(OrderedJson::Object(entries)) => entries,
        _ => Vec::new(),
    };
    for (key, value) in object(TOKEN_USAGE_METADATA) {
        if let Some(index) = TOKEN_KEYS.iter().position(|token_key| *token_key == key) {
            analytics.tokens[index] = value.as_f64().and_then(token_count);
        }
    }
    for (key, value) in object(COST_METADATA) {
        if let Some(index) = COST_KEYS.iter().position(|cost_key| *cost_key == key) {
            analytics.costs[index] = value.as_f64().filter(|value| value.is_finite());
        }
    }
    analytics
}
// ---------------------------------------------------------------------------------------------------------
// Assessments.
// ---------------------------------------------------------------------------------------------------------

/// Converts a JSON value to what protobuf's `Value` holds: every number a double.
fn protobuf_value(value: &serde_json::Value) -> OrderedJson {
    match value {
        serde_json::Value::Number(number) => OrderedJson::Float(number.as_f64().unwrap_or(0.0)),
        serde_json::Value::Array(items) => {
            OrderedJson::Array(items.iter().map(protobuf_value).collect())
        }
        serde_json::Value::Object(entries) => OrderedJson::Object(
            entries
                .iter()
                .map(|(key, value)| (key.clone(), protobuf_value(value)))
                .collect(),
        ),
        other => OrderedJson::from_serde(other),
    }
}

/// MLflow's `assessment_aggregate`: the number a search compares, and whether the value is numeric.
fn assessment_aggregate(value: &OrderedJson) -> (Option<f64>, bool) {
    match value {
        OrderedJson::Bool(flag) => (Some(if *flag { 1.0 } else { 0.0 }), false),
        OrderedJson::Int(_) | OrderedJson::UInt(_) | OrderedJson::Float(_) => {
            match value.as_f64().filter(|number| number.is_finite()) {
                Some(number) => (Some(number), true),
                None => (None, false),
            }
        }
        OrderedJson::String(text) => match text.trim().to_lowercase().as_str() {
            "yes" => (Some(1.0), false),
            "no" => (Some(0.0), false),
            _ => (None, false),
        },
        _ => (None, false),
    }
}

/// The value of an expectation: `value` (protobuf `Value`) or `serialized_value` JSON text.
fn expectation_value(expectation: &Expectation) -> Result<OrderedJson> {
    if let Some(serialized) = &expectation.serialized_value {
        let format = serialized.serialization_format.as_deref().unwrap_or("");
        if format != "JSON_FORMAT" {
            return Err(Error::invalid_parameter(format!(
                "Unknown serialization format: {format}. Only JSON_FORMAT is supported."
            )));
        }
        return OrderedJson::parse(serialized.value.as_deref().unwrap_or("")).ok_or_else(|| {
            Error::invalid_parameter("The serialized expectation value is not valid JSON")
        });
    }
    Ok(expectation
        .value
        .as_ref()
        .map_or(OrderedJson::Null, protobuf_value))
}

/// The wire form of a stored assessment (MLflow's `Assessment.to_proto`).
pub fn assessment_to_proto(record: &AssessmentRecord) -> Assessment {
    let value = attribute_value(&record.value);
    let (feedback, expectation) = match record.assessment_type.as_str() {
        "expectation" => {
            let primitive = matches!(
                value,
                OrderedJson::Bool(_)
                    | OrderedJson::Int(_)
                    | OrderedJson::UInt(_)
                    | OrderedJson::Float(_)
                    | OrderedJson::String(_)
            );
            let expectation = if primitive {
                Expectation {
                    value: Some(value.to_serde()),
                    serialized_value: None,
                }
            } else {
                Expectation {
                    value: None,
                    serialized_value: Some(SerializedValue {
                        serialization_format: Some("JSON_FORMAT".to_owned()),
                        value: Some(value.python_dumps(true)),
                    }),
                }
            };
            (None, Some(expectation))
        }
        _ => {
            let error = record
                .error
                .as_deref()
                .and_then(|error| serde_json::from_str::<AssessmentError>(error).ok());
            (
                Some(Feedback {
                    value: Some(value.to_serde()),
                    error,
                }),
                None,
            )
        }
    };
    let metadata: BTreeMap<String, String> = record
        .metadata
        .as_deref()
        .and_then(|text| serde_json::from_str::<BTreeMap<String, serde_json::Value>>(text).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                serde_json::Value::String(text) => text,
                other => OrderedJson::from_serde(&other).python_dumps(true),
            };
            (key, text)
        })
        .collect();
    Assessment {
        assessment_id: Some(record.assessment_id.clone()),
        assessment_name: Some(record.name.clone()),
        trace_id: Some(record.trace_id.clone()),
        span_id: record.span_id.clone(),
        source: Some(AssessmentSource {
            source_type: Some(record.source_type.clone()),
            source_id: record.source_id.clone(),
        }),
        create_time: Some(timestamp_from_millis(record.created_timestamp)),
        last_update_time: Some(timestamp_from_millis(record.last_updated_timestamp)),
        feedback,
        expectation,
        rationale: record.rationale.clone(),
        error: None,
        metadata,
        overrides: record.overrides.clone(),
        valid: Some(record.valid),
    }
}

/// A new `entity_associations` id: 32 lowercase hex characters.
pub fn new_association_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A new assessment id: `a-` and 32 lowercase hex characters.
pub fn new_assessment_id() -> String {
    format!("a-{}", uuid::Uuid::new_v4().simple())
}

fn metadata_json(metadata: &BTreeMap<String, String>) -> Option<String> {
    (!metadata.is_empty()).then(|| {
        OrderedJson::Object(
            metadata
                .iter()
                .map(|(key, value)| (key.clone(), OrderedJson::String(value.clone())))
                .collect(),
        )
        .python_dumps(true)
    })
}

// ---------------------------------------------------------------------------------------------------------
// The service.
// ---------------------------------------------------------------------------------------------------------

#[derive(Clone)]
pub struct TraceService {
    store: Arc<dyn TraceStore>,
    tracking: Arc<dyn TrackingStore>,
}

/// MLflow's answer for a trace whose spans have not all arrived.
pub fn trace_not_ready(trace_id: &str) -> Error {
    Error::not_found(format!(
        "Trace with ID {trace_id} is not fully exported yet, please try again later."
    ))
}

fn trace_not_found(trace_id: &str) -> Error {
    Error::not_found(format!("Trace with ID '{trace_id}' not found."))
}

/// A trace's wire info from its stored form.
pub fn trace_info_to_proto(info: &TraceInfo) -> TraceInfoV3 {
    TraceInfoV3 {
        trace_id: info.trace_id.clone(),
        client_request_id: info.client_request_id.clone(),
        trace_location: TraceLocation::experiment(info.experiment_id.clone()),
        request_preview: info.request_preview.clone(),
        response_preview: info.response_preview.clone(),
        request_time: timestamp_from_millis(info.request_time),
        execution_duration: info.execution_duration.map(duration_from_millis),
        state: info.state.clone(),
        trace_metadata: info.trace_metadata.clone(),
        assessments: info.assessments.iter().map(assessment_to_proto).collect(),
        tags: info.tags.clone(),
    }
}

fn experiment_number(experiment_id: &str) -> Result<i64> {
    experiment_id.trim().parse::<i64>().map_err(|_| {
        Error::invalid_parameter(format!(
            "Invalid experiment ID '{experiment_id}'. Experiment ID must be a valid integer."
        ))
    })
}

/// MLflow's `_validate_trace_tag`: a key of at most 250 characters; the value truncated to 8000.
fn validate_trace_tag(key: &str, value: &str) -> Result<String> {
    crate::validation::validate_key(key, "key")?;
    crate::validation::validate_length("key", MAX_TRACE_TAG_KEY_LENGTH, key)?;
    Ok(truncate_chars(value, MAX_TRACE_TAG_VALUE_LENGTH))
}

/// The protected tags a client may not set (or, except the archival failure, delete).
fn check_tag_mutation(key: &str, operation: &str) -> Result<()> {
    let blocked = [
        SPANS_LOCATION_TAG,
        ARCHIVE_LOCATION_TAG,
        ARCHIVAL_FAILURE_TAG,
    ]
    .contains(&key);
    if blocked && !(operation == "deleted" && key == ARCHIVAL_FAILURE_TAG) {
        return Err(Error::invalid_parameter(format!(
            "Tag '{key}' is immutable and cannot be {operation} on a trace."
        )));
    }
    Ok(())
}

/// The paths of a protobuf `FieldMask` in JSON (`"assessmentName,feedback"`) or as `{"paths": [...]}`,
/// in snake_case.
fn field_mask_paths(mask: &serde_json::Value) -> Vec<String> {
    let raw: Vec<String> = match mask {
        serde_json::Value::String(text) => text.split(',').map(str::to_owned).collect(),
        serde_json::Value::Object(fields) => match fields.get("paths") {
            Some(serde_json::Value::Array(paths)) => paths
                .iter()
                .filter_map(|path| path.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(path)) => vec![path.clone()],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    raw.into_iter()
        .map(|path| {
            let mut snake = String::new();
            for character in path.trim().chars() {
                if character.is_ascii_uppercase() {
                    snake.push('_');
                    snake.push(character.to_ascii_lowercase());
                } else {
                    snake.push(character);
                }
            }
            snake
        })
        .filter(|path| !path.is_empty())
        .collect()
}

impl TraceService {
    pub fn new(store: Arc<dyn TraceStore>, tracking: Arc<dyn TrackingStore>) -> Self {
        Self { store, tracking }
    }

    /// The active experiment, with MLflow's messages otherwise.
    async fn active_experiment(
        &self,
        experiment_id: &str,
    ) -> Result<ferroflow_proto::tracking::Experiment> {
        let experiment = self
            .tracking
            .get_experiment(experiment_id)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!("No Experiment with id={experiment_id} exists"))
            })?;
        if experiment.lifecycle_stage != LifecycleStage::Active.as_str() {
            return Err(Error::invalid_parameter(format!(
                "The experiment {} must be in the 'active' state. Current state is {}.",
                experiment.experiment_id, experiment.lifecycle_stage
            )));
        }
        Ok(experiment)
    }

    /// `POST /api/3.0/mlflow/traces` (StartTraceV3).
    pub async fn start_trace(&self, request: StartTraceV3) -> Result<TraceResponse> {
        let info = request
            .trace
            .ok_or_else(|| Error::missing_parameter("trace"))?
            .trace_info
            .unwrap_or_default();
        let trace_id = info
            .trace_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::invalid_parameter("The trace_info must have a trace_id"))?;
        let experiment_id = info
            .trace_location
            .and_then(|location| location.mlflow_experiment)
            .and_then(|experiment| experiment.experiment_id)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                Error::invalid_parameter("The trace location must be an MLflow experiment")
            })?;
        let experiment = self.active_experiment(&experiment_id).await?;
        let request_time = match info.request_time.as_deref() {
            None | Some("") => 0,
            Some(text) => millis_from_timestamp(text).ok_or_else(|| {
                Error::invalid_parameter(format!("Invalid request_time '{text}'"))
            })?,
        };
        let execution_duration = match info.execution_duration.as_deref() {
            None | Some("") => None,
            Some(text) => Some(millis_from_duration(text).ok_or_else(|| {
                Error::invalid_parameter(format!("Invalid execution_duration '{text}'"))
            })?),
        };
        let trace_name = match info.tags.get(TRACE_NAME_TAG) {
            Some(name) if name.chars().count() > MAX_TRACE_TAG_VALUE_LENGTH => {
                return Err(Error::invalid_parameter(format!(
                    "Trace name exceeds the maximum length of {MAX_TRACE_TAG_VALUE_LENGTH} characters"
                )))
            }
            other => other.cloned(),
        };
        let analytics = analytics_from_metadata(&info.trace_metadata);
        let artifact_location = format!(
            "{}/traces/{trace_id}/artifacts",
            experiment.artifact_location.trim_end_matches('/')
        );
        let mut tags: Vec<(String, String)> = info
            .tags
            .into_iter()
            .filter(|(key, _)| key != TRACE_NAME_TAG && key != ARTIFACT_LOCATION_TAG)
            .filter(|(key, _)| key != SPANS_LOCATION_TAG)
            .collect();
        tags.push((ARTIFACT_LOCATION_TAG.to_owned(), artifact_location));
        tags.push((SPANS_LOCATION_TAG.to_owned(), TRACKING_STORE.to_owned()));
        let mut metadata: Vec<(String, String)> = info
            .trace_metadata
            .into_iter()
            .filter(|(key, _)| {
                ![SESSION_METADATA, TOKEN_USAGE_METADATA, COST_METADATA].contains(&key.as_str())
            })
            .filter(|(key, _)| key != INFO_FINALIZED_METADATA)
            .collect();
        metadata.push((INFO_FINALIZED_METADATA.to_owned(), "true".to_owned()));
        let state = info
            .state
            .filter(|state| !state.is_empty())
            .unwrap_or_else(|| "STATE_UNSPECIFIED".to_owned());
        let stored = self
            .store
            .start_trace(NewTrace {
                trace_id,
                experiment_id: experiment_number(&experiment.experiment_id)?,
                request_time,
                execution_duration,
                state,
                client_request_id: info.client_request_id,
                request_preview: info
                    .request_preview
                    .map(|text| truncate_chars(&text, MAX_PREVIEW_LENGTH)),
                response_preview: info
                    .response_preview
                    .map(|text| truncate_chars(&text, MAX_PREVIEW_LENGTH)),
                trace_name,
                analytics,
                tags,
                metadata,
            })
            .await?;
        Ok(TraceResponse {
            trace: Trace {
                trace_info: trace_info_to_proto(&stored),
                spans: Vec::new(),
            },
        })
    }

    /// `POST /v1/traces`: stores decoded OTLP spans in the experiment of the `x-mlflow-experiment-id`
    /// header, then links the finished traces to the run of `x-mlflow-run-id` (a failed link is only
    /// logged by MLflow, so it is ignored here too). `Ok(false)` when a span cannot be converted
    /// (MLflow answers 422) and nothing was stored.
    pub async fn log_spans(
        &self,
        experiment_id: &str,
        run_id: Option<&str>,
        resources: &[OtlpResourceSpans],
    ) -> Result<bool> {
        let Ok(traces) = spans_from_otlp(resources) else {
            return Ok(false);
        };
        if traces.is_empty() {
            return Ok(true);
        }
        let experiment = self
            .tracking
            .get_experiment(experiment_id)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!("No Experiment with id={experiment_id} exists"))
            })?;
        let finished: Vec<String> = traces
            .iter()
            .filter(|trace| trace.root_state.is_some())
            .map(|trace| trace.trace_id.clone())
            .collect();
        self.store
            .log_spans(LogSpans {
                experiment_id: experiment_number(&experiment.experiment_id)?,
                experiment_artifact_location: experiment.artifact_location,
                traces,
            })
            .await?;
        if let (Some(run_id), false) = (run_id.filter(|id| !id.is_empty()), finished.is_empty()) {
            if self.tracking.get_run(run_id).await.ok().flatten().is_some() {
                let _ = self
                    .store
                    .link_traces(&finished, "run", &[run_id.to_owned()], now_millis())
                    .await;
            }
        }
        Ok(true)
    }

    /// `GET /api/3.0/mlflow/traces/{trace_id}`.
    pub async fn get_trace_info(&self, trace_id: &str) -> Result<TraceResponse> {
        let info = self
            .store
            .trace_infos(&[trace_id.to_owned()])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| trace_not_found(trace_id))?;
        Ok(TraceResponse {
            trace: Trace {
                trace_info: trace_info_to_proto(&info),
                spans: Vec::new(),
            },
        })
    }

    /// Traces with their spans: root spans first, then by start time (MLflow's order).
    async fn traces_with_spans(&self, infos: Vec<TraceInfo>) -> Result<Vec<Trace>> {
        let ids: Vec<String> = infos.iter().map(|info| info.trace_id.clone()).collect();
        let mut spans_by_trace: HashMap<String, Vec<StoredSpan>> = HashMap::new();
        for span in self.store.trace_spans(&ids).await? {
            spans_by_trace
                .entry(span.trace_id.clone())
                .or_default()
                .push(span);
        }
        Ok(infos
            .into_iter()
            .map(|info| {
                let mut spans = spans_by_trace.remove(&info.trace_id).unwrap_or_default();
                spans
                    .sort_by_key(|span| (span.parent_span_id.is_some(), span.start_time_unix_nano));
                Trace {
                    trace_info: trace_info_to_proto(&info),
                    spans: spans
                        .iter()
                        .filter_map(|span| otel_span_json(&span.content))
                        .collect(),
                }
            })
            .collect())
    }

    /// `GET /api/3.0/mlflow/traces/get`. Without `allow_partial`, a trace whose spans have not all
    /// arrived (fewer than `mlflow.trace.sizeStats` counts) is not ready yet: `Ok(None)`, and the caller
    /// may ask again a little later, as MLflow's store does, before answering [`trace_not_ready`].
    pub async fn get_trace(&self, request: &GetTrace) -> Result<Option<TraceResponse>> {
        let trace_id = request
            .trace_id
            .clone()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::missing_parameter("trace_id"))?;
        let allow_partial = request.allow_partial.unwrap_or(false);
        let info = self
            .store
            .trace_infos(std::slice::from_ref(&trace_id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found(format!("Trace with ID {trace_id} is not found.")))?;
        let expected_spans = info
            .trace_metadata
            .get(SIZE_STATS_METADATA)
            .and_then(|stats| OrderedJson::parse(stats))
            .and_then(|stats| stats.get("num_spans").and_then(OrderedJson::as_i64))
            .unwrap_or(0);
        let trace = self
            .traces_with_spans(vec![info])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| trace_not_found(&trace_id))?;
        let count = i64::try_from(trace.spans.len()).unwrap_or(i64::MAX);
        if !allow_partial && (trace.spans.is_empty() || count < expected_spans) {
            return Ok(None);
        }
        Ok(Some(TraceResponse { trace }))
    }

    /// The traces of `ids` that belong to the experiments, when those are given.
    async fn infos_in(
        &self,
        ids: &[String],
        experiment_ids: Option<&[String]>,
    ) -> Result<Vec<TraceInfo>> {
        let infos = self.store.trace_infos(ids).await?;
        Ok(match experiment_ids {
            None => infos,
            Some(allowed) => infos
                .into_iter()
                .filter(|info| allowed.contains(&info.experiment_id))
                .collect(),
        })
    }

    /// `GET /api/3.0/mlflow/traces/batchGet`: complete traces, missing ids skipped.
    pub async fn batch_get_traces(
        &self,
        request: BatchGetTraces,
    ) -> Result<BatchGetTracesResponse> {
        if request.trace_ids.is_empty() {
            return Err(Error::missing_parameter("trace_ids"));
        }
        let infos = self
            .infos_in(&request.trace_ids, request.experiment_ids.as_deref())
            .await?;
        Ok(BatchGetTracesResponse {
            traces: self.traces_with_spans(infos).await?,
        })
    }

    /// `POST /api/3.0/mlflow/traces/batchGetInfos`.
    pub async fn batch_get_trace_infos(
        &self,
        request: BatchGetTraces,
    ) -> Result<BatchGetTraceInfosResponse> {
        if request.trace_ids.is_empty() {
            return Err(Error::missing_parameter("trace_ids"));
        }
        let infos = self
            .infos_in(&request.trace_ids, request.experiment_ids.as_deref())
            .await?;
        Ok(BatchGetTraceInfosResponse {
            trace_infos: infos.iter().map(trace_info_to_proto).collect(),
        })
    }

    /// `POST /api/3.0/mlflow/traces/search`.
    pub async fn search_traces(&self, request: SearchTracesV3) -> Result<SearchTracesV3Response> {
        let locations = request
            .locations
            .ok_or_else(|| Error::missing_parameter("locations"))?;
        let max_results = match request.max_results {
            None | Some(0) => DEFAULT_SEARCH_TRACES_MAX_RESULTS,
            Some(value) if value > MAX_SEARCH_TRACES_MAX_RESULTS => {
                return Err(Error::invalid_parameter(format!(
                    "Invalid value {value} for parameter 'max_results' supplied. It must be at most \
                     {MAX_SEARCH_TRACES_MAX_RESULTS}"
                )))
            }
            Some(value) => usize::try_from(value).map_err(|_| {
                Error::invalid_parameter(format!(
                    "Invalid value {value} for parameter 'max_results' supplied. It must be a positive \
                     integer"
                ))
            })?,
        };
        let experiment_ids = locations
            .iter()
            .filter_map(|location| location.mlflow_experiment.as_ref())
            .filter_map(|experiment| experiment.experiment_id.as_deref())
            .map(experiment_number)
            .collect::<Result<Vec<i64>>>()?;
        let filter = parse_trace_filter(request.filter.as_deref().unwrap_or(""))?;
        let order_by = parse_trace_order_bys(&request.order_by)?;
        let offset = match request
            .page_token
            .as_deref()
            .filter(|token| !token.is_empty())
        {
            None => 0,
            Some(token) => decode_page_token(token)?,
        };
        let page = self
            .store
            .search_traces(TraceQuery {
                experiment_ids,
                filter,
                order_by,
                max_results,
                offset,
            })
            .await?;
        Ok(SearchTracesV3Response {
            traces: page.traces.iter().map(trace_info_to_proto).collect(),
            next_page_token: page
                .has_more
                .then(|| STANDARD.encode(format!("{{\"offset\": {}}}", offset + max_results))),
        })
    }

    /// `PATCH /traces/{id}/tags` (2.0 and 3.0).
    pub async fn set_trace_tag(&self, trace_id: &str, request: TraceTagRequest) -> Result<Empty> {
        let key = request
            .key
            .filter(|key| !key.is_empty())
            .ok_or_else(|| Error::missing_parameter("key"))?;
        check_tag_mutation(&key, "set")?;
        let value = validate_trace_tag(&key, request.value.as_deref().unwrap_or(""))?;
        if !self.store.set_trace_tag(trace_id, &key, &value).await? {
            return Err(trace_not_found(trace_id));
        }
        Ok(Empty {})
    }

    /// `DELETE /traces/{id}/tags` (2.0 and 3.0).
    pub async fn delete_trace_tag(
        &self,
        trace_id: &str,
        request: TraceTagRequest,
    ) -> Result<Empty> {
        let key = request
            .key
            .filter(|key| !key.is_empty())
            .ok_or_else(|| Error::missing_parameter("key"))?;
        check_tag_mutation(&key, "deleted")?;
        match self.store.delete_trace_tag(trace_id, &key).await? {
            None => Err(trace_not_found(trace_id)),
            Some(false) => Err(Error::not_found(format!(
                "No trace tag with key '{key}' for trace with ID '{trace_id}'"
            ))),
            Some(true) => Ok(Empty {}),
        }
    }

    /// `POST /traces/delete-traces` (2.0 and 3.0).
    pub async fn delete_traces(&self, request: DeleteTraces) -> Result<DeleteTracesResponse> {
        let experiment_id = request
            .experiment_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::missing_parameter("experiment_id"))?;
        let deletion = match (request.max_timestamp_millis, request.request_ids.is_empty()) {
            (None, true) => {
                return Err(Error::invalid_parameter(
                    "Either `max_timestamp_millis` or `trace_ids` must be specified.",
                ))
            }
            (Some(_), false) => {
                return Err(Error::invalid_parameter(
                    "Only one of `max_timestamp_millis` and `trace_ids` can be specified.",
                ))
            }
            (None, false) => {
                if request.max_traces.is_some() {
                    return Err(Error::invalid_parameter(
                        "`max_traces` can't be specified if `trace_ids` is specified.",
                    ));
                }
                TraceDeletion::Ids(request.request_ids)
            }
            (Some(max_timestamp_millis), true) => {
                if let Some(max_traces) = request.max_traces.filter(|max| *max <= 0) {
                    return Err(Error::invalid_parameter(format!(
                        "`max_traces` must be a positive integer, received {max_traces}."
                    )));
                }
                TraceDeletion::OlderThan {
                    max_timestamp_millis,
                    max_traces: request.max_traces,
                }
            }
        };
        let traces_deleted = self
            .store
            .delete_traces(experiment_number(&experiment_id)?, deletion)
            .await?;
        Ok(DeleteTracesResponse { traces_deleted })
    }

    /// `POST /traces/link-to-run`.
    pub async fn link_traces_to_run(&self, request: LinkTracesToRun) -> Result<Empty> {
        if request.trace_ids.is_empty() {
            return Err(Error::missing_parameter("trace_ids"));
        }
        let run_id = request
            .run_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::missing_parameter("run_id"))?;
        if request.trace_ids.len() > MAX_TRACE_LINKS_PER_REQUEST {
            return Err(Error::invalid_parameter(format!(
                "Cannot link more than {MAX_TRACE_LINKS_PER_REQUEST} traces to a run in a single \
                 request. Provided {} traces.",
                request.trace_ids.len()
            )));
        }
        if self.tracking.get_run(&run_id).await?.is_none() {
            return Err(Error::not_found(format!("Run with id={run_id} not found")));
        }
        self.store
            .link_traces(&request.trace_ids, "run", &[run_id], now_millis())
            .await?;
        Ok(Empty {})
    }

    /// `POST /traces/link-prompts`: associations to `name/version`.
    pub async fn link_prompts_to_trace(&self, request: LinkPromptsToTrace) -> Result<Empty> {
        let trace_id = request
            .trace_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::missing_parameter("trace_id"))?;
        if request.prompt_versions.is_empty() {
            return Err(Error::missing_parameter("prompt_versions"));
        }
        if !self.store.trace_exists(&trace_id).await? {
            return Err(trace_not_found(&trace_id));
        }
        let prompt_ids: Vec<String> = request
            .prompt_versions
            .iter()
            .map(|version| {
                format!(
                    "{}/{}",
                    version.name.as_deref().unwrap_or(""),
                    version.version.as_deref().unwrap_or("")
                )
            })
            .collect();
        self.store
            .link_traces(&[trace_id], "prompt_version", &prompt_ids, now_millis())
            .await?;
        Ok(Empty {})
    }

    /// `POST /traces/{trace_id}/assessments`.
    pub async fn create_assessment(
        &self,
        trace_id: &str,
        request: CreateAssessment,
    ) -> Result<AssessmentResponse> {
        let assessment = request
            .assessment
            .ok_or_else(|| Error::missing_parameter("assessment"))?;
        let now = now_millis();
        let time = |text: Option<&str>| -> Result<i64> {
            match text.filter(|text| !text.is_empty()) {
                None => Ok(now),
                Some(text) => millis_from_timestamp(text)
                    .filter(|millis| *millis != 0)
                    .map_or(Ok(now), Ok),
            }
        };
        let (assessment_type, value, error) = match (&assessment.feedback, &assessment.expectation)
        {
            (Some(feedback), _) => {
                let value = feedback
                    .value
                    .as_ref()
                    .map_or(OrderedJson::Null, protobuf_value);
                let error = feedback.error.as_ref().map(|error| {
                    OrderedJson::Object(vec![
                        (
                            "error_code".to_owned(),
                            error
                                .error_code
                                .clone()
                                .map_or(OrderedJson::Null, OrderedJson::String),
                        ),
                        (
                            "error_message".to_owned(),
                            error
                                .error_message
                                .clone()
                                .map_or(OrderedJson::Null, OrderedJson::String),
                        ),
                        (
                            "stack_trace".to_owned(),
                            error
                                .stack_trace
                                .clone()
                                .map_or(OrderedJson::Null, OrderedJson::String),
                        ),
                    ])
                    .python_dumps(true)
                });
                ("feedback", value, error)
            }
            (None, Some(expectation)) => ("expectation", expectation_value(expectation)?, None),
            (None, None) => return Err(Error::invalid_parameter("Unknown assessment type: None")),
        };
        let (aggregate_value, is_numeric_value) = assessment_aggregate(&value);
        let source = assessment.source.unwrap_or_default();
        let run_id = assessment
            .metadata
            .get("mlflow.assessment.sourceRunId")
            .cloned();
        let record = AssessmentRecord {
            assessment_id: new_assessment_id(),
            trace_id: trace_id.to_owned(),
            name: assessment.assessment_name.unwrap_or_default(),
            assessment_type: assessment_type.to_owned(),
            value: value.python_dumps(true),
            error,
            created_timestamp: time(assessment.create_time.as_deref())?,
            last_updated_timestamp: time(assessment.last_update_time.as_deref())?,
            source_type: source
                .source_type
                .filter(|kind| !kind.is_empty())
                .unwrap_or_else(|| "SOURCE_TYPE_UNSPECIFIED".to_owned()),
            source_id: source.source_id,
            run_id,
            span_id: assessment.span_id.filter(|id| !id.is_empty()),
            rationale: assessment.rationale.filter(|text| !text.is_empty()),
            overrides: assessment.overrides.filter(|id| !id.is_empty()),
            valid: true,
            metadata: metadata_json(&assessment.metadata),
            aggregate_value,
            is_numeric_value,
        };
        match self.store.create_assessment(&record).await? {
            AssessmentWrite::Done => Ok(AssessmentResponse {
                assessment: assessment_to_proto(&record),
            }),
            AssessmentWrite::TraceNotFound => Err(trace_not_found(trace_id)),
            AssessmentWrite::OverriddenNotFound => Err(Error::not_found(format!(
                "Assessment with ID '{}' not found for trace '{trace_id}'",
                record.overrides.as_deref().unwrap_or("")
            ))),
        }
    }

    async fn existing_assessment(
        &self,
        trace_id: &str,
        assessment_id: &str,
    ) -> Result<AssessmentRecord> {
        if let Some(record) = self.store.get_assessment(trace_id, assessment_id).await? {
            return Ok(record);
        }
        if !self.store.trace_exists(trace_id).await? {
            return Err(Error::not_found(format!(
                "Trace with request_id '{trace_id}' not found"
            )));
        }
        Err(Error::not_found(format!(
            "Assessment with ID '{assessment_id}' not found for trace '{trace_id}'"
        )))
    }

    /// `GET /traces/{trace_id}/assessments/{assessment_id}`.
    pub async fn get_assessment(
        &self,
        trace_id: &str,
        assessment_id: &str,
    ) -> Result<AssessmentResponse> {
        let record = self.existing_assessment(trace_id, assessment_id).await?;
        Ok(AssessmentResponse {
            assessment: assessment_to_proto(&record),
        })
    }

    /// `PATCH /traces/{trace_id}/assessments/{assessment_id}`: the fields named by `update_mask`.
    pub async fn update_assessment(
        &self,
        trace_id: &str,
        assessment_id: &str,
        request: UpdateAssessment,
    ) -> Result<AssessmentResponse> {
        let assessment = request
            .assessment
            .ok_or_else(|| Error::missing_parameter("assessment"))?;
        let paths = request
            .update_mask
            .as_ref()
            .map(field_mask_paths)
            .ok_or_else(|| Error::missing_parameter("update_mask"))?;
        let mut record = self.existing_assessment(trace_id, assessment_id).await?;
        let wants_feedback = paths.iter().any(|path| path == "feedback");
        let wants_expectation = paths.iter().any(|path| path == "expectation");
        if wants_feedback && wants_expectation {
            return Err(Error::invalid_parameter(
                "Cannot specify both `expectation` and `feedback` parameters.",
            ));
        }
        if wants_expectation && record.assessment_type != "expectation" {
            return Err(Error::invalid_parameter(
                "Cannot update expectation value on a Feedback assessment.",
            ));
        }
        if wants_feedback && record.assessment_type != "feedback" {
            return Err(Error::invalid_parameter(
                "Cannot update feedback value on an Expectation assessment.",
            ));
        }
        for path in &paths {
            match path.as_str() {
                "assessment_name" => {
                    record.name = assessment.assessment_name.clone().unwrap_or_default();
                }
                "feedback" => {
                    let feedback = assessment.feedback.clone().unwrap_or_default();
                    let value = feedback
                        .value
                        .as_ref()
                        .map_or(OrderedJson::Null, protobuf_value);
                    (record.aggregate_value, record.is_numeric_value) =
                        assessment_aggregate(&value);
                    record.value = value.python_dumps(true);
                    record.error = feedback.error.map(|error| {
                        serde_json::json!({
                            "error_code": error.error_code,
                            "error_message": error.error_message,
                            "stack_trace": error.stack_trace,
                        })
                        .to_string()
                    });
                }
                "expectation" => {
                    let value =
                        expectation_value(&assessment.expectation.clone().unwrap_or_default())?;
                    (record.aggregate_value, record.is_numeric_value) =
                        assessment_aggregate(&value);
                    record.value = value.python_dumps(true);
                }
                "rationale" if record.assessment_type == "feedback" => {
                    record.rationale = assessment.rationale.clone();
                }
                "metadata" => {
                    let mut merged: BTreeMap<String, String> = record
                        .metadata
                        .as_deref()
                        .and_then(|text| serde_json::from_str(text).ok())
                        .unwrap_or_default();
                    merged.extend(assessment.metadata.clone());
                    record.metadata = metadata_json(&merged);
                }
                _ => {}
            }
        }
        record.last_updated_timestamp = now_millis();
        self.store.update_assessment(&record).await?;
        Ok(AssessmentResponse {
            assessment: assessment_to_proto(&record),
        })
    }

    /// `DELETE /traces/{trace_id}/assessments/{assessment_id}`.
    pub async fn delete_assessment(&self, trace_id: &str, assessment_id: &str) -> Result<Empty> {
        if !self.store.trace_exists(trace_id).await? {
            return Err(trace_not_found(trace_id));
        }
        self.store
            .delete_assessment(trace_id, assessment_id)
            .await?;
        Ok(Empty {})
    }
}

/// The offset of MLflow's trace page token, base64 of `{"offset": N}`.
fn decode_page_token(token: &str) -> Result<usize> {
    let invalid = || Error::invalid_parameter(format!("Invalid page token: {token}"));
    let bytes = STANDARD.decode(token.trim()).map_err(|_| invalid())?;
    let parsed: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    parsed
        .get("offset")
        .and_then(serde_json::Value::as_u64)
        .and_then(|offset| usize::try_from(offset).ok())
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analytics_metadata_is_python_json() {
        let analytics = TraceAnalytics {
            session_id: Some("s".into()),
            tokens: [Some(3), Some(4), Some(7), None, None, None],
            costs: [None, None, Some(0.5)],
        };
        assert_eq!(
            analytics_metadata(&analytics),
            vec![
                (SESSION_METADATA.to_owned(), "s".to_owned()),
                (
                    TOKEN_USAGE_METADATA.to_owned(),
                    "{\"input_tokens\": 3, \"output_tokens\": 4, \"total_tokens\": 7}".to_owned()
                ),
                (COST_METADATA.to_owned(), "{\"total_cost\": 0.5}".to_owned()),
            ]
        );
        let mut metadata = BTreeMap::new();
        metadata.insert(
            TOKEN_USAGE_METADATA.to_owned(),
            "{\"input_tokens\": 3, \"output_tokens\": 4, \"total_tokens\": 7}".to_owned(),
        );
        assert_eq!(
            analytics_from_metadata(&metadata).tokens,
            [Some(3), Some(4), Some(7), None, None, None]
        );
    }

    #[test]
    fn assessments_render_like_mlflow() {
        let record = AssessmentRecord {
            assessment_id: "a-1".into(),
            trace_id: "tr-1".into(),
            name: "exp".into(),
            assessment_type: "expectation".into(),
            value: "{\"a\": [1, 2]}".into(),
            error: None,
            created_timestamp: 1_795_688_213_179,
            last_updated_timestamp: 1_795_688_213_179,
            source_type: "HUMAN".into(),
            source_id: Some("default".into()),
            run_id: None,
            span_id: None,
            rationale: None,
            overrides: None,
            valid: true,
            metadata: None,
            aggregate_value: None,
            is_numeric_value: false,
        };
        assert_eq!(
            serde_json::to_string(&assessment_to_proto(&record)).unwrap(),
            r#"{"assessment_id":"a-1","assessment_name":"exp","trace_id":"tr-1","source":{"source_type":"HUMAN","source_id":"default"},"create_time":"2026-11-26T10:16:53.179Z","last_update_time":"2026-11-26T10:16:53.179Z","expectation":{"serialized_value":{"serialization_format":"JSON_FORMAT","value":"{\"a\": [1, 2]}"}},"valid":true}"#
        );
        assert_eq!(
            assessment_aggregate(&protobuf_value(&serde_json::json!(5))),
            (Some(5.0), true)
        );
        assert_eq!(
            protobuf_value(&serde_json::json!(5)).python_dumps(true),
            "5.0"
        );
        assert_eq!(
            assessment_aggregate(&OrderedJson::String("Yes".into())),
            (Some(1.0), false)
        );
    }

    #[test]
    fn field_masks() {
        assert_eq!(
            field_mask_paths(&serde_json::json!("assessmentName,feedback")),
            vec!["assessment_name", "feedback"]
        );
        assert_eq!(
            field_mask_paths(&serde_json::json!({"paths": ["rationale"]})),
            vec!["rationale"]
        );
    }

    #[test]
    fn page_tokens() {
        assert_eq!(decode_page_token("eyJvZmZzZXQiOiAyfQ==").unwrap(), 2);
        assert!(decode_page_token("garbage").is_err());
    }
}
