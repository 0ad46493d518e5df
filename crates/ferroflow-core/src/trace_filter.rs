//! The filter and `order_by` grammar of `traces/search` (MLflow 3.17 `SearchTraceUtils` and the clauses
//! `sqlalchemy_store.py` builds from it), parsed into typed [`TraceCondition`]s. No SQL here:
//! `ferroflow-store` compiles them.
//!
//! # Filter grammar
//!
//! ```text
//! filter      = ws* [ comparison { ws+ "AND" ws+ comparison } ] ws*
//! comparison  = identifier ws* operator ws* scalar
//!             | identifier ws+ "IS" ws+ [ "NOT" ws+ ] "NULL"
//!             | identifier ws+ [ "NOT" ws+ ] "IN" ws* list
//! operator    = "=" | "!=" | ">" | ">=" | "<" | "<=" | "LIKE" | "ILIKE" | "RLIKE"
//! identifier  = [ entity "." ] key      -- split at the first dot; no entity means an attribute
//! key         = bare { "." bare } | "`" any "`" | '"' any '"'   (quotes around the whole key or its last part)
//! scalar      = "'" any "'" | '"' any '"' | number
//! list        = "(" scalar-string { "," scalar-string } ")"
//! ```
//!
//! Keywords are case-insensitive. Entities: `attribute`/`attributes`/`trace` (or none), `tag`/`tags`,
//! `metadata`/`request_metadata`, `span`, `feedback`, `expectation`, `issue`.
//!
//! | identifier | meaning | operators |
//! |---|---|---|
//! | `timestamp[_ms]`, `execution_time[_ms]`, `end_time[_ms]` | trace times (ms) | `=` `!=` `<` `<=` `>` `>=` |
//! | `status`, `request_id`, `client_request_id` | trace columns | `=` `!=` `LIKE` `ILIKE` `RLIKE`, `IN`/`NOT IN` |
//! | `name` (= tag `mlflow.traceName`) | trace name | string operators, `IN`, `IS [NOT] NULL` as a tag |
//! | `run_id` (= metadata `mlflow.sourceRun`) | traces of a run, also linked ones | `=` |
//! | `prompt` (= tag `mlflow.linkedPrompts`) | linked prompt `"name/version"` | `=` |
//! | `text` (= `span.content`) | any span's JSON | `LIKE` `ILIKE` |
//! | `tag.k`, `metadata.k` | tags, request metadata | `=` `!=` `LIKE` `ILIKE` `RLIKE` `IS [NOT] NULL` |
//! | `span.name`, `span.type`, `span.status`, `span.attributes.k` | some span of the trace | `=` `!=` `LIKE` `ILIKE` `RLIKE` `IN` `NOT IN` |
//! | `span.content` | some span's JSON | `LIKE` `ILIKE` |
//! | `feedback.n`, `expectation.n` | a valid assessment's JSON value | `=` `!=` `LIKE` `ILIKE` `RLIKE` `IS [NOT] NULL`; `<` `<=` `>` `>=` on numeric values |
//! | `issue.id` | an issue reference | `=` |
//!
//! `order_by` items are `identifier [ASC|DESC]` over `experiment_id`, `timestamp[_ms]`,
//! `execution_time[_ms]`, `status`, `request_id`, `name`, `run_id`, `tag.k` and `metadata.k`; the
//! order always ends with `timestamp_ms DESC, request_id ASC` unless those were given.

use crate::error::{Error, Result};
use crate::trace_json::OrderedJson;
use crate::traces::{COST_KEYS, COST_METADATA, TOKEN_KEYS, TOKEN_USAGE_METADATA};

