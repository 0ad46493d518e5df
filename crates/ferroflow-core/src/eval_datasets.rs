//! Evaluation datasets (MLflow 3 `mlflow.genai.datasets`): the [`EvalDatasetStore`] trait, the
//! [`EvalDatasetService`] behind the `/api/3.0/mlflow/datasets` routes, and the pure rules both sides
//! share: the digest, record keys (`input_hash`), record merging and the dataset schema, all as MLflow
//! 3.17's `SqlAlchemyStore` computes them, so either server reads and extends datasets the other wrote.
//!
//! Records are stored in MLflow's JSON columns as Python's `json.dumps` writes them; a record's outputs
//! are wrapped as `{"mlflow_wrapped": <outputs>}`, as MLflow wraps them.

use crate::error::{Error, Result};
use crate::filter::{Comparator, Value};
use crate::ids::{decode_page_token, encode_page_token, now_millis};
use crate::trace_json::OrderedJson;
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ferroflow_proto::eval_datasets::{
    CreateDataset, Dataset, DatasetExperiments, DatasetResponse, DeleteDatasetRecords,
    DeleteDatasetRecordsResponse, GetDatasetExperimentIdsResponse, GetDatasetRecords,
    GetDatasetRecordsResponse, SearchEvaluationDatasets, SearchEvaluationDatasetsResponse,
    SetDatasetTags, UpsertDatasetRecords, UpsertDatasetRecordsResponse,
};
use ferroflow_proto::tracking::Empty;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The tag whose value names the user who wrote a dataset or record.
pub const USER_TAG: &str = "mlflow.user";
/// The key under which a record's outputs are stored.
pub const WRAPPED_OUTPUT_KEY: &str = "mlflow_wrapped";
/// `entity_associations` types of a dataset and of an experiment.
pub const DATASET_ENTITY: &str = "evaluation_dataset";
pub const EXPERIMENT_ENTITY: &str = "experiment";

/// The records a page holds when the request names no `max_results`.
const DEFAULT_RECORDS_PAGE: usize = 1000;
/// MLflow's search default (the store's) and limit.
const DEFAULT_SEARCH_RESULTS: usize = 1000;
const MAX_SEARCH_RESULTS: usize = 50_000;

/// One row of `evaluation_datasets` with its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetRow {
    pub dataset_id: String,
    pub name: String,
    pub schema: Option<String>,
    pub profile: Option<String>,
    pub digest: Option<String>,
    pub created_time: Option<i64>,
    pub last_update_time: Option<i64>,
    pub created_by: Option<String>,
    pub last_updated_by: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl DatasetRow {
    fn to_message(&self, experiment_ids: Vec<String>) -> Dataset {
        let tags: serde_json::Map<String, serde_json::Value> = self
            .tags
            .iter()
            .map(|(key, value)| (key.clone(), serde_json::Value::String(value.clone())))
            .collect();
        Dataset {
            dataset_id: self.dataset_id.clone(),
            name: self.name.clone(),
            tags: Some(serde_json::Value::Object(tags).to_string()),
            schema: self.schema.clone(),
            profile: self.profile.clone(),
            digest: self.digest.clone().unwrap_or_default(),
            created_time: self.created_time.unwrap_or(0),
            last_update_time: self.last_update_time.unwrap_or(0),
            created_by: self.created_by.clone(),
            last_updated_by: self.last_updated_by.clone(),
            experiment_ids,
        }
    }
}

/// One row of `evaluation_dataset_records`; the JSON columns as their stored text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub dataset_record_id: String,
    pub dataset_id: String,
    pub inputs: String,
    pub outputs: Option<String>,
    pub expectations: Option<String>,
    pub tags: Option<String>,
    pub source: Option<String>,
    pub source_id: Option<String>,
    pub source_type: Option<String>,
    pub created_time: Option<i64>,
    pub last_update_time: Option<i64>,
    pub created_by: Option<String>,
    pub last_updated_by: Option<String>,
    pub input_hash: String,
}

/// One record of an upsert request, checked and normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordInput {
    pub input_hash: String,
    pub inputs: OrderedJson,
    /// `None`: the request has no `outputs` key; `Some(Null)`: it sets them to null.
    pub outputs: Option<OrderedJson>,
    pub expectations: Option<OrderedJson>,
    pub tags: Option<OrderedJson>,
    /// `{"source_type": ..., "source_data": {...}}` with the type in MLflow's upper case.
    pub source: Option<OrderedJson>,
    pub source_id: Option<String>,
    pub source_type: Option<String>,
    /// The record's `mlflow.user` tag.
    pub user: Option<String>,
}

impl RecordInput {
    /// The row a new record becomes.
    pub fn new_row(&self, dataset_id: &str, now: i64) -> StoredRecord {
        let outputs = match &self.outputs {
            None => Some(wrap_outputs(OrderedJson::Object(Vec::new()))),
            Some(OrderedJson::Null) => None,
            Some(outputs) => Some(wrap_outputs(outputs.clone())),
        };
        StoredRecord {
            dataset_record_id: format!("dr-{}", uuid::Uuid::new_v4().simple()),
            dataset_id: dataset_id.to_owned(),
            inputs: dumps(&self.inputs),
            outputs,
            expectations: self.expectations.as_ref().map(dumps),
            tags: Some(dumps(
                self.tags
                    .as_ref()
                    .unwrap_or(&OrderedJson::Object(Vec::new())),
            )),
            source: self.source.as_ref().map(dumps),
            source_id: self.source_id.clone(),
            source_type: self.source_type.clone(),
            created_time: Some(now),
            last_update_time: Some(now),
            created_by: self.user.clone(),
            last_updated_by: self.user.clone(),
            input_hash: self.input_hash.clone(),
        }
    }

