//! MLflow spans from OpenTelemetry: the decoded OTLP input, its conversion into the `spans` rows MLflow
//! stores (MLflow's `Span.from_otel_proto`, `translate_span_when_storing` and the per-trace aggregates
//! of its `log_spans`), MLflow's tree-aware token usage and cost sums, and the stored span JSON turned
//! back into OpenTelemetry `Span` JSON for `GetTrace`. No I/O.

use crate::trace_filter::TRACE_NAME_TAG;
use crate::trace_json::OrderedJson;
use crate::traces::{
    AggregationNode, SpanRecord, TraceSpans, COST_KEYS, MAX_PREVIEW_LENGTH,
    MAX_TRACE_TAG_KEY_LENGTH, MAX_TRACE_TAG_VALUE_LENGTH, TOKEN_KEYS,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::collections::{HashMap, HashSet};

const REQUEST_ID_ATTRIBUTE: &str = "mlflow.traceRequestId";
const SPAN_TYPE_ATTRIBUTE: &str = "mlflow.spanType";
const INPUTS_ATTRIBUTE: &str = "mlflow.spanInputs";
const OUTPUTS_ATTRIBUTE: &str = "mlflow.spanOutputs";
const USAGE_ATTRIBUTE: &str = "mlflow.chat.tokenUsage";
const COST_ATTRIBUTE: &str = "mlflow.llm.cost";
const MODEL_ATTRIBUTE: &str = "mlflow.llm.model";
const PROVIDER_ATTRIBUTE: &str = "mlflow.llm.provider";
const TRACE_TAG_PREFIX: &str = "mlflow.traceTag.";
const MODEL_DIMENSION_MAX_LENGTH: usize = 500;

#[derive(Debug, Clone, Default)]
pub struct OtlpEvent {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: Vec<(String, OrderedJson)>,
}

#[derive(Debug, Clone, Default)]
pub struct OtlpLink {
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub attributes: Vec<(String, OrderedJson)>,
}

/// An OpenTelemetry span, attribute values decoded from `AnyValue` (bytes as base64 text).
#[derive(Debug, Clone, Default)]
pub struct OtlpSpan {
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub parent_span_id: Vec<u8>,
    pub name: String,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    /// 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    pub status_message: String,
    pub attributes: Vec<(String, OrderedJson)>,
    pub events: Vec<OtlpEvent>,
    pub links: Vec<OtlpLink>,
}

/// The spans of one OTLP `ResourceSpans` with the resource's attributes.
#[derive(Debug, Clone, Default)]
pub struct OtlpResourceSpans {
    pub resource_attributes: Vec<(String, OrderedJson)>,
    pub spans: Vec<OtlpSpan>,
}

/// Why an OTLP batch cannot become MLflow spans (answered 422 as MLflow does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnconvertibleSpan;

/// Service names MLflow copies onto root spans (`service.name` of known agent CLIs).
const KNOWN_SERVICE_NAMES: [&str; 5] = [
    "claude-code",
    "codex_cli_rs",
    "codex_vscode",
    "gemini-cli",
    "qwen-code",
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The MLflow trace id of an OpenTelemetry trace id: `tr-` and 32 hex digits.
pub fn mlflow_trace_id(otel_trace_id: &[u8]) -> String {
    format!("tr-{}", hex(&left_pad(otel_trace_id, 16)))
}

/// Big-endian bytes widened to `width` (OpenTelemetry ids are fixed width).
fn left_pad(bytes: &[u8], width: usize) -> Vec<u8> {
    let significant: Vec<u8> = bytes
        .iter()
        .copied()
        .skip_while(|byte| *byte == 0)
        .collect();
    let mut padded = vec![0u8; width.saturating_sub(significant.len())];
    padded.extend(significant);
    padded
}

/// MLflow's `sanitize_attributes`: a value dumped twice (a JSON string whose text is itself a JSON
/// string, object or array) loses one layer.
fn sanitize_attribute(dumped: String) -> String {
    if let Some(OrderedJson::String(inner)) = OrderedJson::parse(&dumped) {
        if matches!(
            OrderedJson::parse(&inner),
            Some(OrderedJson::String(_) | OrderedJson::Array(_) | OrderedJson::Object(_))
        ) {
            return inner;
        }
    }
    dumped
}

/// MLflow's `_get_truncated_preview` for a JSON text (chat message extraction aside).
fn preview(text: &str) -> String {
    if text.chars().count() <= MAX_PREVIEW_LENGTH {
        return text.to_owned();
    }
    let kept: String = text.chars().take(MAX_PREVIEW_LENGTH - 3).collect();
    format!("{kept}...")
}

/// Python's `value[:limit]` on characters.
pub(crate) fn truncate_chars(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

/// The value of a stored (dumped) attribute: the JSON it holds, or the text itself when not JSON.
pub(crate) fn attribute_value(dumped: &str) -> OrderedJson {
    OrderedJson::parse(dumped).unwrap_or_else(|| OrderedJson::String(dumped.to_owned()))
}

/// An aggregation node from a span's (dumped) usage or cost attribute.
fn aggregation_node(
    span_id: &str,
    parent_id: Option<&str>,
    dumped: Option<&str>,
) -> AggregationNode {
    let data = dumped.map(attribute_value).and_then(|value| {
        // A value dumped twice holds the object as text.
        let value = match value {
            OrderedJson::String(text) => OrderedJson::parse(&text)?,
            other => other,
        };
        match value {
            OrderedJson::Object(entries) => Some(
                entries
                    .into_iter()
                    .filter_map(|(key, value)| value.as_f64().map(|number| (key, number)))
                    .collect(),
            ),
            _ => None,
        }
    });
    AggregationNode {
        span_id: span_id.to_owned(),
        parent_id: parent_id.map(str::to_owned),
        data,
    }
}

/// The usage and cost nodes of a stored span, from its content JSON.
pub fn aggregation_nodes_of_content(
    span_id: &str,
    parent_id: Option<&str>,
    content: &str,
) -> (AggregationNode, AggregationNode) {
    let attributes =
        OrderedJson::parse(content).and_then(|parsed| parsed.get("attributes").cloned());
    let attribute = |key: &str| {
        attributes
            .as_ref()
            .and_then(|attributes| attributes.get(key))
            .and_then(OrderedJson::as_str)
            .map(str::to_owned)
    };
    (
        aggregation_node(span_id, parent_id, attribute(USAGE_ATTRIBUTE).as_deref()),
        aggregation_node(span_id, parent_id, attribute(COST_ATTRIBUTE).as_deref()),
    )
}

/// MLflow's tree-aware sum: a span's values count unless an ancestor already carried values (rollup
/// integrations put the total on the parent too). `keys` are always in the result, `optional_keys`
/// when some node has them. `None` when no node has data.
pub fn aggregate_nodes(
    nodes: &[AggregationNode],
    keys: &[&str],
    optional_keys: &[&str],
) -> Option<Vec<(String, f64)>> {
    let ids: HashSet<&str> = nodes.iter().map(|node| node.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<&AggregationNode>> = HashMap::new();
    let mut stack: Vec<(&AggregationNode, bool)> = Vec::new();
    for node in nodes {
        match node.parent_id.as_deref() {
            Some(parent) if ids.contains(parent) => children.entry(parent).or_default().push(node),
            _ => stack.push((node, false)),
        }
    }
    let mut totals: Vec<(String, f64)> = keys.iter().map(|key| ((*key).to_owned(), 0.0)).collect();
    let mut has_data = false;
    while let Some((node, ancestor_has_data)) = stack.pop() {
        if let (Some(data), false) = (&node.data, ancestor_has_data) {
            for (key, value) in data {
                if keys.contains(&key.as_str()) || optional_keys.contains(&key.as_str()) {
                    match totals.iter_mut().find(|(total_key, _)| total_key == key) {
                        Some(total) => total.1 += value,
                        None => totals.push((key.clone(), *value)),
                    }
                }
            }
            has_data = true;
        }
        let next = ancestor_has_data || node.data.is_some();
        if let Some(kids) = children.get(node.span_id.as_str()) {
            stack.extend(kids.iter().map(|kid| (*kid, next)));
        }
    }
    has_data.then_some(totals)
}

/// Token usage of span nodes as the trace's token columns.
pub fn token_columns(nodes: &[AggregationNode]) -> Option<[Option<i64>; 6]> {
    let totals = aggregate_nodes(nodes, &TOKEN_KEYS[..3], &TOKEN_KEYS[3..])?;
    let mut columns = [None; 6];
    for (index, key) in TOKEN_KEYS.iter().enumerate() {
        columns[index] = totals
            .iter()
            .find(|(total_key, _)| total_key == key)
            .and_then(|(_, value)| token_count(*value));
    }
    Some(columns)
}

/// Cost of span nodes as the trace's cost columns.
pub fn cost_columns(nodes: &[AggregationNode]) -> Option<[Option<f64>; 3]> {
    let totals = aggregate_nodes(nodes, &COST_KEYS, &[])?;
    let mut columns = [None; 3];
    for (index, key) in COST_KEYS.iter().enumerate() {
        columns[index] = totals
            .iter()
            .find(|(total_key, _)| total_key == key)
            .map(|(_, value)| *value)
            .filter(|value| value.is_finite());
    }
    Some(columns)
}

pub(crate) fn token_count(value: f64) -> Option<i64> {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    (value.is_finite() && value.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&value))
        .then_some(value as i64)
}

/// The MLflow span type of a GenAI semantic-convention `gen_ai.operation.name`.
fn genai_span_type(operation: &str) -> Option<&'static str> {
    Some(match operation {
        "chat" => "CHAT_MODEL",
        "create_agent" | "invoke_agent" => "AGENT",
        "embeddings" => "EMBEDDING",
        "execute_tool" => "TOOL",
        "generate_content" | "text_completion" | "response" => "LLM",
        _ => return None,
    })
}

/// An integer attribute as MLflow's `_parse_int_attribute` reads a dumped value: a JSON integer, or
/// a JSON string holding one.
fn dumped_integer(dumped: &str) -> Option<i64> {
    match attribute_value(dumped) {
        OrderedJson::Int(number) => Some(number),
        OrderedJson::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// MLflow's `translate_span_when_storing` for the OpenTelemetry GenAI semantic conventions
/// (`gen_ai.*`): span type, inputs, outputs, token usage, model and provider, each only where the
/// span does not carry MLflow's own attribute. Attribute values are dumped JSON texts.
fn translate_genai_attributes(attributes: &mut Vec<(String, String)>) {
    let get = |attributes: &[(String, String)], key: &str| {
        attributes
            .iter()
            .find(|(existing, _)| existing == key)
            .map(|(_, value)| value.clone())
    };
    let mut added: Vec<(String, String)> = Vec::new();
    let current_type = get(attributes, SPAN_TYPE_ATTRIBUTE).map(|dumped| attribute_value(&dumped));
    if matches!(current_type, None | Some(OrderedJson::String(_)))
        && current_type
            .as_ref()
            .and_then(OrderedJson::as_str)
            .is_none_or(|kind| kind == "UNKNOWN")
    {
        if let Some(kind) = get(attributes, "gen_ai.operation.name")
            .map(|dumped| attribute_value(&dumped))
            .and_then(|value| value.as_str().and_then(genai_span_type))
        {
            match attributes
                .iter_mut()
                .find(|(key, _)| key == SPAN_TYPE_ATTRIBUTE)
            {
                Some(entry) => entry.1 = OrderedJson::String(kind.to_owned()).python_dumps(false),
                None => added.push((
                    SPAN_TYPE_ATTRIBUTE.to_owned(),
                    OrderedJson::String(kind.to_owned()).python_dumps(false),
                )),
            }
        }
    }
    let first_present = |attributes: &[(String, String)], keys: &[&str]| {
        keys.iter().find_map(|key| get(attributes, key))
    };
    if get(attributes, INPUTS_ATTRIBUTE).is_none() {
        if let Some(value) = first_present(
            attributes,
            &["gen_ai.input.messages", "gen_ai.tool.call.arguments"],
        ) {
            added.push((INPUTS_ATTRIBUTE.to_owned(), value));
        }
    }
    if get(attributes, OUTPUTS_ATTRIBUTE).is_none() {
        if let Some(value) = first_present(
            attributes,
            &["gen_ai.output.messages", "gen_ai.tool.call.result"],
        ) {
            added.push((OUTPUTS_ATTRIBUTE.to_owned(), value));
        }
    }
    if get(attributes, USAGE_ATTRIBUTE).is_none() {
        let integer = |key: &str| get(attributes, key).and_then(|dumped| dumped_integer(&dumped));
        let input = integer("gen_ai.usage.input_tokens");
        let output = integer("gen_ai.usage.output_tokens");
        if input.is_some() || output.is_some() {
            let mut usage = Vec::new();
            if let Some(input) = input {
                usage.push(("input_tokens".to_owned(), OrderedJson::Int(input)));
            }
            if let Some(output) = output {
                usage.push(("output_tokens".to_owned(), OrderedJson::Int(output)));
            }
            if let (Some(input), Some(output)) = (input, output) {
                usage.push((
                    "total_tokens".to_owned(),
                    OrderedJson::Int(input.saturating_add(output)),
                ));
            }
            if let Some(cache_read) = integer("gen_ai.usage.cache_read.input_tokens") {
                usage.push((
                    "cache_read_input_tokens".to_owned(),
                    OrderedJson::Int(cache_read),
                ));
            }
            if let Some(cache_write) = integer("gen_ai.usage.cache_write.input_tokens")
                .or_else(|| integer("gen_ai.usage.cache_creation.input_tokens"))
            {
                usage.push((
                    "cache_creation_input_tokens".to_owned(),
                    OrderedJson::Int(cache_write),
                ));
            }
            added.push((
                USAGE_ATTRIBUTE.to_owned(),
                OrderedJson::Object(usage).python_dumps(false),
            ));
        }
    }
    let decoded_text = |dumped: String| match attribute_value(&dumped) {
        OrderedJson::String(text) if !text.is_empty() => Some(text),
        _ => None,
    };
    if get(attributes, MODEL_ATTRIBUTE).is_none() {
        if let Some(model) = first_present(
            attributes,
            &["gen_ai.response.model", "gen_ai.request.model"],
        )
        .and_then(decoded_text)
        {
            added.push((
                MODEL_ATTRIBUTE.to_owned(),
                OrderedJson::String(model).python_dumps(false),
            ));
        }
    }
    if get(attributes, PROVIDER_ATTRIBUTE).is_none() {
        if let Some(provider) = get(attributes, "gen_ai.provider.name").and_then(decoded_text) {
            added.push((
                PROVIDER_ATTRIBUTE.to_owned(),
                OrderedJson::String(provider).python_dumps(false),
            ));
        }
    }
    attributes.extend(added);
}

/// The attribute object of a span's content, in order, as a Python dict of dumped values.
fn span_content(
    span: &OtlpSpan,
    attributes: &[(String, String)],
    links: Vec<OrderedJson>,
) -> String {
    let parent = if span.parent_span_id.is_empty() {
        OrderedJson::Null
    } else {
        OrderedJson::String(STANDARD.encode(left_pad(&span.parent_span_id, 8)))
    };
    let status_code = match span.status_code {
        1 => "STATUS_CODE_OK",
        2 => "STATUS_CODE_ERROR",
        _ => "STATUS_CODE_UNSET",
    };
    let nanos = |value: u64| match i64::try_from(value) {
        Ok(value) => OrderedJson::Int(value),
        Err(_) => OrderedJson::UInt(value),
    };
    let events = span
        .events
        .iter()
        .map(|event| {
            OrderedJson::Object(vec![
                ("name".to_owned(), OrderedJson::String(event.name.clone())),
                ("time_unix_nano".to_owned(), nanos(event.time_unix_nano)),
                (
                    "attributes".to_owned(),
                    OrderedJson::Object(event.attributes.clone()),
                ),
            ])
        })
        .collect();
    let content = OrderedJson::Object(vec![
        (
            "trace_id".to_owned(),
            OrderedJson::String(STANDARD.encode(left_pad(&span.trace_id, 16))),
        ),
        (
            "span_id".to_owned(),
            OrderedJson::String(STANDARD.encode(left_pad(&span.span_id, 8))),
        ),
        ("parent_span_id".to_owned(), parent),
        ("name".to_owned(), OrderedJson::String(span.name.clone())),
        (
            "start_time_unix_nano".to_owned(),
            nanos(span.start_time_unix_nano),
        ),
        (
            "end_time_unix_nano".to_owned(),
            if span.end_time_unix_nano == 0 {
                OrderedJson::Null
            } else {
                nanos(span.end_time_unix_nano)
            },
        ),
        ("events".to_owned(), OrderedJson::Array(events)),
        (
            "status".to_owned(),
            OrderedJson::Object(vec![
                (
                    "code".to_owned(),
                    OrderedJson::String(status_code.to_owned()),
                ),
                (
                    "message".to_owned(),
                    OrderedJson::String(span.status_message.clone()),
                ),
            ]),
        ),
        (
            "attributes".to_owned(),
            OrderedJson::Object(
                attributes
                    .iter()
                    .map(|(key, value)| (key.clone(), OrderedJson::String(value.clone())))
                    .collect(),
            ),
        ),
        ("links".to_owned(), OrderedJson::Array(links)),
    ]);
    content.python_dumps(false)
}

/// Turns decoded OTLP spans into MLflow's stored spans, grouped by trace with what each batch implies
/// about its trace (MLflow's `Span.from_otel_proto`, `translate_span_when_storing` and the aggregates
/// of `log_spans`). OpenTelemetry semantic-convention translations (OpenInference, GenAI...) are not
/// applied.
pub fn spans_from_otlp(
    resources: &[OtlpResourceSpans],
) -> Result<Vec<TraceSpans>, UnconvertibleSpan> {
    let mut traces: Vec<TraceSpans> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    for resource in resources {
        let service_name = resource
            .resource_attributes
            .iter()
            .find(|(key, _)| key == "service.name")
            .and_then(|(_, value)| value.as_str())
            .filter(|name| KNOWN_SERVICE_NAMES.contains(name))
            .map(str::to_owned);
        let resource_tags: Vec<(String, String)> = resource
            .resource_attributes
            .iter()
            .filter(|(key, _)| !key.starts_with("telemetry.sdk.") && !key.starts_with("mlflow."))
            .filter(|(key, _)| !key.is_empty() && key.chars().count() <= MAX_TRACE_TAG_KEY_LENGTH)
            .map(|(key, value)| {
                let text = match value {
                    OrderedJson::String(text) => text.clone(),
                    other => other.python_dumps(true),
                };
                (
                    key.clone(),
                    truncate_chars(&text, MAX_TRACE_TAG_VALUE_LENGTH),
                )
            })
            .collect();
        for span in &resource.spans {
            if span.trace_id.is_empty()
                || span.span_id.is_empty()
                || span.trace_id.len() > 16
                || span.span_id.len() > 8
                || span.parent_span_id.len() > 8
            {
                return Err(UnconvertibleSpan);
            }
            let trace_id = mlflow_trace_id(&span.trace_id);
            let span_id = hex(&left_pad(&span.span_id, 8));
            let is_root = span.parent_span_id.is_empty();
            let parent_span_id = (!is_root).then(|| hex(&left_pad(&span.parent_span_id, 8)));
            let start_time =
                i64::try_from(span.start_time_unix_nano).map_err(|_| UnconvertibleSpan)?;
            let end_time = match span.end_time_unix_nano {
                0 => None,
                end => Some(i64::try_from(end).map_err(|_| UnconvertibleSpan)?),
            };

            // Attribute values dumped as MLflow does, the request id replaced, then sanitized.
            let mut attributes: Vec<(String, String)> =
                Vec::with_capacity(span.attributes.len() + 1);
            let mut put = |key: &str, value: String| match attributes
                .iter_mut()
                .find(|(existing, _)| existing == key)
            {
                Some(entry) => entry.1 = value,
                None => attributes.push((key.to_owned(), value)),
            };
            for (key, value) in &span.attributes {
                put(key, value.python_dumps(false));
            }
            put(
                REQUEST_ID_ATTRIBUTE,
                OrderedJson::String(trace_id.clone()).python_dumps(false),
            );
            if let (true, Some(service)) = (is_root, &service_name) {
                put(
                    "service.name",
                    OrderedJson::String(service.clone()).python_dumps(false),
                );
            }
            let mut attributes: Vec<(String, String)> = attributes
                .into_iter()
                .map(|(key, value)| (key, sanitize_attribute(value)))
                .collect();
            translate_genai_attributes(&mut attributes);
            let attribute = |key: &str| {
                attributes
                    .iter()
                    .find(|(existing, _)| existing == key)
                    .map(|(_, value)| value.as_str())
            };
            let decoded_string = |key: &str| match attribute(key).map(attribute_value) {
                Some(OrderedJson::String(text)) => Some(text),
                _ => None,
            };

            let links = span
                .links
                .iter()
                .map(|link| {
                    OrderedJson::Object(vec![
                        (
                            "trace_id".to_owned(),
                            OrderedJson::String(mlflow_trace_id(&link.trace_id)),
                        ),
                        (
                            "span_id".to_owned(),
                            OrderedJson::String(hex(&left_pad(&link.span_id, 8))),
                        ),
                        (
                            "attributes".to_owned(),
                            if link.attributes.is_empty() {
                                OrderedJson::Null
                            } else {
                                OrderedJson::Object(link.attributes.clone())
                            },
                        ),
                    ])
                })
                .collect();
            let content = span_content(span, &attributes, links);
            let cost = attribute(COST_ATTRIBUTE).map(attribute_value);
            let cost_of = |key: &str| {
                cost.as_ref()
                    .and_then(|cost| cost.get(key))
                    .and_then(OrderedJson::as_f64)
                    .filter(|value| value.is_finite())
            };
            let record = SpanRecord {
                trace_id: trace_id.clone(),
                span_id: span_id.clone(),
                parent_span_id: parent_span_id.clone(),
                name: span.name.clone(),
                span_type: decoded_string(SPAN_TYPE_ATTRIBUTE),
                status: match span.status_code {
                    1 => "OK",
                    2 => "ERROR",
                    _ => "UNSET",
                }
                .to_owned(),
                start_time_unix_nano: start_time,
                end_time_unix_nano: end_time,
                content,
                input_cost: cost_of("input_cost"),
                output_cost: cost_of("output_cost"),
                total_cost: cost_of("total_cost"),
                model_name: decoded_string(MODEL_ATTRIBUTE)
                    .map(|name| truncate_chars(&name, MODEL_DIMENSION_MAX_LENGTH)),
                model_provider: decoded_string(PROVIDER_ATTRIBUTE)
                    .map(|name| truncate_chars(&name, MODEL_DIMENSION_MAX_LENGTH)),
            };

            let position = *index_of.entry(trace_id.clone()).or_insert_with(|| {
                traces.push(TraceSpans {
                    trace_id: trace_id.clone(),
                    spans: Vec::new(),
                    min_start_ms: i64::MAX,
                    max_end_ms: None,
                    root_state: None,
                    request_preview: None,
                    response_preview: None,
                    trace_name: None,
                    usage_nodes: Vec::new(),
                    cost_nodes: Vec::new(),
                    session_id: None,
                    user_id: None,
                    tags: Vec::new(),
                });
                traces.len() - 1
            });
            let trace = &mut traces[position];
            trace.min_start_ms = trace.min_start_ms.min(start_time / 1_000_000);
            if let Some(end) = end_time {
                trace.max_end_ms = Some(
                    trace
                        .max_end_ms
                        .map_or(end / 1_000_000, |max| max.max(end / 1_000_000)),
                );
            }
            trace.usage_nodes.push(aggregation_node(
                &span_id,
                parent_span_id.as_deref(),
                attribute(USAGE_ATTRIBUTE),
            ));
            trace.cost_nodes.push(aggregation_node(
                &span_id,
                parent_span_id.as_deref(),
                attribute(COST_ATTRIBUTE),
            ));
            if trace.session_id.is_none() {
                trace.session_id = ["session.id", "gen_ai.conversation.id"]
                    .iter()
                    .find_map(|key| attribute(key))
                    .map(|dumped| match attribute_value(dumped) {
                        OrderedJson::String(text) => text,
                        other => other.python_dumps(true),
                    })
                    .filter(|session| !session.is_empty());
            }
            if trace.user_id.is_none() {
                trace.user_id = attribute("user.id").map(|dumped| match attribute_value(dumped) {
                    OrderedJson::String(text) => text,
                    other => other.python_dumps(true),
                });
            }
            if trace.tags.is_empty() {
                trace.tags.clone_from(&resource_tags);
            }
            if is_root {
                trace.root_state =
                    Some(if span.status_code == 2 { "ERROR" } else { "OK" }.to_owned());
                trace.request_preview = attribute(INPUTS_ATTRIBUTE).map(preview);
                trace.response_preview = attribute(OUTPUTS_ATTRIBUTE).map(preview);
                for (key, dumped) in &attributes {
                    let Some(tag_key) = key.strip_prefix(TRACE_TAG_PREFIX) else {
                        continue;
                    };
                    if tag_key.is_empty() || tag_key.chars().count() > MAX_TRACE_TAG_KEY_LENGTH {
                        continue;
                    }
                    let value = match attribute_value(dumped) {
                        OrderedJson::String(text) => text,
                        other => other.python_dumps(true),
                    };
                    let value = truncate_chars(&value, MAX_TRACE_TAG_VALUE_LENGTH);
                    if tag_key == TRACE_NAME_TAG {
                        trace.trace_name = Some(value);
                    } else {
                        match trace
                            .tags
                            .iter_mut()
                            .find(|(existing, _)| existing == tag_key)
                        {
                            Some(entry) => entry.1 = value,
                            None => trace.tags.push((tag_key.to_owned(), value)),
                        }
                    }
                }
            }
            trace.spans.push(record);
        }
    }
    Ok(traces)
}

/// An OpenTelemetry `AnyValue` as protobuf JSON (snake_case, int64 as numbers) from a decoded value.
fn any_value_json(value: &OrderedJson) -> serde_json::Value {
    use serde_json::json;
    match value {
        OrderedJson::Null => json!({}),
        OrderedJson::Bool(flag) => json!({ "bool_value": flag }),
        OrderedJson::Int(number) => json!({ "int_value": number }),
        OrderedJson::UInt(number) => json!({ "double_value": *number as f64 }),
        OrderedJson::Float(number) => json!({ "double_value": number }),
        OrderedJson::String(text) => json!({ "string_value": text }),
        OrderedJson::Array(items) => {
            let values: Vec<serde_json::Value> = items.iter().map(any_value_json).collect();
            json!({ "array_value": { "values": values } })
        }
        OrderedJson::Object(entries) => {
            let values: Vec<serde_json::Value> = entries
                .iter()
                .map(|(key, value)| json!({ "key": key, "value": any_value_json(value) }))
                .collect();
            json!({ "kvlist_value": { "values": values } })
        }
    }
}

/// A stored span's content as OpenTelemetry `Span` JSON, as MLflow answers `GetTrace` (MLflow's
/// `Span.to_otel_proto`): typed attribute values, events, status; `None` for content that is not a span.
pub fn otel_span_json(content: &str) -> Option<serde_json::Value> {
    use serde_json::{json, Map, Value};
    let parsed = OrderedJson::parse(content)?;
    let mut span = Map::new();
    let text = |key: &str| {
        parsed
            .get(key)
            .and_then(OrderedJson::as_str)
            .map(str::to_owned)
    };
    span.insert("trace_id".into(), Value::String(text("trace_id")?));
    span.insert("span_id".into(), Value::String(text("span_id")?));
    if let Some(parent) = text("parent_span_id").filter(|parent| !parent.is_empty()) {
        span.insert("parent_span_id".into(), Value::String(parent));
    }
    span.insert(
        "name".into(),
        Value::String(text("name").unwrap_or_default()),
    );
    let number = |key: &str| parsed.get(key).map(OrderedJson::to_serde);
    if let Some(start) = number("start_time_unix_nano").filter(|value| !value.is_null()) {
        span.insert("start_time_unix_nano".into(), start);
    }
    if let Some(end) = number("end_time_unix_nano").filter(|value| !value.is_null()) {
        span.insert("end_time_unix_nano".into(), end);
    }
    if let Some(OrderedJson::Object(attributes)) = parsed.get("attributes") {
        let attributes: Vec<Value> = attributes
            .iter()
            .map(|(key, dumped)| {
                let value = match dumped {
                    OrderedJson::String(dumped) => attribute_value(dumped),
                    other => other.clone(),
                };
                json!({ "key": key, "value": any_value_json(&value) })
            })
            .collect();
        if !attributes.is_empty() {
            span.insert("attributes".into(), Value::Array(attributes));
        }
    }
    if let Some(OrderedJson::Array(events)) = parsed.get("events") {
        let events: Vec<Value> = events
            .iter()
            .map(|event| {
                let mut out = Map::new();
                out.insert(
                    "name".into(),
                    Value::String(
                        event
                            .get("name")
                            .and_then(OrderedJson::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    ),
                );
                if let Some(time) = event.get("time_unix_nano") {
                    out.insert("time_unix_nano".into(), time.to_serde());
                }
                if let Some(OrderedJson::Object(attributes)) = event.get("attributes") {
                    let attributes: Vec<Value> = attributes
                        .iter()
                        .map(|(key, value)| json!({ "key": key, "value": any_value_json(value) }))
                        .collect();
                    if !attributes.is_empty() {
                        out.insert("attributes".into(), Value::Array(attributes));
                    }
                }
                Value::Object(out)
            })
            .collect();
        if !events.is_empty() {
            span.insert("events".into(), Value::Array(events));
        }
    }
    let mut status = Map::new();
    let status_json = parsed.get("status");
    let code = status_json
        .and_then(|status| status.get("code"))
        .and_then(OrderedJson::as_str)
        .map(|code| match code {
            "OK" => "STATUS_CODE_OK",
            "ERROR" => "STATUS_CODE_ERROR",
            "UNSET" => "STATUS_CODE_UNSET",
            other => other,
        })
        .unwrap_or("STATUS_CODE_UNSET");
    if code != "STATUS_CODE_UNSET" {
        status.insert("code".into(), Value::String(code.to_owned()));
    }
    if let Some(message) = status_json
        .and_then(|status| status.get("message"))
        .and_then(OrderedJson::as_str)
        .filter(|message| !message.is_empty())
    {
        status.insert("message".into(), Value::String(message.to_owned()));
    }
    span.insert("status".into(), Value::Object(status));
    Some(Value::Object(span))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(text: &str) -> OrderedJson {
        OrderedJson::String(text.to_owned())
    }

    fn sample_span(parent: &[u8]) -> OtlpSpan {
        OtlpSpan {
            trace_id: (1..=16).collect(),
            span_id: vec![0xbd, 0x8b, 0x87, 0xd5, 0x40, 0xba, 0x3c, 0xa5],
            parent_span_id: parent.to_vec(),
            name: "outer".into(),
            start_time_unix_nano: 1_795_688_211_833_635_868,
            end_time_unix_nano: 1_795_688_211_857_289_980,
            status_code: 1,
            status_message: String::new(),
            attributes: vec![
                (REQUEST_ID_ATTRIBUTE.into(), string("tr-bogus")),
                (SPAN_TYPE_ATTRIBUTE.into(), string("CHAIN")),
                (
                    INPUTS_ATTRIBUTE.into(),
                    OrderedJson::Object(vec![("x".into(), OrderedJson::Int(21))]),
                ),
                (
                    USAGE_ATTRIBUTE.into(),
                    OrderedJson::Object(vec![
                        ("input_tokens".into(), OrderedJson::Int(3)),
                        ("output_tokens".into(), OrderedJson::Int(4)),
                        ("total_tokens".into(), OrderedJson::Int(7)),
                    ]),
                ),
                ("f".into(), OrderedJson::Float(1.5)),
                ("mlflow.traceTag.team".into(), string("a")),
            ],
            events: Vec::new(),
            links: Vec::new(),
        }
    }

    #[test]
    fn otlp_spans_become_mlflow_content() {
        let traces = spans_from_otlp(&[OtlpResourceSpans {
            resource_attributes: vec![
                ("service.name".into(), string("svc")),
                ("telemetry.sdk.name".into(), string("opentelemetry")),
            ],
            spans: vec![sample_span(&[])],
        }])
        .unwrap();
        assert_eq!(traces.len(), 1);
        let trace = &traces[0];
        assert_eq!(trace.trace_id, "tr-0102030405060708090a0b0c0d0e0f10");
        assert_eq!(trace.root_state.as_deref(), Some("OK"));
        assert_eq!(trace.request_preview.as_deref(), Some("{\"x\": 21}"));
        assert_eq!(trace.min_start_ms, 1_795_688_211_833);
        assert_eq!(trace.max_end_ms, Some(1_795_688_211_857));
        assert_eq!(
            trace.tags,
            vec![
                ("service.name".to_owned(), "svc".to_owned()),
                ("team".to_owned(), "a".to_owned())
            ]
        );
        let span = &trace.spans[0];
        assert_eq!(span.span_id, "bd8b87d540ba3ca5");
        assert_eq!(span.span_type.as_deref(), Some("CHAIN"));
        assert_eq!(span.status, "OK");
        assert_eq!(
            span.content,
            "{\"trace_id\": \"AQIDBAUGBwgJCgsMDQ4PEA==\", \"span_id\": \"vYuH1UC6PKU=\", \"parent_span_id\": null, \
             \"name\": \"outer\", \"start_time_unix_nano\": 1795688211833635868, \"end_time_unix_nano\": \
             1795688211857289980, \"events\": [], \"status\": {\"code\": \"STATUS_CODE_OK\", \"message\": \"\"}, \
             \"attributes\": {\"mlflow.traceRequestId\": \"\\\"tr-0102030405060708090a0b0c0d0e0f10\\\"\", \
             \"mlflow.spanType\": \"\\\"CHAIN\\\"\", \"mlflow.spanInputs\": \"{\\\"x\\\": 21}\", \
             \"mlflow.chat.tokenUsage\": \"{\\\"input_tokens\\\": 3, \\\"output_tokens\\\": 4, \\\"total_tokens\\\": 7}\", \
             \"f\": \"1.5\", \"mlflow.traceTag.team\": \"\\\"a\\\"\"}, \"links\": []}"
        );
        assert_eq!(
            token_columns(&trace.usage_nodes),
            Some([Some(3), Some(4), Some(7), None, None, None])
        );
        let json = otel_span_json(&span.content).unwrap();
        assert_eq!(json["span_id"], "vYuH1UC6PKU=");
        assert_eq!(json["status"]["code"], "STATUS_CODE_OK");
        assert_eq!(json["attributes"][1]["value"]["string_value"], "CHAIN");
        assert_eq!(
            json["attributes"][2]["value"]["kvlist_value"]["values"][0]["value"]["int_value"],
            21
        );
        assert_eq!(json["attributes"][4]["value"]["double_value"], 1.5);
        assert!(json.get("parent_span_id").is_none());
    }

    #[test]
    fn genai_semantic_conventions_are_translated() {
        let mut span = sample_span(&[]);
        span.attributes = vec![
            ("gen_ai.operation.name".into(), string("chat")),
            ("gen_ai.request.model".into(), string("gpt-x")),
            ("gen_ai.provider.name".into(), string("openai")),
            ("gen_ai.usage.input_tokens".into(), OrderedJson::Int(12)),
            ("gen_ai.usage.output_tokens".into(), OrderedJson::Int(5)),
            (
                "gen_ai.input.messages".into(),
                string("[{\"role\": \"user\"}]"),
            ),
        ];
        let traces = spans_from_otlp(&[OtlpResourceSpans {
            resource_attributes: Vec::new(),
            spans: vec![span],
        }])
        .unwrap();
        let record = &traces[0].spans[0];
        assert_eq!(record.span_type.as_deref(), Some("CHAT_MODEL"));
        assert_eq!(record.model_name.as_deref(), Some("gpt-x"));
        assert_eq!(record.model_provider.as_deref(), Some("openai"));
        assert_eq!(
            token_columns(&traces[0].usage_nodes),
            Some([Some(12), Some(5), Some(17), None, None, None])
        );
        assert_eq!(
            traces[0].request_preview.as_deref(),
            Some("[{\"role\": \"user\"}]")
        );
        assert!(record
            .content
            .contains("\"mlflow.chat.tokenUsage\": \"{\\\"input_tokens\\\": 12, \\\"output_tokens\\\": 5, \\\"total_tokens\\\": 17}\""));
    }

    #[test]
    fn empty_ids_are_unconvertible() {
        let mut span = sample_span(&[]);
        span.span_id.clear();
        assert!(spans_from_otlp(&[OtlpResourceSpans {
            resource_attributes: Vec::new(),
            spans: vec![span],
        }])
        .is_err());
    }

    #[test]
    fn usage_is_summed_tree_aware() {
        let node = |id: &str, parent: Option<&str>, tokens: Option<f64>| AggregationNode {
            span_id: id.into(),
            parent_id: parent.map(str::to_owned),
            data: tokens.map(|tokens| {
                vec![
                    ("input_tokens".to_owned(), tokens),
                    ("total_tokens".to_owned(), tokens),
                ]
            }),
        };
        // The parent carries the rollup of its children: they are not counted again.
        let nodes = [
            node("root", None, None),
            node("agent", Some("root"), Some(10.0)),
            node("llm1", Some("agent"), Some(4.0)),
            node("llm2", Some("agent"), Some(6.0)),
            node("other", Some("root"), Some(1.0)),
        ];
        assert_eq!(
            token_columns(&nodes),
            Some([Some(11), Some(0), Some(11), None, None, None])
        );
        assert_eq!(token_columns(&[node("a", None, None)]), None);
    }
}