/// The trace name tag, kept in `trace_info.trace_name`.
pub const TRACE_NAME_TAG: &str = "mlflow.traceName";
/// The run a trace was made in.
pub const SOURCE_RUN_METADATA: &str = "mlflow.sourceRun";
/// The session of a trace, kept in `trace_info.session_id`.
pub const SESSION_METADATA: &str = "mlflow.trace.session";
const LINKED_PROMPTS_TAG: &str = "mlflow.linkedPrompts";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    NotEq,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    RLike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "=",
            Operator::NotEq => "!=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Like => "LIKE",
            Operator::ILike => "ILIKE",
            Operator::RLike => "RLIKE",
            Operator::In => "IN",
            Operator::NotIn => "NOT IN",
            Operator::IsNull => "IS NULL",
            Operator::IsNotNull => "IS NOT NULL",
        }
    }

    fn is_numeric(self) -> bool {
        matches!(
            self,
            Operator::Eq
                | Operator::NotEq
                | Operator::Gt
                | Operator::Ge
                | Operator::Lt
                | Operator::Le
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Number(f64),
    String(String),
    List(Vec<String>),
    None,
}

/// A `trace_info` column a filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceColumn {
    TimestampMs,
    ExecutionTimeMs,
    /// `timestamp_ms + COALESCE(execution_time_ms, 0)`.
    EndTimeMs,
    Status,
    RequestId,
    ClientRequestId,
    TraceName,
    SessionId,
    ExperimentId,
}

impl TraceColumn {
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            TraceColumn::TimestampMs
                | TraceColumn::ExecutionTimeMs
                | TraceColumn::EndTimeMs
                | TraceColumn::ExperimentId
        )
    }
}

/// A span column or attribute a filter compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanField {
    Name,
    Type,
    Status,
    Content,
    /// `span.attributes.<name>`: matched in the span's stored JSON as MLflow does.
    Attribute(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssessmentKind {
    Feedback,
    Expectation,
}

impl AssessmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AssessmentKind::Feedback => "feedback",
            AssessmentKind::Expectation => "expectation",
        }
    }
}

/// One term of a trace filter; a filter is their conjunction.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceCondition {
    Column {
        column: TraceColumn,
        operator: Operator,
        value: FilterValue,
    },
    Tag {
        key: String,
        operator: Operator,
        value: FilterValue,
    },
    Metadata {
        key: String,
        operator: Operator,
        value: FilterValue,
    },
    /// Made in the run (metadata `mlflow.sourceRun`) or linked to it.
    RunId(String),
    /// Linked to the prompt version `name/version`.
    Prompt(String),
    Span {
        field: SpanField,
        operator: Operator,
        value: FilterValue,
    },
    Assessment {
        kind: AssessmentKind,
        name: String,
        operator: Operator,
        value: FilterValue,
    },
    Issue(String),
    /// `mlflow.trace.tokenUsage` or `mlflow.trace.cost`, which live in `trace_info` columns:
    /// `IS NULL` when every column is NULL, `=` when the value is the exact JSON MLflow writes for the
    /// columns (`expected`: each column's value, `None` for NULL; no `expected` never matches), `!=`
    /// when some column is set and `=` does not hold.
    Analytics {
        columns: &'static [&'static str],
        operator: Operator,
        expected: Option<Vec<Option<f64>>>,
    },
}