    /// Merges this record into the existing row with the same inputs, as MLflow does: outputs are
    /// replaced when given, expectations and tags are merged key by key, the rest is kept.
    pub fn merge_into(&self, row: &mut StoredRecord, now: i64) {
        if let Some(outputs) = &self.outputs {
            row.outputs = match outputs {
                OrderedJson::Null => None,
                outputs => Some(wrap_outputs(outputs.clone())),
            };
        }
        if let Some(expectations) = self.expectations.as_ref().filter(|value| truthy(value)) {
            row.expectations = Some(merge_objects(row.expectations.as_deref(), expectations));
        }
        if let Some(tags) = self.tags.as_ref().filter(|value| truthy(value)) {
            row.tags = Some(merge_objects(row.tags.as_deref(), tags));
        }
        row.last_update_time = Some(now);
        if let Some(user) = &self.user {
            row.last_updated_by = Some(user.clone());
        }
    }
}

fn wrap_outputs(outputs: OrderedJson) -> String {
    dumps(&OrderedJson::Object(vec![(
        WRAPPED_OUTPUT_KEY.to_owned(),
        outputs,
    )]))
}

/// The stored text of a JSON value: Python's `json.dumps` with its defaults, as SQLAlchemy writes it.
fn dumps(value: &OrderedJson) -> String {
    value.python_dumps(true)
}

/// Python's truth of a JSON value (`{}`, `[]`, `""`, `0`, `null` are false).
fn truthy(value: &OrderedJson) -> bool {
    match value {
        OrderedJson::Null => false,
        OrderedJson::Bool(flag) => *flag,
        OrderedJson::Int(number) => *number != 0,
        OrderedJson::UInt(number) => *number != 0,
        OrderedJson::Float(number) => *number != 0.0,
        OrderedJson::String(text) => !text.is_empty(),
        OrderedJson::Array(items) => !items.is_empty(),
        OrderedJson::Object(entries) => !entries.is_empty(),
    }
}

/// `dict.update`: the stored object (or `{}`) with the keys of `update` set.
fn merge_objects(stored: Option<&str>, update: &OrderedJson) -> String {
    let mut entries = match stored.and_then(OrderedJson::parse) {
        Some(OrderedJson::Object(entries)) => entries,
        _ => Vec::new(),
    };
    if let OrderedJson::Object(updates) = update {
        for (key, value) in updates {
            match entries.iter_mut().find(|(existing, _)| existing == key) {
                Some(entry) => entry.1 = value.clone(),
                None => entries.push((key.clone(), value.clone())),
            }
        }
    }
    dumps(&OrderedJson::Object(entries))
}

/// Sorts object keys at every depth (Python's `sort_keys=True`).
fn sorted(value: &OrderedJson) -> OrderedJson {
    match value {
        OrderedJson::Object(entries) => {
            let mut entries: Vec<(String, OrderedJson)> = entries
                .iter()
                .map(|(key, value)| (key.clone(), sorted(value)))
                .collect();
            entries.sort_by(|left, right| left.0.cmp(&right.0));
            entries.dedup_by(|right, left| left.0 == right.0);
            OrderedJson::Object(entries)
        }
        OrderedJson::Array(items) => OrderedJson::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The key of a record within its dataset: the SHA-256 of `json.dumps(inputs, sort_keys=True)`.
pub fn input_hash(inputs: &OrderedJson) -> String {
    let text = sorted(inputs).python_dumps(true);
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A dataset's digest: the first 8 hex digits of SHA-256 of `<name>:<last_update_time>`.
pub fn dataset_digest(name: &str, last_update_time: i64) -> String {
    let digest = Sha256::digest(format!("{name}:{last_update_time}").as_bytes());
    digest
        .iter()
        .take(4)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The type name MLflow's schema gives a value.
fn field_type(value: &OrderedJson) -> &'static str {
    match value {
        OrderedJson::Null => "null",
        OrderedJson::Bool(_) => "boolean",
        OrderedJson::Int(_) | OrderedJson::UInt(_) => "integer",
        OrderedJson::Float(_) => "float",
        OrderedJson::String(_) => "string",
        OrderedJson::Array(_) => "array",
        OrderedJson::Object(_) => "object",
    }
}

fn add_fields(section: &mut OrderedJson, value: &OrderedJson) {
    let (OrderedJson::Object(fields), OrderedJson::Object(entries)) = (section, value) else {
        return;
    };
    for (key, value) in entries {
        if !fields.iter().any(|(existing, _)| existing == key) {
            fields.push((
                key.clone(),
                OrderedJson::String(field_type(value).to_owned()),
            ));
        }
    }
}

/// The dataset's schema after `records` were written: each new input, output and expectation key with
/// its type, added to the stored schema. `None` when there is neither.
pub fn updated_schema(stored: Option<&str>, records: &[RecordInput]) -> Option<String> {
    let stored = stored.filter(|text| !text.is_empty());
    if records.is_empty() && stored.is_none() {
        return None;
    }
    let empty = || OrderedJson::Object(Vec::new());
    let mut schema = match stored.and_then(OrderedJson::parse) {
        Some(OrderedJson::Object(entries)) => entries,
        _ => vec![
            ("inputs".to_owned(), empty()),
            ("outputs".to_owned(), empty()),
            ("expectations".to_owned(), empty()),
            ("version".to_owned(), OrderedJson::String("1.0".to_owned())),
        ],
    };
    for section in ["inputs", "outputs", "expectations"] {
        if !schema.iter().any(|(key, _)| key == section) {
            schema.push((section.to_owned(), empty()));
        }
    }
    let position = |schema: &Vec<(String, OrderedJson)>, name: &str| {
        schema.iter().position(|(key, _)| key == name).unwrap_or(0)
    };
    for record in records {
        if truthy(&record.inputs) {
            let index = position(&schema, "inputs");
            add_fields(&mut schema[index].1, &record.inputs);
        }
        match &record.outputs {
            None | Some(OrderedJson::Null) => {}
            Some(outputs @ OrderedJson::Object(_)) => {
                let index = position(&schema, "outputs");
                add_fields(&mut schema[index].1, outputs);
            }
            Some(outputs) => {
                let index = position(&schema, "outputs");
                if !truthy(&schema[index].1) {
                    schema[index].1 = OrderedJson::String(field_type(outputs).to_owned());
                }
            }
        }
        if let Some(expectations) = record.expectations.as_ref().filter(|value| truthy(value)) {
            let index = position(&schema, "expectations");
            add_fields(&mut schema[index].1, expectations);
        }
    }
    Some(dumps(&OrderedJson::Object(schema)))
}

/// The profile of a dataset with `count` records (`None` when it has none).
pub fn profile_for(count: i64) -> Option<String> {
    (count > 0).then(|| format!("{{\"num_records\": {count}}}"))
}

/// A record as the `records` JSON of `GET /datasets/{id}/records` carries it (MLflow's
/// `DatasetRecord.to_dict`).
fn record_to_json(row: &StoredRecord) -> OrderedJson {
    let parse = |text: &Option<String>| text.as_deref().and_then(OrderedJson::parse);
    let text = |value: &Option<String>| value.clone().map(OrderedJson::String);
    let mut fields: Vec<(String, OrderedJson)> = vec![
        (
            "dataset_record_id".to_owned(),
            OrderedJson::String(row.dataset_record_id.clone()),
        ),
        (
            "dataset_id".to_owned(),
            OrderedJson::String(row.dataset_id.clone()),
        ),
        (
            "inputs".to_owned(),
            OrderedJson::parse(&row.inputs).unwrap_or(OrderedJson::Object(Vec::new())),
        ),
    ];
    let mut push = |key: &str, value: Option<OrderedJson>| {
        if let Some(value) = value {
            fields.push((key.to_owned(), value));
        }
    };
    let outputs = parse(&row.outputs)
        .and_then(|wrapped| wrapped.get(WRAPPED_OUTPUT_KEY).cloned())
        .filter(|value| *value != OrderedJson::Null);
    push("outputs", outputs);
    push(
        "expectations",
        parse(&row.expectations).filter(|value| *value != OrderedJson::Null),
    );
    push(
        "tags",
        Some(
            parse(&row.tags)
                .filter(|value| *value != OrderedJson::Null)
                .unwrap_or(OrderedJson::Object(Vec::new())),
        ),
    );
    let source = parse(&row.source).filter(|value| matches!(value, OrderedJson::Object(_)));
    let source_type = source
        .as_ref()
        .and_then(|source| source.get("source_type"))
        .and_then(OrderedJson::as_str)
        .map(|name| OrderedJson::String(name.to_owned()));
    let source_id = text(&row.source_id).or_else(|| {
        let source = source.as_ref()?;
        let data = source.get("source_data")?;
        let key = if source.get("source_type")?.as_str()? == "TRACE" {
            "trace_id"
        } else {
            "source_id"
        };
        data.get(key).cloned()
    });
    push("source", source);
    push("source_id", source_id);
    push("source_type", source_type);
    push("created_by", text(&row.created_by));
    push("last_updated_by", text(&row.last_updated_by));
    push(
        "created_time",
        Some(OrderedJson::Int(row.created_time.unwrap_or(0))),
    );
    push(
        "last_update_time",
        Some(OrderedJson::Int(row.last_update_time.unwrap_or(0))),
    );
    OrderedJson::Object(fields)
}

/// The source types MLflow knows.
const SOURCE_TYPES: [&str; 5] = ["UNSPECIFIED", "TRACE", "HUMAN", "DOCUMENT", "CODE"];

/// Reads one record of an upsert request (an object with `inputs`, `outputs`, `expectations`, `tags`,
/// `source`).
pub fn record_input(value: &OrderedJson) -> Result<RecordInput> {
    let OrderedJson::Object(_) = value else {
        return Err(Error::invalid_parameter(
            "Each dataset record must be a JSON object",
        ));
    };
    let inputs = match value.get("inputs") {
        None | Some(OrderedJson::Null) => OrderedJson::Object(Vec::new()),
        Some(inputs @ OrderedJson::Object(_)) => inputs.clone(),
        Some(_) => {
            return Err(Error::invalid_parameter(
                "The 'inputs' of a dataset record must be a JSON object",
            ))
        }
    };
    let object_or_none = |key: &str| -> Result<Option<OrderedJson>> {
        match value.get(key) {
            None | Some(OrderedJson::Null) => Ok(None),
            Some(object @ OrderedJson::Object(_)) => Ok(Some(object.clone())),
            Some(_) => Err(Error::invalid_parameter(format!(
                "The '{key}' of a dataset record must be a JSON object"
            ))),
        }
    };
    let expectations = object_or_none("expectations")?;
    let tags = object_or_none("tags")?;
    let user = tags
        .as_ref()
        .and_then(|tags| tags.get(USER_TAG))
        .and_then(OrderedJson::as_str)
        .map(str::to_owned);
    let (source, source_id, source_type) = match object_or_none("source")? {
        Some(source) if truthy(&source) => {
            let name = source
                .get("source_type")
                .and_then(OrderedJson::as_str)
                .unwrap_or("UNSPECIFIED")
                .to_uppercase();
            let name = if name == "SOURCE_TYPE_UNSPECIFIED" {
                "UNSPECIFIED".to_owned()
            } else {
                name
            };
            if !SOURCE_TYPES.contains(&name.as_str()) {
                return Err(Error::invalid_parameter(format!(
                    "Invalid dataset record source type: {name}. Must be one of: {}",
                    SOURCE_TYPES.join(", ")
                )));
            }
            let data = match source.get("source_data") {
                None | Some(OrderedJson::Null) => OrderedJson::Object(Vec::new()),
                Some(data) => data.clone(),
            };
            let id_key = if name == "TRACE" {
                "trace_id"
            } else {
                "source_id"
            };
            let source_id = data.get(id_key).and_then(|id| match id {
                OrderedJson::String(text) => Some(text.clone()),
                OrderedJson::Int(number) => Some(number.to_string()),
                _ => None,
            });
            let normalized = OrderedJson::Object(vec![
                ("source_type".to_owned(), OrderedJson::String(name.clone())),
                ("source_data".to_owned(), data),
            ]);
            (Some(normalized), source_id, Some(name))
        }
        _ => (None, None, None),
    };
    Ok(RecordInput {
        input_hash: input_hash(&inputs),
        inputs,
        outputs: value.get("outputs").cloned(),
        expectations,
        tags,
        source,
        source_id,
        source_type,
        user,
    })
}

/// A string attribute or tag of a dataset filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetKey {
    Name,
    CreatedBy,
    LastUpdatedBy,
    CreatedTime,
    LastUpdateTime,
    Tag(String),
}

impl DatasetKey {
    fn attribute(name: &str) -> Option<Self> {
        Some(match name {
            "name" => Self::Name,
            "created_by" => Self::CreatedBy,
            "last_updated_by" => Self::LastUpdatedBy,
            "created_time" => Self::CreatedTime,
            "last_update_time" => Self::LastUpdateTime,
            _ => return None,
        })
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Self::CreatedTime | Self::LastUpdateTime)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetComparison {
    pub key: DatasetKey,
    pub comparator: Comparator,
    pub value: Value,
}

/// A search's one page.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetQuery {
    pub experiment_ids: Vec<String>,
    pub filter: Vec<DatasetComparison>,
    /// Attribute (`Name`, `CreatedTime`, `LastUpdateTime`) and ascending; `dataset_id DESC` breaks ties.
    pub order_by: Vec<(DatasetKey, bool)>,
    pub max_results: usize,
    pub offset: usize,
}

/// Splits `text` at ` AND ` outside quotes, case-insensitively.
fn split_and(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let chars: Vec<char> = text.chars().collect();
    let mut index = 0;
    while index < chars.len() {
        let character = chars[index];
        if let Some(open) = quote {
            current.push(character);
            if character == open {
                quote = None;
            }
            index += 1;
            continue;
        }
        if matches!(character, '\'' | '"' | '`') {
            quote = Some(character);
            current.push(character);
            index += 1;
            continue;
        }
        if character.is_whitespace() && index + 4 < chars.len() {
            let word: String = chars[index + 1..index + 4].iter().collect();
            if word.eq_ignore_ascii_case("and") && chars[index + 4].is_whitespace() {
                parts.push(std::mem::take(&mut current));
                index += 5;
                continue;
            }
        }
        current.push(character);
        index += 1;
    }
    parts.push(current);
    parts
}

fn invalid_clause(clause: &str) -> Error {
    Error::invalid_parameter(format!(
        "Invalid clause(s) in filter string: {}",
        clause.trim()
    ))
}

fn unquote(text: &str) -> Option<String> {
    let text = text.trim();
    let first = text.chars().next()?;
    if matches!(first, '\'' | '"') && text.len() >= 2 && text.ends_with(first) {
        Some(text[1..text.len() - 1].to_owned())
    } else {
        None
    }
}

fn parse_comparison(clause: &str) -> Result<DatasetComparison> {
    let trimmed = clause.trim();
    // The identifier ends at the first white space or operator character outside backticks.
    let mut end = trimmed.len();
    let mut in_backticks = false;
    for (index, character) in trimmed.char_indices() {
        if character == '`' {
            in_backticks = !in_backticks;
        } else if !in_backticks
            && (character.is_whitespace() || matches!(character, '=' | '!' | '<' | '>'))
        {
            end = index;
            break;
        }
    }
    let identifier = &trimmed[..end];
    let rest = trimmed[end..].trim_start();
    let (comparator, value_text) = [
        ("!=", Comparator::NotEq),
        ("<=", Comparator::Le),
        (">=", Comparator::Ge),
        ("=", Comparator::Eq),
        ("<", Comparator::Lt),
        (">", Comparator::Gt),
    ]
    .iter()
    .find(|(symbol, _)| rest.starts_with(symbol))
    .map(|(symbol, comparator)| (*comparator, &rest[symbol.len()..]))
    .or_else(|| {
        let (word, remainder) = rest.split_once(char::is_whitespace)?;
        let comparator = match word.to_ascii_uppercase().as_str() {
            "LIKE" => Comparator::Like,
            "ILIKE" => Comparator::ILike,
            "IN" => Comparator::In,
            _ => return None,
        };
        Some((comparator, remainder))
    })
    .ok_or_else(|| invalid_clause(clause))?;
    let key = match identifier.split_once('.') {
        Some(("tags" | "tag", key)) => {
            let key = key
                .strip_prefix('`')
                .and_then(|key| key.strip_suffix('`'))
                .unwrap_or(key);
            DatasetKey::Tag(key.to_owned())
        }
        Some(("attribute" | "attributes" | "attr", key)) => {
            DatasetKey::attribute(key).ok_or_else(|| invalid_key(key))?
        }
        Some(_) => {
            return Err(Error::invalid_parameter(format!(
                "Invalid identifier token '{identifier}' specified"
            )))
        }
        None => DatasetKey::attribute(identifier).ok_or_else(|| invalid_key(identifier))?,
    };
    let value_text = value_text.trim();
    let value = if comparator == Comparator::In {
        let inner = value_text
            .strip_prefix('(')
            .and_then(|inner| inner.strip_suffix(')'))
            .ok_or_else(|| invalid_clause(clause))?;
        Value::List(
            inner
                .split(',')
                .map(|item| unquote(item).ok_or_else(|| invalid_clause(clause)))
                .collect::<Result<Vec<_>>>()?,
        )
    } else if let Some(text) = unquote(value_text) {
        Value::String(text)
    } else {
        let number: f64 = value_text.parse().map_err(|_| invalid_clause(clause))?;
        Value::Number(number)
    };
    let is_string_key = !key.is_numeric();
    match (&key, comparator, &value) {
        (DatasetKey::Name, Comparator::In, Value::List(_)) => {}
        (
            _,
            Comparator::Eq | Comparator::NotEq | Comparator::Like | Comparator::ILike,
            Value::String(_),
        ) if is_string_key => {}
        (_, comparator, _) if is_string_key => {
            let what = if matches!(key, DatasetKey::Tag(_)) {
                "tag"
            } else {
                "string attribute"
            };
            return Err(Error::invalid_parameter(format!(
                "Invalid comparator for {what}: {}",
                comparator_text(comparator)
            )));
        }
        (_, Comparator::Like | Comparator::ILike | Comparator::In, _) => {
            return Err(Error::invalid_parameter(format!(
                "Invalid comparator for numeric attribute: {}",
                comparator_text(comparator)
            )))
        }
        (_, _, Value::Number(number)) if number.fract() == 0.0 => {}
        _ => {
            return Err(Error::invalid_parameter(format!(
                "Invalid value for numeric attribute '{}': {value_text}",
                identifier
            )))
        }
    }
    Ok(DatasetComparison {
        key,
        comparator,
        value,
    })
}

fn comparator_text(comparator: Comparator) -> &'static str {
    comparator.as_str()
}

fn invalid_key(key: &str) -> Error {
    Error::invalid_parameter(format!(
        "Invalid attribute key '{key}' specified. Valid keys are: \
         {{'created_by', 'created_time', 'last_update_time', 'last_updated_by', 'name'}}"
    ))
}

/// Parses the `filter_string` of `datasets/search` (comparisons joined by `AND`).
pub fn parse_dataset_filter(filter: &str) -> Result<Vec<DatasetComparison>> {
    if filter.trim().is_empty() {
        return Ok(Vec::new());
    }
    split_and(filter)
        .iter()
        .map(|clause| parse_comparison(clause))
        .collect()
}

/// Parses one `order_by` clause: `name`, `created_time` or `last_update_time`, then `ASC` or `DESC`.
pub fn parse_dataset_order_by(clause: &str) -> Result<(DatasetKey, bool)> {
    let mut words = clause.split_whitespace();
    let field = words.next().unwrap_or_default();
    let field = field
        .strip_prefix("attributes.")
        .or_else(|| field.strip_prefix("attribute."))
        .unwrap_or(field);
    let key = match field {
        "name" => DatasetKey::Name,
        "created_time" => DatasetKey::CreatedTime,
        "last_update_time" => DatasetKey::LastUpdateTime,
        _ => {
            return Err(Error::invalid_parameter(format!(
                "Invalid order by key '{field}' specified. Valid keys are: \
                 {{'created_time', 'last_update_time', 'name'}}"
            )))
        }
    };
    let ascending = match words.next().map(str::to_ascii_uppercase).as_deref() {
        None | Some("ASC") => true,
        Some("DESC") => false,
        Some(_) => {
            return Err(Error::invalid_parameter(format!(
                "Invalid order_by clause '{clause}'"
            )))
        }
    };
    if words.next().is_some() {
        return Err(Error::invalid_parameter(format!(
            "Invalid order_by clause '{clause}'"
        )));
    }
    Ok((key, ascending))
}

/// The outcome of an upsert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpsertCounts {
    pub inserted: i64,
    pub updated: i64,
}