/// What a search orders by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceOrderKey {
    Column(TraceColumn),
    Tag(String),
    Metadata(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceOrderBy {
    pub key: TraceOrderKey,
    pub ascending: bool,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_parameter(message)
}

/// A token-level cursor over a filter string.
struct Cursor<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.position..]
    }

    fn skip_whitespace(&mut self) {
        let rest = self.rest();
        self.position += rest.len() - rest.trim_start().len();
    }

    fn at_end(&self) -> bool {
        self.rest().trim().is_empty()
    }

    /// Consumes a case-insensitive keyword followed by a non-word character or the end.
    fn keyword(&mut self, word: &str) -> bool {
        let rest = self.rest();
        let Some(candidate) = rest.get(..word.len()) else {
            return false;
        };
        let boundary = rest[word.len()..]
            .chars()
            .next()
            .is_none_or(|next| !(next.is_alphanumeric() || next == '_'));
        if candidate.eq_ignore_ascii_case(word) && boundary {
            self.position += word.len();
            true
        } else {
            false
        }
    }

    fn quoted(&mut self, quote: char) -> Result<String> {
        let rest = self.rest();
        let body = &rest[quote.len_utf8()..];
        match body.find(quote) {
            Some(end) => {
                self.position += quote.len_utf8() * 2 + end;
                Ok(body[..end].to_owned())
            }
            None => Err(invalid(format!(
                "Invalid filter string: unterminated quote in '{}'",
                self.text
            ))),
        }
    }

    fn identifier(&mut self) -> Result<String> {
        let mut identifier = String::new();
        loop {
            match self.rest().chars().next() {
                Some(quote @ ('`' | '"')) => {
                    let part = self.quoted(quote)?;
                    identifier.push_str(&part);
                }
                Some(character) if character.is_alphanumeric() || character == '_' => {
                    let rest = self.rest();
                    let length = rest
                        .find(|next: char| !(next.is_alphanumeric() || next == '_'))
                        .unwrap_or(rest.len());
                    identifier.push_str(&rest[..length]);
                    self.position += length;
                }
                _ => break,
            }
            if self.rest().starts_with('.') {
                identifier.push('.');
                self.position += 1;
            } else {
                break;
            }
        }
        if identifier.is_empty() {
            return Err(invalid(format!(
                "Invalid filter string '{}': expected an identifier at '{}'",
                self.text,
                self.rest()
            )));
        }
        Ok(identifier)
    }

    fn operator(&mut self) -> Result<Operator> {
        for (symbol, operator) in [
            (">=", Operator::Ge),
            ("<=", Operator::Le),
            ("!=", Operator::NotEq),
            ("<>", Operator::NotEq),
            ("=", Operator::Eq),
            (">", Operator::Gt),
            ("<", Operator::Lt),
        ] {
            if self.rest().starts_with(symbol) {
                self.position += symbol.len();
                return Ok(operator);
            }
        }
        if self.keyword("LIKE") {
            return Ok(Operator::Like);
        }
        if self.keyword("ILIKE") {
            return Ok(Operator::ILike);
        }
        if self.keyword("RLIKE") {
            return Ok(Operator::RLike);
        }
        if self.keyword("IN") {
            return Ok(Operator::In);
        }
        if self.keyword("IS") {
            self.skip_whitespace();
            let negated = self.keyword("NOT");
            self.skip_whitespace();
            if !self.keyword("NULL") {
                return Err(invalid(format!(
                    "Invalid filter string '{}': expected NULL after IS",
                    self.text
                )));
            }
            return Ok(if negated {
                Operator::IsNotNull
            } else {
                Operator::IsNull
            });
        }
        if self.keyword("NOT") {
            self.skip_whitespace();
            if self.keyword("IN") {
                return Ok(Operator::NotIn);
            }
        }
        Err(invalid(format!(
            "Invalid filter string '{}': expected a comparison operator at '{}'",
            self.text,
            self.rest()
        )))
    }

    fn scalar(&mut self) -> Result<FilterValue> {
        match self.rest().chars().next() {
            Some(quote @ ('\'' | '"')) => Ok(FilterValue::String(self.quoted(quote)?)),
            _ => {
                let rest = self.rest();
                let length = rest
                    .find(|next: char| {
                        !(next.is_ascii_digit() || matches!(next, '.' | '-' | '+' | 'e' | 'E'))
                    })
                    .unwrap_or(rest.len());
                let number = rest[..length].parse::<f64>().map_err(|_| {
                    invalid(format!(
                        "Invalid filter string '{}': expected a quoted string or a number at '{rest}'",
                        self.text
                    ))
                })?;
                self.position += length;
                Ok(FilterValue::Number(number))
            }
        }
    }

    fn list(&mut self) -> Result<FilterValue> {
        if !self.rest().starts_with('(') {
            return Err(invalid(format!(
                "Invalid filter string '{}': expected a list like ('a', 'b') after IN",
                self.text
            )));
        }
        self.position += 1;
        let mut items = Vec::new();
        loop {
            self.skip_whitespace();
            if self.rest().starts_with(')') {
                self.position += 1;
                break;
            }
            match self.scalar()? {
                FilterValue::String(text) => items.push(text),
                _ => return Err(invalid(
                    "While parsing a list in the query, expected string value, punctuation, or \
                         whitespace",
                )),
            }
            self.skip_whitespace();
            if self.rest().starts_with(',') {
                self.position += 1;
            } else if !self.rest().starts_with(')') {
                return Err(invalid(format!(
                    "Invalid filter string '{}': expected ',' or ')' in the list",
                    self.text
                )));
            }
        }
        Ok(FilterValue::List(items))
    }
}