/// Where a page of records starts: after `(created_time, dataset_record_id)`, or (MLflow's older
/// tokens) at an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordCursor {
    Start,
    After(i64, String),
    Offset(usize),
}

/// The storage of evaluation datasets.
#[async_trait]
pub trait EvalDatasetStore: Send + Sync {
    /// Inserts the dataset, its tags and its experiment associations in one transaction.
    async fn create_dataset(&self, dataset: &DatasetRow, experiment_ids: &[String]) -> Result<()>;
    async fn get_dataset(&self, dataset_id: &str) -> Result<Option<DatasetRow>>;
    /// Deletes the dataset, its records, tags and associations (either direction).
    async fn delete_dataset(&self, dataset_id: &str) -> Result<()>;
    /// One page (`max_results + 1` rows at most) in the query's order.
    async fn search_datasets(&self, query: &DatasetQuery) -> Result<Vec<DatasetRow>>;
    /// Sets tags (insert or replace); `false` when the dataset does not exist.
    async fn set_dataset_tags(&self, dataset_id: &str, tags: &[(String, String)]) -> Result<bool>;
    async fn delete_dataset_tag(&self, dataset_id: &str, key: &str) -> Result<()>;
    /// Inserts or merges (by `input_hash`, in order) the records, then updates the dataset's schema,
    /// profile, digest and last update, all in one transaction. `None` when the dataset does not exist.
    async fn upsert_records(
        &self,
        dataset_id: &str,
        records: &[RecordInput],
        now: i64,
    ) -> Result<Option<UpsertCounts>>;
    /// Up to `limit` records ordered by `(created_time, dataset_record_id)`.
    async fn load_records(
        &self,
        dataset_id: &str,
        cursor: &RecordCursor,
        limit: usize,
    ) -> Result<Vec<StoredRecord>>;
    /// Deletes the named records of the dataset and lowers its profile's count; the number deleted.
    async fn delete_records(&self, dataset_id: &str, record_ids: &[String]) -> Result<i64>;
    async fn dataset_experiment_ids(&self, dataset_id: &str) -> Result<Vec<String>>;
    /// The experiment ids of `ids` that exist.
    async fn existing_experiment_ids(&self, ids: &[String]) -> Result<Vec<String>>;
    /// Associates the dataset with the experiments it is not yet associated with, and sets its
    /// last update time.
    async fn add_dataset_experiments(
        &self,
        dataset_id: &str,
        experiment_ids: &[String],
        now: i64,
    ) -> Result<()>;
    /// Drops the associations; the last update time moves only if one existed.
    async fn remove_dataset_experiments(
        &self,
        dataset_id: &str,
        experiment_ids: &[String],
        now: i64,
    ) -> Result<()>;
}

/// Validates the `/datasets` requests and answers them as MLflow 3.17 does.
#[derive(Clone)]
pub struct EvalDatasetService {
    store: Arc<dyn EvalDatasetStore>,
}

fn parse_tags(text: &str) -> Result<Vec<(String, String)>> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| Error::invalid_parameter(format!("Invalid JSON in 'tags': {text}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(Error::invalid_parameter("'tags' must be a JSON object"));
    };
    Ok(map
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(key, value)| {
            let value = match value {
                serde_json::Value::String(text) => text,
                serde_json::Value::Bool(true) => "True".to_owned(),
                serde_json::Value::Bool(false) => "False".to_owned(),
                other => other.to_string(),
            };
            (key, value)
        })
        .collect())
}

fn not_found(dataset_id: &str) -> Error {
    Error::not_found(format!(
        "Evaluation dataset with id '{dataset_id}' not found"
    ))
}

impl EvalDatasetService {
    pub fn new(store: Arc<dyn EvalDatasetStore>) -> Self {
        Self { store }
    }

    async fn dataset(&self, dataset_id: &str) -> Result<DatasetRow> {
        self.store
            .get_dataset(dataset_id)
            .await?
            .ok_or_else(|| not_found(dataset_id))
    }

    pub async fn create_dataset(&self, request: CreateDataset) -> Result<DatasetResponse> {
        let name = request
            .name
            .filter(|name| !name.is_empty())
            .ok_or_else(|| Error::missing_parameter("name"))?;
        let tags = match request.tags.as_deref().filter(|tags| !tags.is_empty()) {
            Some(text) => parse_tags(text)?,
            None => Vec::new(),
        };
        let user = tags
            .iter()
            .find(|(key, _)| key == USER_TAG)
            .map(|(_, value)| value.clone());
        let now = now_millis();
        let dataset = DatasetRow {
            dataset_id: format!("d-{}", uuid::Uuid::new_v4().simple()),
            digest: Some(dataset_digest(&name, now)),
            name,
            schema: None,
            profile: None,
            created_time: Some(now),
            last_update_time: Some(now),
            created_by: user.clone(),
            last_updated_by: user,
            tags,
        };
        self.store
            .create_dataset(&dataset, &request.experiment_ids)
            .await?;
        let stored = self.dataset(&dataset.dataset_id).await?;
        Ok(DatasetResponse {
            dataset: stored.to_message(request.experiment_ids),
        })
    }