/// Splits `entity.key` at its first dot; no dot means an attribute.
fn split_identifier(identifier: &str) -> (String, String) {
    match identifier.split_once('.') {
        Some((entity, key)) => {
            let entity = entity.to_ascii_lowercase();
            let known = matches!(
                entity.as_str(),
                "attribute"
                    | "attributes"
                    | "trace"
                    | "tag"
                    | "tags"
                    | "metadata"
                    | "request_metadata"
                    | "span"
                    | "feedback"
                    | "expectation"
                    | "issue"
            );
            if known {
                (entity, key.to_owned())
            } else {
                (String::new(), identifier.to_owned())
            }
        }
        None => ("attribute".to_owned(), identifier.to_owned()),
    }
}

fn require(operator: Operator, allowed: &[Operator], what: &str) -> Result<()> {
    if allowed.contains(&operator) {
        Ok(())
    } else {
        let names: Vec<&str> = allowed.iter().map(|allowed| allowed.as_str()).collect();
        Err(invalid(format!(
            "Invalid comparator '{}' for {what}, not one of {names:?}",
            operator.as_str()
        )))
    }
}

const STRING_OPERATORS: &[Operator] = &[
    Operator::Eq,
    Operator::NotEq,
    Operator::Like,
    Operator::ILike,
    Operator::RLike,
    Operator::In,
    Operator::NotIn,
];
const KEY_VALUE_OPERATORS: &[Operator] = &[
    Operator::Eq,
    Operator::NotEq,
    Operator::Like,
    Operator::ILike,
    Operator::RLike,
    Operator::IsNull,
    Operator::IsNotNull,
];

fn string_value(value: FilterValue, what: &str) -> Result<FilterValue> {
    match value {
        FilterValue::Number(_) => Err(invalid(format!(
            "Invalid value for {what}: expected a quoted string"
        ))),
        other => Ok(other),
    }
}

fn resolve(identifier: &str, operator: Operator, value: FilterValue) -> Result<TraceCondition> {
    let (entity, key) = split_identifier(identifier);
    let key = key.trim_matches('`').to_owned();
    match entity.as_str() {
        "attribute" | "attributes" | "trace" => resolve_attribute(&key, operator, value),
        "tag" | "tags" => {
            require(operator, KEY_VALUE_OPERATORS, &format!("tag '{key}'"))?;
            tag_condition(key, operator, value)
        }
        "metadata" | "request_metadata" => {
            require(operator, KEY_VALUE_OPERATORS, &format!("metadata '{key}'"))?;
            metadata_condition(key, operator, value)
        }
        "span" => {
            let field = match key.as_str() {
                "name" => SpanField::Name,
                "type" => SpanField::Type,
                "status" => SpanField::Status,
                "content" => SpanField::Content,
                other => match other.strip_prefix("attributes.") {
                    Some(name) if !name.is_empty() => {
                        SpanField::Attribute(name.trim_matches('`').to_owned())
                    }
                    Some(_) => {
                        return Err(invalid(
                            "Span attribute name cannot be empty after 'attributes.'",
                        ))
                    }
                    None => {
                        return Err(invalid(format!(
                            "Invalid span attribute '{other}'. Supported attributes: name, status, \
                             type, attributes.<attribute_name>."
                        )))
                    }
                },
            };
            let allowed = if field == SpanField::Content {
                &[Operator::Like, Operator::ILike][..]
            } else {
                STRING_OPERATORS
            };
            require(operator, allowed, &format!("span.{key}"))?;
            Ok(TraceCondition::Span {
                field,
                operator,
                value: string_value(value, &format!("span.{key}"))?,
            })
        }
        "feedback" | "expectation" => {
            if key.is_empty() {
                return Err(invalid("Assessment field name cannot be empty"));
            }
            let mut allowed = KEY_VALUE_OPERATORS.to_vec();
            allowed.extend([Operator::Gt, Operator::Ge, Operator::Lt, Operator::Le]);
            require(operator, &allowed, &format!("assessment.{key}"))?;
            Ok(TraceCondition::Assessment {
                kind: if entity == "feedback" {
                    AssessmentKind::Feedback
                } else {
                    AssessmentKind::Expectation
                },
                name: key,
                operator,
                value,
            })
        }
        "issue" => {
            if key != "id" {
                return Err(invalid(format!(
                    "Invalid issue attribute '{key}'. Supported attributes: id"
                )));
            }
            require(operator, &[Operator::Eq], "issue.id")?;
            match value {
                FilterValue::String(id) => Ok(TraceCondition::Issue(id)),
                _ => Err(invalid(
                    "Invalid value for issue.id: expected a quoted string",
                )),
            }
        }
        _ => Err(invalid(format!(
            "Invalid search expression type '{}'",
            identifier.split('.').next().unwrap_or(identifier)
        ))),
    }
}