    pub async fn get_dataset(&self, dataset_id: &str) -> Result<DatasetResponse> {
        Ok(DatasetResponse {
            dataset: self.dataset(dataset_id).await?.to_message(Vec::new()),
        })
    }

    pub async fn delete_dataset(&self, dataset_id: &str) -> Result<Empty> {
        self.store.delete_dataset(dataset_id).await?;
        Ok(Empty {})
    }

    pub async fn search_datasets(
        &self,
        request: SearchEvaluationDatasets,
    ) -> Result<SearchEvaluationDatasetsResponse> {
        let max_results = match request.max_results {
            None | Some(0) => DEFAULT_SEARCH_RESULTS,
            Some(value) if value < 0 || value as u64 > MAX_SEARCH_RESULTS as u64 => {
                return Err(Error::invalid_parameter(format!(
                    "Invalid value {value} for parameter 'max_results' supplied. It must be a \
                     positive integer and at most {MAX_SEARCH_RESULTS}"
                )))
            }
            Some(value) => value as usize,
        };
        let filter = parse_dataset_filter(request.filter_string.as_deref().unwrap_or(""))?;
        let mut order_by = request
            .order_by
            .iter()
            .map(|clause| parse_dataset_order_by(clause))
            .collect::<Result<Vec<_>>>()?;
        if order_by.is_empty() {
            order_by.push((DatasetKey::CreatedTime, false));
        }
        let offset = decode_page_token(request.page_token.as_deref())?;
        let query = DatasetQuery {
            experiment_ids: request.experiment_ids,
            filter,
            order_by,
            max_results,
            offset,
        };
        let mut rows = self.store.search_datasets(&query).await?;
        let next_page_token = (rows.len() > max_results).then(|| {
            rows.truncate(max_results);
            encode_page_token(offset + max_results)
        });
        Ok(SearchEvaluationDatasetsResponse {
            datasets: rows.iter().map(|row| row.to_message(Vec::new())).collect(),
            next_page_token,
        })
    }