fn tag_condition(key: String, operator: Operator, value: FilterValue) -> Result<TraceCondition> {
    let value = string_value(value, &format!("tag '{key}'"))?;
    if key == TRACE_NAME_TAG {
        return Ok(TraceCondition::Column {
            column: TraceColumn::TraceName,
            operator,
            value,
        });
    }
    if key == LINKED_PROMPTS_TAG {
        if operator != Operator::Eq {
            return Err(invalid(format!(
                "Invalid comparator '{}' for prompts filter. Only '=' is supported with format: \
                 prompt = \"name/version\"",
                operator.as_str()
            )));
        }
        return match value {
            FilterValue::String(prompt) if prompt.matches('/').count() == 1 => {
                Ok(TraceCondition::Prompt(prompt))
            }
            FilterValue::String(prompt) => Err(invalid(format!(
                "Invalid prompts filter value '{prompt}'. Expected format: prompt = \"name/version\""
            ))),
            _ => Err(invalid("Invalid prompts filter value")),
        };
    }
    Ok(TraceCondition::Tag {
        key,
        operator,
        value,
    })
}

fn metadata_condition(
    key: String,
    operator: Operator,
    value: FilterValue,
) -> Result<TraceCondition> {
    let value = string_value(value, &format!("metadata '{key}'"))?;
    if key == TOKEN_USAGE_METADATA || key == COST_METADATA {
        return analytics_condition(&key, operator, &value);
    }
    if key == SESSION_METADATA {
        return Ok(TraceCondition::Column {
            column: TraceColumn::SessionId,
            operator,
            value,
        });
    }
    if key == SOURCE_RUN_METADATA && operator == Operator::Eq {
        if let FilterValue::String(run_id) = value {
            return Ok(TraceCondition::RunId(run_id));
        }
    }
    Ok(TraceCondition::Metadata {
        key,
        operator,
        value,
    })
}

/// MLflow's `get_trace_analytics_metadata_filter`.
fn analytics_condition(
    key: &str,
    operator: Operator,
    value: &FilterValue,
) -> Result<TraceCondition> {
    let tokens = key == TOKEN_USAGE_METADATA;
    let columns: &'static [&'static str] = if tokens { &TOKEN_KEYS } else { &COST_KEYS };
    match operator {
        Operator::IsNull | Operator::IsNotNull => {
            return Ok(TraceCondition::Analytics {
                columns,
                operator,
                expected: None,
            })
        }
        Operator::Eq | Operator::NotEq => {}
        other => {
            return Err(invalid(format!(
                "Comparator '{}' is not supported for reserved metadata '{key}'. Only '=', '!=', \
                 'IS NULL', and 'IS NOT NULL' are supported.",
                other.as_str()
            )))
        }
    }
    let text = match value {
        FilterValue::String(text) => text.as_str(),
        _ => "",
    };
    let expected = match OrderedJson::parse(text) {
        Some(OrderedJson::Object(entries))
            if entries
                .iter()
                .all(|(entry_key, _)| columns.contains(&entry_key.as_str())) =>
        {
            let mut normalized: Vec<(String, OrderedJson)> = Vec::new();
            let mut values: Vec<Option<f64>> = Vec::with_capacity(columns.len());
            for column in columns {
                let converted = entries
                    .iter()
                    .find(|(entry_key, _)| entry_key == column)
                    .and_then(|(_, value)| match value {
                        OrderedJson::Int(number) => Some(OrderedJson::Int(*number)),
                        OrderedJson::Float(number) if tokens && number.fract() == 0.0 => {
                            Some(OrderedJson::Int(*number as i64))
                        }
                        OrderedJson::Float(number) if !tokens && number.is_finite() => {
                            Some(OrderedJson::Float(*number))
                        }
                        _ => None,
                    })
                    .map(|value| {
                        if tokens {
                            value
                        } else {
                            OrderedJson::Float(value.as_f64().unwrap_or(0.0))
                        }
                    });
                values.push(converted.as_ref().and_then(OrderedJson::as_f64));
                if let Some(converted) = converted {
                    normalized.push(((*column).to_owned(), converted));
                }
            }
            let canonical = OrderedJson::Object(normalized.clone()).python_dumps(true);
            (!normalized.is_empty() && canonical == text).then_some(values)
        }
        _ => None,
    };
    Ok(TraceCondition::Analytics {
        columns,
        operator,
        expected,
    })
}