    pub async fn set_dataset_tags(
        &self,
        dataset_id: &str,
        request: SetDatasetTags,
    ) -> Result<Empty> {
        let text = request
            .tags
            .filter(|tags| !tags.is_empty())
            .ok_or_else(|| Error::missing_parameter("tags"))?;
        let tags = parse_tags(&text)?;
        if !self.store.set_dataset_tags(dataset_id, &tags).await? {
            return Err(Error::not_found(format!(
                "Could not find evaluation dataset with ID {dataset_id}"
            )));
        }
        Ok(Empty {})
    }

    pub async fn delete_dataset_tag(&self, dataset_id: &str, key: &str) -> Result<Empty> {
        self.store.delete_dataset_tag(dataset_id, key).await?;
        Ok(Empty {})
    }

    pub async fn upsert_records(
        &self,
        dataset_id: &str,
        request: UpsertDatasetRecords,
    ) -> Result<UpsertDatasetRecordsResponse> {
        let text = request
            .records
            .filter(|records| !records.is_empty())
            .ok_or_else(|| Error::missing_parameter("records"))?;
        let Some(OrderedJson::Array(items)) = OrderedJson::parse(&text) else {
            return Err(Error::invalid_parameter(
                "'records' must be a JSON array of record objects",
            ));
        };
        let records = items.iter().map(record_input).collect::<Result<Vec<_>>>()?;
        let counts = self
            .store
            .upsert_records(dataset_id, &records, now_millis())
            .await?
            .ok_or_else(|| not_found(dataset_id))?;
        Ok(UpsertDatasetRecordsResponse {
            inserted_count: counts.inserted,
            updated_count: counts.updated,
        })
    }

    pub async fn get_records(
        &self,
        dataset_id: &str,
        request: GetDatasetRecords,
    ) -> Result<GetDatasetRecordsResponse> {
        let limit = match request.max_results {
            Some(value) if value > 0 => usize::try_from(value).unwrap_or(usize::MAX),
            _ => DEFAULT_RECORDS_PAGE,
        };
        let cursor = match request
            .page_token
            .as_deref()
            .filter(|token| !token.is_empty())
        {
            None => RecordCursor::Start,
            Some(token) => decode_record_token(token)?,
        };
        let mut rows = self.store.load_records(dataset_id, &cursor, limit).await?;
        let next_page_token = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| {
                STANDARD.encode(format!(
                    "{}:{}",
                    last.created_time.unwrap_or(0),
                    last.dataset_record_id
                ))
            })
        } else {
            None
        };
        let records = OrderedJson::Array(rows.iter().map(record_to_json).collect());
        Ok(GetDatasetRecordsResponse {
            records: records.python_dumps(false),
            next_page_token,
        })
    }

    pub async fn delete_records(
        &self,
        dataset_id: &str,
        request: DeleteDatasetRecords,
    ) -> Result<DeleteDatasetRecordsResponse> {
        let deleted_count = if request.dataset_record_ids.is_empty() {
            0
        } else {
            self.store
                .delete_records(dataset_id, &request.dataset_record_ids)
                .await?
        };
        Ok(DeleteDatasetRecordsResponse { deleted_count })
    }

    pub async fn experiment_ids(
        &self,
        dataset_id: &str,
    ) -> Result<GetDatasetExperimentIdsResponse> {
        Ok(GetDatasetExperimentIdsResponse {
            experiment_ids: self.store.dataset_experiment_ids(dataset_id).await?,
        })
    }

    pub async fn add_experiments(
        &self,
        dataset_id: &str,
        request: DatasetExperiments,
    ) -> Result<DatasetResponse> {
        if self.store.get_dataset(dataset_id).await?.is_none() {
            return Err(Error::not_found(format!(
                "Dataset '{dataset_id}' not found"
            )));
        }
        let existing = self
            .store
            .existing_experiment_ids(&request.experiment_ids)
            .await?;
        if let Some(missing) = request
            .experiment_ids
            .iter()
            .find(|id| !existing.contains(id))
        {
            return Err(Error::not_found(format!("No Experiment with id={missing}")));
        }
        self.store
            .add_dataset_experiments(dataset_id, &request.experiment_ids, now_millis())
            .await?;
        self.get_dataset(dataset_id).await
    }

    pub async fn remove_experiments(
        &self,
        dataset_id: &str,
        request: DatasetExperiments,
    ) -> Result<DatasetResponse> {
        if self.store.get_dataset(dataset_id).await?.is_none() {
            return Err(Error::not_found(format!(
                "Dataset '{dataset_id}' not found"
            )));
        }
        self.store
            .remove_dataset_experiments(dataset_id, &request.experiment_ids, now_millis())
            .await?;
        self.get_dataset(dataset_id).await
    }
}