fn resolve_attribute(key: &str, operator: Operator, value: FilterValue) -> Result<TraceCondition> {
    let lowered = key.to_ascii_lowercase();
    let column = match lowered.as_str() {
        "timestamp" | "timestamp_ms" => TraceColumn::TimestampMs,
        "execution_time" | "execution_time_ms" => TraceColumn::ExecutionTimeMs,
        "end_time" | "end_time_ms" => TraceColumn::EndTimeMs,
        "status" => TraceColumn::Status,
        "request_id" => TraceColumn::RequestId,
        "client_request_id" => TraceColumn::ClientRequestId,
        "name" => {
            require(operator, KEY_VALUE_OPERATORS, "name")
                .or_else(|_| require(operator, STRING_OPERATORS, "name"))?;
            return tag_condition(TRACE_NAME_TAG.to_owned(), operator, value);
        }
        "run_id" => {
            require(operator, KEY_VALUE_OPERATORS, "run_id")
                .or_else(|_| require(operator, STRING_OPERATORS, "run_id"))?;
            return metadata_condition(SOURCE_RUN_METADATA.to_owned(), operator, value);
        }
        "prompt" => return tag_condition(LINKED_PROMPTS_TAG.to_owned(), operator, value),
        "text" => {
            require(operator, &[Operator::Like, Operator::ILike], "span.content")?;
            return Ok(TraceCondition::Span {
                field: SpanField::Content,
                operator,
                value: string_value(value, "text")?,
            });
        }
        _ => {
            return Err(invalid(format!(
                "Invalid attribute key '{key}' specified. Valid keys are '{{'client_request_id', \
                 'end_time', 'end_time_ms', 'execution_time', 'execution_time_ms', 'name', 'prompt', \
                 'request_id', 'run_id', 'status', 'text', 'timestamp', 'timestamp_ms'}}'"
            )))
        }
    };
    if column.is_numeric() {
        if !operator.is_numeric() {
            return Err(invalid(format!(
                "Invalid comparator '{}' not one of '{{'=', '!=', '>', '>=', '<', '<='}}'",
                operator.as_str()
            )));
        }
        if !matches!(value, FilterValue::Number(_)) {
            return Err(invalid(format!(
                "Invalid value for numeric attribute '{key}': expected a number"
            )));
        }
    } else {
        require(operator, STRING_OPERATORS, &format!("attribute '{key}'"))?;
        if !matches!(value, FilterValue::String(_) | FilterValue::List(_)) {
            return Err(invalid(format!(
                "Invalid value for attribute '{key}': expected a quoted string"
            )));
        }
    }
    Ok(TraceCondition::Column {
        column,
        operator,
        value,
    })
}

/// Parses a `traces/search` filter; blank means no condition.
pub fn parse_trace_filter(filter: &str) -> Result<Vec<TraceCondition>> {
    let mut cursor = Cursor {
        text: filter,
        position: 0,
    };
    let mut conditions = Vec::new();
    cursor.skip_whitespace();
    if cursor.at_end() {
        return Ok(conditions);
    }
    loop {
        cursor.skip_whitespace();
        let identifier = cursor.identifier()?;
        cursor.skip_whitespace();
        let operator = cursor.operator()?;
        cursor.skip_whitespace();
        let value = match operator {
            Operator::IsNull | Operator::IsNotNull => FilterValue::None,
            Operator::In | Operator::NotIn => cursor.list()?,
            _ => cursor.scalar()?,
        };
        conditions.push(resolve(&identifier, operator, value)?);
        cursor.skip_whitespace();
        if cursor.at_end() {
            break;
        }
        if !cursor.keyword("AND") {
            return Err(invalid(format!(
                "Invalid filter string '{filter}': expected AND at '{}'",
                cursor.rest()
            )));
        }
    }
    Ok(conditions)
}

/// Parses one `order_by` item.
pub fn parse_trace_order_by(clause: &str) -> Result<TraceOrderBy> {
    let trimmed = clause.trim();
    let (identifier, ascending) = match trimmed.rsplit_once(char::is_whitespace) {
        Some((identifier, direction)) if direction.eq_ignore_ascii_case("ASC") => {
            (identifier.trim(), true)
        }
        Some((identifier, direction)) if direction.eq_ignore_ascii_case("DESC") => {
            (identifier.trim(), false)
        }
        _ => (trimmed, true),
    };
    let mut cursor = Cursor {
        text: identifier,
        position: 0,
    };
    let parsed = cursor.identifier()?;
    if !cursor.at_end() {
        return Err(invalid(format!("Invalid order_by clause '{clause}'")));
    }
    let (entity, key) = split_identifier(&parsed);
    let key = key.trim_matches('`').to_owned();
    let order_key = match entity.as_str() {
        "attribute" | "attributes" | "trace" => match key.to_ascii_lowercase().as_str() {
            "experiment_id" => TraceOrderKey::Column(TraceColumn::ExperimentId),
            "timestamp" | "timestamp_ms" => TraceOrderKey::Column(TraceColumn::TimestampMs),
            "execution_time" | "execution_time_ms" => {
                TraceOrderKey::Column(TraceColumn::ExecutionTimeMs)
            }
            "status" => TraceOrderKey::Column(TraceColumn::Status),
            "request_id" => TraceOrderKey::Column(TraceColumn::RequestId),
            "name" => TraceOrderKey::Column(TraceColumn::TraceName),
            "run_id" => TraceOrderKey::Metadata(SOURCE_RUN_METADATA.to_owned()),
            _ => {
                return Err(invalid(format!(
                    "Invalid order_by attribute key '{key}' in '{clause}'"
                )))
            }
        },
        "tag" | "tags" if key == TRACE_NAME_TAG => TraceOrderKey::Column(TraceColumn::TraceName),
        "tag" | "tags" => TraceOrderKey::Tag(key),
        "metadata" | "request_metadata" if key == SESSION_METADATA => {
            TraceOrderKey::Column(TraceColumn::SessionId)
        }
        "metadata" | "request_metadata"
            if key == "mlflow.trace.tokenUsage" || key == "mlflow.trace.cost" =>
        {
            return Err(invalid(format!(
                "Ordering by reserved metadata '{key}' is not supported because it is represented by \
                 multiple columns."
            )))
        }
        "metadata" | "request_metadata" => TraceOrderKey::Metadata(key),
        _ => {
            return Err(invalid(format!(
                "Invalid identifier type '{entity}' in order_by '{clause}'"
            )))
        }
    };
    Ok(TraceOrderBy {
        key: order_key,
        ascending,
    })
}