/// Reads a records page token: base64 of `<created_time>:<record id>`, or a plain offset.
fn decode_record_token(token: &str) -> Result<RecordCursor> {
    let decoded = STANDARD
        .decode(token.as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    if let Some((time, id)) = decoded.as_deref().and_then(|text| text.split_once(':')) {
        if let Ok(time) = time.parse::<i64>() {
            return Ok(RecordCursor::After(time, id.to_owned()));
        }
    }
    token
        .parse::<usize>()
        .map(RecordCursor::Offset)
        .map_err(|_| Error::invalid_parameter(format!("Invalid page token: {token}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_hash_is_that_of_sorted_python_json() {
        // hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest() in Python.
        let inputs =
            OrderedJson::parse(r#"{"b": 1, "a": "é", "c": {"z": 1.5, "y": [true, null]}}"#)
                .unwrap_or(OrderedJson::Null);
        assert_eq!(
            sorted(&inputs).python_dumps(true),
            r#"{"a": "\u00e9", "b": 1, "c": {"y": [true, null], "z": 1.5}}"#
        );
        assert_eq!(
            input_hash(&inputs),
            "558c48e2dc4a5a9c8c1c603fdbb2fbc237a3ff1da9083e4250d2abefb14861db"
        );
    }

    #[test]
    fn digest_is_eight_hex_digits_of_name_and_time() {
        // hashlib.sha256(b"qa:1700000000000").hexdigest()[:8]
        assert_eq!(dataset_digest("qa", 1_700_000_000_000), "796db64c");
    }

    #[test]
    fn filters_parse_attributes_tags_and_lists() {
        let parsed = parse_dataset_filter(
            "name LIKE 'qa_%' AND tags.`env` = \"prod\" AND created_time >= 5",
        )
        .unwrap_or_default();
        assert_eq!(
            parsed,
            vec![
                DatasetComparison {
                    key: DatasetKey::Name,
                    comparator: Comparator::Like,
                    value: Value::String("qa_%".into())
                },
                DatasetComparison {
                    key: DatasetKey::Tag("env".into()),
                    comparator: Comparator::Eq,
                    value: Value::String("prod".into())
                },
                DatasetComparison {
                    key: DatasetKey::CreatedTime,
                    comparator: Comparator::Ge,
                    value: Value::Number(5.0)
                },
            ]
        );
        let list = parse_dataset_filter("name IN ('a', 'b')").unwrap_or_default();
        assert_eq!(list[0].value, Value::List(vec!["a".into(), "b".into()]));
        assert!(parse_dataset_filter("colour = 'x'").is_err());
        assert!(parse_dataset_filter("created_time LIKE '1'").is_err());
        assert!(parse_dataset_filter("tags.env > 'x'").is_err());
    }

    #[test]
    fn merging_replaces_outputs_and_updates_expectations_and_tags() {
        let first = record_input(
            &OrderedJson::parse(
                r#"{"inputs": {"q": 1}, "expectations": {"a": 1}, "tags": {"mlflow.user": "ann"}}"#,
            )
            .unwrap_or(OrderedJson::Null),
        )
        .unwrap_or_else(|error| panic!("{error}"));
        let mut row = first.new_row("d-1", 10);
        assert_eq!(row.outputs.as_deref(), Some(r#"{"mlflow_wrapped": {}}"#));
        assert_eq!(row.created_by.as_deref(), Some("ann"));
        let second = record_input(
            &OrderedJson::parse(
                r#"{"inputs": {"q": 1}, "outputs": "yes", "expectations": {"b": 2}}"#,
            )
            .unwrap_or(OrderedJson::Null),
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(first.input_hash, second.input_hash);
        second.merge_into(&mut row, 20);
        assert_eq!(row.outputs.as_deref(), Some(r#"{"mlflow_wrapped": "yes"}"#));
        assert_eq!(row.expectations.as_deref(), Some(r#"{"a": 1, "b": 2}"#));
        assert_eq!(row.last_update_time, Some(20));
        assert_eq!(row.last_updated_by.as_deref(), Some("ann"));
        assert_eq!(
            updated_schema(None, &[first, second]).as_deref(),
            Some(
                r#"{"inputs": {"q": "integer"}, "outputs": "string", "expectations": {"a": "integer", "b": "integer"}, "version": "1.0"}"#
            )
        );
    }
}