/// Parses every `order_by` item, refusing the same field twice as MLflow does.
pub fn parse_trace_order_bys(clauses: &[String]) -> Result<Vec<TraceOrderBy>> {
    let mut parsed: Vec<TraceOrderBy> = Vec::with_capacity(clauses.len());
    for clause in clauses {
        let order_by = parse_trace_order_by(clause)?;
        if parsed.iter().any(|existing| existing.key == order_by.key) {
            return Err(invalid(format!(
                "`order_by` contains duplicate fields: {clauses:?}"
            )));
        }
        parsed.push(order_by);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(filter: &str) -> TraceCondition {
        let mut parsed = parse_trace_filter(filter).unwrap();
        assert_eq!(parsed.len(), 1, "{filter}");
        parsed.remove(0)
    }

    #[test]
    fn attributes() {
        assert_eq!(
            one("timestamp_ms > 5"),
            TraceCondition::Column {
                column: TraceColumn::TimestampMs,
                operator: Operator::Gt,
                value: FilterValue::Number(5.0)
            }
        );
        assert_eq!(
            one("trace.status = 'OK'"),
            TraceCondition::Column {
                column: TraceColumn::Status,
                operator: Operator::Eq,
                value: FilterValue::String("OK".into())
            }
        );
        assert_eq!(
            one("attributes.execution_time <= 10"),
            TraceCondition::Column {
                column: TraceColumn::ExecutionTimeMs,
                operator: Operator::Le,
                value: FilterValue::Number(10.0)
            }
        );
        assert_eq!(
            one("name = 'outer'"),
            TraceCondition::Column {
                column: TraceColumn::TraceName,
                operator: Operator::Eq,
                value: FilterValue::String("outer".into())
            }
        );
        assert_eq!(
            one("attribute.run_id = 'abc'"),
            TraceCondition::RunId("abc".into())
        );
        assert_eq!(
            one("request_id IN ('a', 'b')"),
            TraceCondition::Column {
                column: TraceColumn::RequestId,
                operator: Operator::In,
                value: FilterValue::List(vec!["a".into(), "b".into()])
            }
        );
    }

    #[test]
    fn tags_metadata_spans_and_assessments() {
        assert_eq!(
            one("tags.`mlflow.source` = 'x'"),
            TraceCondition::Tag {
                key: "mlflow.source".into(),
                operator: Operator::Eq,
                value: FilterValue::String("x".into())
            }
        );
        assert_eq!(
            one("tag.k IS NOT NULL"),
            TraceCondition::Tag {
                key: "k".into(),
                operator: Operator::IsNotNull,
                value: FilterValue::None
            }
        );
        assert_eq!(
            one("metadata.`mlflow.user` LIKE 'ro%'"),
            TraceCondition::Metadata {
                key: "mlflow.user".into(),
                operator: Operator::Like,
                value: FilterValue::String("ro%".into())
            }
        );
        assert_eq!(
            one("span.attributes.`my.attr` = 'v'"),
            TraceCondition::Span {
                field: SpanField::Attribute("my.attr".into()),
                operator: Operator::Eq,
                value: FilterValue::String("v".into())
            }
        );
        assert_eq!(
            one("span.type = 'LLM'"),
            TraceCondition::Span {
                field: SpanField::Type,
                operator: Operator::Eq,
                value: FilterValue::String("LLM".into())
            }
        );
        assert_eq!(
            one("feedback.good >= 4"),
            TraceCondition::Assessment {
                kind: AssessmentKind::Feedback,
                name: "good".into(),
                operator: Operator::Ge,
                value: FilterValue::Number(4.0)
            }
        );
        assert_eq!(
            parse_trace_filter("status = 'OK' and tag.a = 'b' AND timestamp >= 1")
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn reserved_analytics_metadata() {
        assert_eq!(
            one(
                "metadata.`mlflow.trace.tokenUsage` = '{\"input_tokens\": 3, \"total_tokens\": 7}'"
            ),
            TraceCondition::Analytics {
                columns: &TOKEN_KEYS,
                operator: Operator::Eq,
                expected: Some(vec![Some(3.0), None, Some(7.0), None, None, None]),
            }
        );
        // Not the JSON MLflow writes (spacing): never equal.
        assert_eq!(
            one("metadata.`mlflow.trace.tokenUsage` = '{\"input_tokens\":3}'"),
            TraceCondition::Analytics {
                columns: &TOKEN_KEYS,
                operator: Operator::Eq,
                expected: None,
            }
        );
        assert!(parse_trace_filter("metadata.`mlflow.trace.cost` LIKE '%1%'").is_err());
    }

    #[test]
    fn errors() {
        for bad in [
            "status > 'OK'",
            "timestamp_ms = 'x'",
            "bogus = 1",
            "status = 'OK' tag.a = 'b'",
            "span.bogus = 'x'",
            "span.content = 'x'",
            "tag.a >",
            "status = 'OK",
            "issue.name = 'x'",
        ] {
            assert!(parse_trace_filter(bad).is_err(), "{bad}");
        }
        assert!(parse_trace_filter("   ").unwrap().is_empty());
    }

    #[test]
    fn order_by() {
        assert_eq!(
            parse_trace_order_by("timestamp_ms DESC").unwrap(),
            TraceOrderBy {
                key: TraceOrderKey::Column(TraceColumn::TimestampMs),
                ascending: false
            }
        );
        assert_eq!(
            parse_trace_order_by("tag.`a.b`").unwrap(),
            TraceOrderBy {
                key: TraceOrderKey::Tag("a.b".into()),
                ascending: true
            }
        );
        assert!(parse_trace_order_by("bogus").is_err());
        assert!(parse_trace_order_bys(&["status".into(), "status DESC".into()]).is_err());
    }
}
