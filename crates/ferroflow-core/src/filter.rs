//! The MLflow search filter and `order_by` grammar for runs and experiments, parsed into a typed conjunction
//! of [`Comparison`]s and [`OrderBy`] clauses. No I/O and no SQL: `ferroflow-store` compiles the result.
//!
//! The behaviour follows MLflow 3.17 (`mlflow/utils/search_utils.py` and the checks that
//! `sqlalchemy_store.py` adds when it builds SQL), so a filter MLflow accepts is accepted here and means the
//! same thing, and a filter MLflow rejects with `INVALID_PARAMETER_VALUE` is rejected here, at parse time,
//! with a message in MLflow's wording where one exists.
//!
//! # Filter grammar
//!
//! Keywords (`AND`, `LIKE`, `ILIKE`, `IN`, `NOT`, `IS`, `NULL`) are case-insensitive; entity prefixes and
//! keys are case-sensitive. `ws` is any Unicode white space.
//!
//! ```text
//! filter      = ws* [ comparison { ws* "AND" ws* comparison } ] ws*
//! comparison  = identifier ws* operator ws* scalar
//!             | identifier ws+ "IS" ws+ [ "NOT" ws+ ] "NULL"
//!             | identifier ws+ [ "NOT" ws+ ] "IN" ws* list
//! operator    = "=" | "!=" | ">" | ">=" | "<" | "<=" | "LIKE" | "ILIKE"
//! identifier  = [ entity "." ] key          -- split at the first dot; no entity means an attribute
//! entity      = word | "`" word "`"
//! key         = bare-key | "`" { any but "`" } "`" | '"' { any but '"' } '"'
//! bare-key    = word-char { word-char | "." }   -- after an entity; a key without entity has no dots
//! word-char   = Unicode letter or digit | "_"
//! scalar      = string | number
//! string      = "'" { any but "'" | "''" | "\'" } "'"  |  '"' { any but '"' | '""' | '\"' } '"'
//! number      = [ "-" ] ( digit+ [ "." digit* ] | "." digit+ ) [ ( "e" | "E" ) [ "+" | "-" ] digit+ ]
//! list        = "(" ws* [ list-string { ws* "," ws* list-string } [ ws* "," ] ] ws* ")"
//! list-string = a Python string literal in single or double quotes; backslash escapes are decoded
//! ```
//!
//! A `string` keeps its text between the quotes verbatim, as MLflow does: `'it''s'` is the value `it''s`
//! and `'a\'b'` is `a\'b`. Inside a `list`, strings are Python literals (MLflow evaluates the list with
//! `ast.literal_eval`), so `('a\'b')` is the value `a'b`.
//!
//! # Identifiers and operators (runs)
//!
//! | entity prefixes | keys | operators | value |
//! |---|---|---|---|
//! | `metric`, `metrics` | any | `=` `!=` `>` `>=` `<` `<=` | number |
//! | `param`, `params`, `parameter`, `parameters` | any | `=` `!=` `LIKE` `ILIKE` `IS [NOT] NULL` | string |
//! | `tag`, `tags` | any | `=` `!=` `LIKE` `ILIKE` `IS [NOT] NULL` | string |
//! | none, `attribute`, `attributes`, `attr`, `run` | `run_id`, `run_name` (`run name`, `Run name`, `Run Name`), `status`, `user_id`, `artifact_uri` | `=` `!=` `LIKE` `ILIKE`; `IN` `NOT IN` for `run_id` only | string / list |
//! | same | `start_time` (`created`, `Created`), `end_time` | `=` `!=` `>` `>=` `<` `<=` | number |
//! | `dataset`, `datasets` | `name`, `digest`, `context` | `=` `!=` `LIKE` `ILIKE` `IN` `NOT IN` | string / list |
//!
//! Attribute keys are stored in their canonical form: `created` becomes `start_time`, `run name` becomes
//! `run_name`. `lifecycle_stage` and `experiment_id` are not searchable run attributes in MLflow.
//!
//! # Identifiers and operators (experiments)
//!
//! | entity prefixes | keys | operators | value |
//! |---|---|---|---|
//! | none, `attribute` | `name` | `=` `!=` `LIKE` `ILIKE` | string |
//! | same | `experiment_id` | `=` `!=` `IN` `NOT IN` | string / list of integers in quotes |
//! | same | `creation_time`, `last_update_time` | `=` `!=` `>` `>=` `<` `<=` | integer |
//! | `tag`, `tags` | any | `=` `!=` `LIKE` `ILIKE` `IS [NOT] NULL` | string |
//!
//! An `experiment_id` value is normalized to the decimal form of its integer (`'+07'` becomes `7`).
//!
//! # `order_by` grammar
//!
//! ```text
//! order_by    = ws* identifier [ ws+ ( "ASC" | "DESC" ) ] ws*
//! ```
//!
//! Ascending is the default. Runs order by metrics, params, tags and the attributes above except the
//! spelled-out `run name` forms (MLflow rejects them there); experiments by their four attributes only.
//!
//! # Where ferroflow is stricter than MLflow
//!
//! MLflow tokenizes with `sqlparse` and only looks at the comparisons it finds, so some malformed filters
//! slip through it. ferroflow rejects them: a dangling `AND` (`a = 1 AND`), two comparisons without `AND`
//! between them, and a list on the right of `=`.

use crate::error::{Error, Result};
use std::fmt;

/// What an identifier refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    Metric,
    Param,
    Tag,
    Attribute,
    Dataset,
}

impl KeyType {
    /// MLflow's name of the identifier type, as its error messages spell it.
    pub fn mlflow_name(self) -> &'static str {
        match self {
            KeyType::Metric => "metric",
            KeyType::Param => "parameter",
            KeyType::Tag => "tag",
            KeyType::Attribute => "attribute",
            KeyType::Dataset => "dataset",
        }
    }

    /// The prefix used when rendering an identifier.
    fn render_prefix(self) -> &'static str {
        match self {
            KeyType::Metric => "metrics",
            KeyType::Param => "params",
            KeyType::Tag => "tags",
            KeyType::Attribute => "attribute",
            KeyType::Dataset => "datasets",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    NotEq,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl Comparator {
    /// The operator as MLflow writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparator::Eq => "=",
            Comparator::NotEq => "!=",
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Like => "LIKE",
            Comparator::ILike => "ILIKE",
            Comparator::In => "IN",
            Comparator::NotIn => "NOT IN",
            Comparator::IsNull => "IS NULL",
            Comparator::IsNotNull => "IS NOT NULL",
        }
    }
}

impl fmt::Display for Comparator {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    String(String),
    List(Vec<String>),
    Null,
}

/// One `identifier comparator value` term; a filter is a conjunction of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub key_type: KeyType,
    /// For attributes, the canonical column name (`start_time` for `created`, `run_name` for `run name`).
    pub key: String,
    pub comparator: Comparator,
    pub value: Value,
}

/// One `order_by` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub key_type: KeyType,
    pub key: String,
    pub ascending: bool,
}

/// Parses the `filter` of `runs/search`. Blank means no filter.
pub fn parse_run_filter(filter: &str) -> Result<Vec<Comparison>> {
    parse_filter(filter, Target::Runs)
}

/// Parses the `filter` of `experiments/search`. Blank means no filter.
pub fn parse_experiment_filter(filter: &str) -> Result<Vec<Comparison>> {
    parse_filter(filter, Target::Experiments)
}

/// Parses one `order_by` item of `runs/search`.
pub fn parse_run_order_by(clause: &str) -> Result<OrderBy> {
    parse_order_by(clause, Target::Runs)
}

/// Parses one `order_by` item of `experiments/search`.
pub fn parse_experiment_order_by(clause: &str) -> Result<OrderBy> {
    parse_order_by(clause, Target::Experiments)
}

/// Renders a filter as text that parses back to the same comparisons: `AND`-joined [`Comparison`]s.
pub fn render_filter(comparisons: &[Comparison]) -> String {
    comparisons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" AND ")
}

impl fmt::Display for Comparison {
    /// Renders the comparison in the filter grammar. The text parses back to the same comparison unless a
    /// string value holds both kinds of quote or ends in a backslash, which the grammar cannot express.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_identifier(formatter, self.key_type, &self.key)?;
        write!(formatter, " {}", self.comparator)?;
        match &self.value {
            Value::Null => Ok(()),
            Value::Number(number) => write!(formatter, " {}", render_number(*number)),
            Value::String(text) => {
                let quote = if text.contains('\'') { '"' } else { '\'' };
                write!(formatter, " {quote}{text}{quote}")
            }
            Value::List(items) => {
                formatter.write_str(" (")?;
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        formatter.write_str(", ")?;
                    }
                    formatter.write_str("'")?;
                    for character in item.chars() {
                        match character {
                            '\\' => formatter.write_str("\\\\")?,
                            '\'' => formatter.write_str("\\'")?,
                            '\n' => formatter.write_str("\\n")?,
                            '\t' => formatter.write_str("\\t")?,
                            '\r' => formatter.write_str("\\r")?,
                            other => write!(formatter, "{other}")?,
                        }
                    }
                    formatter.write_str("'")?;
                }
                formatter.write_str(")")
            }
        }
    }
}

impl fmt::Display for OrderBy {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_identifier(formatter, self.key_type, &self.key)?;
        formatter.write_str(if self.ascending { " ASC" } else { " DESC" })
    }
}

fn write_identifier(
    formatter: &mut fmt::Formatter<'_>,
    key_type: KeyType,
    key: &str,
) -> fmt::Result {
    if key_type == KeyType::Attribute && !key.is_empty() && key.chars().all(is_word_char) {
        return formatter.write_str(key);
    }
    write!(formatter, "{}.", key_type.render_prefix())?;
    if !key.is_empty()
        && key.chars().next().is_some_and(is_word_char)
        && key.chars().all(|c| is_word_char(c) || c == '.')
    {
        formatter.write_str(key)
    } else if key.contains('`') {
        write!(formatter, "\"{key}\"")
    } else {
        write!(formatter, "`{key}`")
    }
}

/// Integral values print without a fraction so they stay valid for integer-only attributes.
fn render_number(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e16 {
        format!("{number:.0}")
    } else {
        format!("{number:?}")
    }
}

// ---------------------------------------------------------------------------------------------------------
// Targets: which identifiers and operators a search accepts.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Runs,
    Experiments,
}

const RUN_ENTITY_TYPES: &str = "['metric', 'parameter', 'tag', 'attribute', 'dataset']";
const EXPERIMENT_ENTITY_TYPES: &str = "('attribute', 'tag', 'tags')";
const RUN_SEARCH_KEYS: &[&str] = &[
    "Created",
    "Run Name",
    "Run name",
    "artifact_uri",
    "created",
    "end_time",
    "run name",
    "run_id",
    "run_name",
    "start_time",
    "status",
    "user_id",
];
const RUN_ORDER_KEYS: &[&str] = &[
    "Created",
    "artifact_uri",
    "created",
    "end_time",
    "run_id",
    "run_name",
    "start_time",
    "status",
    "user_id",
];
const RUN_NUMERIC_ATTRIBUTES: &[&str] = &["start_time", "end_time"];
const EXPERIMENT_KEYS: &[&str] = &["creation_time", "experiment_id", "last_update_time", "name"];
const EXPERIMENT_NUMERIC_ATTRIBUTES: &[&str] = &["creation_time", "last_update_time"];
const DATASET_KEYS: &[&str] = &["context", "digest", "name"];

const NUMERIC_COMPARATORS: &[Comparator] = &[
    Comparator::Eq,
    Comparator::NotEq,
    Comparator::Gt,
    Comparator::Ge,
    Comparator::Lt,
    Comparator::Le,
];
const KEY_VALUE_COMPARATORS: &[Comparator] = &[
    Comparator::Eq,
    Comparator::NotEq,
    Comparator::Like,
    Comparator::ILike,
    Comparator::IsNull,
    Comparator::IsNotNull,
];
const STRING_ATTRIBUTE_COMPARATORS: &[Comparator] = &[
    Comparator::Eq,
    Comparator::NotEq,
    Comparator::Like,
    Comparator::ILike,
    Comparator::In,
    Comparator::NotIn,
];
const PLAIN_STRING_COMPARATORS: &[Comparator] = &[
    Comparator::Eq,
    Comparator::NotEq,
    Comparator::Like,
    Comparator::ILike,
];
const EXPERIMENT_ID_COMPARATORS: &[Comparator] = &[
    Comparator::Eq,
    Comparator::NotEq,
    Comparator::In,
    Comparator::NotIn,
];

/// Formats names as a Python set literal, the way MLflow's messages show valid choices.
fn python_set<T: AsRef<str>>(items: &[T]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|item| format!("'{}'", item.as_ref()))
        .collect();
    format!("{{{}}}", quoted.join(", "))
}

fn comparator_error(written: &str, allowed: &[Comparator]) -> Error {
    let names: Vec<&str> = allowed
        .iter()
        .map(|comparator| comparator.as_str())
        .collect();
    Error::invalid_parameter(format!(
        "Invalid comparator '{written}' not one of '{}'",
        python_set(&names)
    ))
}

/// Resolves `entity.key` to a key type and canonical key for the given search.
fn resolve_identifier(
    identifier: &RawIdentifier,
    target: Target,
    for_order_by: bool,
) -> Result<(KeyType, String)> {
    let key = identifier.key.as_str();
    let key_type = match (target, identifier.entity.as_deref()) {
        (_, None) => KeyType::Attribute,
        (Target::Runs, Some(entity)) => match entity {
            "metric" | "metrics" => KeyType::Metric,
            "parameter" | "parameters" | "param" | "params" => KeyType::Param,
            "tag" | "tags" => KeyType::Tag,
            "attribute" | "attributes" | "attr" | "run" => KeyType::Attribute,
            "dataset" | "datasets" => KeyType::Dataset,
            other => {
                return Err(Error::invalid_parameter(format!(
                    "Invalid entity type '{other}'. Valid values are {RUN_ENTITY_TYPES}"
                )))
            }
        },
        (Target::Experiments, Some(entity)) => match entity {
            "attribute" => KeyType::Attribute,
            "tag" | "tags" => KeyType::Tag,
            other => {
                return Err(Error::invalid_parameter(format!(
                "Invalid entity type '{other}'. Valid entity types are {EXPERIMENT_ENTITY_TYPES}"
            )))
            }
        },
    };
    match key_type {
        KeyType::Attribute => {
            let valid_keys = match (target, for_order_by) {
                (Target::Runs, false) => RUN_SEARCH_KEYS,
                (Target::Runs, true) => RUN_ORDER_KEYS,
                (Target::Experiments, _) => EXPERIMENT_KEYS,
            };
            if !valid_keys.contains(&key) {
                return Err(Error::invalid_parameter(format!(
                    "Invalid attribute key '{key}' specified. Valid keys are '{}'",
                    python_set(valid_keys)
                )));
            }
            let canonical = match key {
                "created" | "Created" => "start_time",
                "run name" | "Run name" | "Run Name" => "run_name",
                other => other,
            };
            Ok((KeyType::Attribute, canonical.to_owned()))
        }
        KeyType::Dataset => {
            if !DATASET_KEYS.contains(&key) {
                return Err(Error::invalid_parameter(format!(
                    "Invalid dataset key '{key}' specified. Valid keys are '{}'",
                    python_set(DATASET_KEYS)
                )));
            }
            Ok((KeyType::Dataset, key.to_owned()))
        }
        other => Ok((other, key.to_owned())),
    }
}

/// Turns one syntactic comparison into a typed one, applying MLflow's checks in MLflow's order: identifier,
/// `IS NULL` restriction, value type, then operator.
fn resolve_comparison(raw: RawComparison, target: Target) -> Result<Comparison> {
    let (key_type, key) = resolve_identifier(&raw.identifier, target, false)?;
    let is_null_check = matches!(
        raw.comparator,
        RawComparator::Known(Comparator::IsNull | Comparator::IsNotNull)
    );
    if is_null_check {
        match (target, key_type) {
            (Target::Runs, KeyType::Param | KeyType::Tag) | (Target::Experiments, KeyType::Tag) => {
            }
            (Target::Runs, _) => {
                return Err(Error::invalid_parameter(format!(
                "IS NULL / IS NOT NULL is only supported for tags and params, not for '{}' '{}'",
                key_type.mlflow_name(),
                raw.identifier.key
            )))
            }
            (Target::Experiments, _) => {
                return Err(Error::invalid_parameter(format!(
                    "IS NULL / IS NOT NULL is only supported for tags, not for attribute '{}'",
                    raw.identifier.key
                )))
            }
        }
    }

    let kind = value_kind(target, key_type, &key);
    let value = match &raw.value {
        None => Value::Null,
        Some(raw_value) => convert_value(raw_value, kind, target, key_type, &key)?,
    };
    let allowed = allowed_comparators(kind, target);
    let comparator = match raw.comparator {
        RawComparator::Known(comparator) if allowed.contains(&comparator) => comparator,
        RawComparator::Known(comparator) => {
            return Err(comparator_error(comparator.as_str(), allowed))
        }
        RawComparator::Unknown(written) => return Err(comparator_error(&written, allowed)),
    };
    // The list and the IN operators come together: `IN` only parses with a list after it, and a list after
    // any other operator is rejected here.
    if matches!(value, Value::List(_)) && !matches!(comparator, Comparator::In | Comparator::NotIn)
    {
        return Err(Error::invalid_parameter(format!(
            "Invalid comparator '{comparator}' for a list of values: use 'IN' or 'NOT IN'"
        )));
    }
    let value = match (kind, value) {
        (ValueKind::StringOrList { list_key: true }, value) if target == Target::Experiments => {
            normalize_experiment_ids(value)?
        }
        (_, value) => value,
    };
    Ok(Comparison {
        key_type,
        key,
        comparator,
        value,
    })
}

/// The operators an identifier of this kind accepts.
fn allowed_comparators(kind: ValueKind, target: Target) -> &'static [Comparator] {
    match (kind, target) {
        (ValueKind::Number | ValueKind::Integer, _) => NUMERIC_COMPARATORS,
        (ValueKind::KeyValueString, _) => KEY_VALUE_COMPARATORS,
        (ValueKind::StringOrList { list_key: true }, Target::Experiments) => {
            EXPERIMENT_ID_COMPARATORS
        }
        (ValueKind::StringOrList { list_key: false }, Target::Experiments) => {
            PLAIN_STRING_COMPARATORS
        }
        (ValueKind::StringOrList { .. }, Target::Runs) | (ValueKind::DatasetString, _) => {
            STRING_ATTRIBUTE_COMPARATORS
        }
    }
}

/// What type of value an identifier takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    /// Metrics and numeric run attributes.
    Number,
    /// Numeric experiment attributes: integers only.
    Integer,
    /// Params and tags.
    KeyValueString,
    /// String attributes; `list_key` if the attribute also takes a list (`run_id`, `experiment_id`).
    StringOrList { list_key: bool },
    /// Dataset fields: a string or a list.
    DatasetString,
}

fn value_kind(target: Target, key_type: KeyType, key: &str) -> ValueKind {
    match (target, key_type) {
        (_, KeyType::Metric) => ValueKind::Number,
        (_, KeyType::Param | KeyType::Tag) => ValueKind::KeyValueString,
        (_, KeyType::Dataset) => ValueKind::DatasetString,
        (Target::Runs, KeyType::Attribute) if RUN_NUMERIC_ATTRIBUTES.contains(&key) => {
            ValueKind::Number
        }
        (Target::Runs, KeyType::Attribute) => ValueKind::StringOrList {
            list_key: key == "run_id",
        },
        (Target::Experiments, KeyType::Attribute)
            if EXPERIMENT_NUMERIC_ATTRIBUTES.contains(&key) =>
        {
            ValueKind::Integer
        }
        (Target::Experiments, KeyType::Attribute) => ValueKind::StringOrList {
            list_key: key == "experiment_id",
        },
    }
}

fn convert_value(
    raw: &RawValue,
    kind: ValueKind,
    target: Target,
    key_type: KeyType,
    key: &str,
) -> Result<Value> {
    let text = raw.text();
    match kind {
        ValueKind::Number => match raw {
            RawValue::Number { value, .. } => Ok(Value::Number(*value)),
            _ if key_type == KeyType::Metric => Err(Error::invalid_parameter(format!(
                "Expected numeric value type for metric. Found {text}"
            ))),
            _ => Err(Error::invalid_parameter(format!(
                "Expected numeric value type for numeric attribute: {key}. Found {text}"
            ))),
        },
        ValueKind::Integer => match raw {
            RawValue::Number {
                value,
                integer: true,
                ..
            } => Ok(Value::Number(*value)),
            RawValue::Number { .. } => Err(Error::invalid_parameter(format!(
                "Invalid value for numeric attribute '{key}': '{text}'"
            ))),
            _ => Err(Error::invalid_parameter(format!(
                "Expected numeric value type for numeric attribute: {key}. Found {text}"
            ))),
        },
        ValueKind::KeyValueString => match raw {
            RawValue::Quoted(value) => Ok(Value::String(value.clone())),
            RawValue::Bare(_) => Err(unquoted_error(text)),
            _ => Err(Error::invalid_parameter(format!(
                "Expected a quoted string value for {} (e.g. 'my-value'). Got value {text}",
                key_type.mlflow_name()
            ))),
        },
        ValueKind::StringOrList { list_key } => match raw {
            RawValue::Quoted(value) => Ok(Value::String(value.clone())),
            RawValue::Bare(_) => Err(unquoted_error(text)),
            RawValue::List { items, .. } => {
                if !list_key {
                    let list_keys = match target {
                        Target::Runs => "['run_id']",
                        Target::Experiments => "['experiment_id']",
                    };
                    return Err(Error::invalid_parameter(format!(
                        "Only {list_keys} attributes support comparison with a list of quoted string values."
                    )));
                }
                list_value(items)
            }
            RawValue::Number { .. } => Err(Error::invalid_parameter(format!(
                "Expected a quoted string value for attributes. Got value {text}"
            ))),
        },
        ValueKind::DatasetString => match raw {
            RawValue::Quoted(value) => Ok(Value::String(value.clone())),
            RawValue::List { items, .. } => list_value(items),
            RawValue::Bare(_) => Err(unquoted_error(text)),
            RawValue::Number { .. } => Err(Error::invalid_parameter(format!(
                "Expected a quoted string value for dataset attributes. Got value {text}"
            ))),
        },
    }
}

fn unquoted_error(text: &str) -> Error {
    Error::invalid_parameter(format!(
        "Parameter value is either not quoted or unidentified quote types used for string value {text}. \
         Use either single or double quotes."
    ))
}

fn list_value(items: &[ListItem]) -> Result<Value> {
    if items.is_empty() {
        return Err(Error::invalid_parameter(
            "While parsing a list in the query, expected a non-empty list of string values, but got empty list",
        ));
    }
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        match item {
            ListItem::String(value) => values.push(value.clone()),
            ListItem::Other(_) => {
                let rendered: Vec<String> = items
                    .iter()
                    .map(|item| match item {
                        ListItem::String(value) => format!("'{value}'"),
                        ListItem::Other(text) => text.clone(),
                    })
                    .collect();
                return Err(Error::invalid_parameter(format!(
                    "While parsing a list in the query, expected string value, punctuation, or whitespace, but \
                     got different type in list: ({})",
                    rendered.join(", ")
                )));
            }
        }
    }
    Ok(Value::List(values))
}

/// Experiment ids are integers in the table: check each and write it in canonical decimal form.
fn normalize_experiment_ids(value: Value) -> Result<Value> {
    fn normalize(id: &str) -> Result<String> {
        id.trim()
            .parse::<i64>()
            .map(|number| number.to_string())
            .map_err(|_| {
                Error::invalid_parameter(format!(
                    "Invalid experiment ID '{id}'. Experiment ID must be a valid integer."
                ))
            })
    }
    match value {
        Value::String(id) => Ok(Value::String(normalize(&id)?)),
        Value::List(ids) => Ok(Value::List(
            ids.iter().map(|id| normalize(id)).collect::<Result<_>>()?,
        )),
        other => Ok(other),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Syntax: a hand-written recursive-descent parser over the characters of the filter.

#[derive(Debug)]
struct RawIdentifier {
    entity: Option<String>,
    key: String,
}

#[derive(Debug)]
enum RawComparator {
    Known(Comparator),
    /// An operator-like token that is no MLflow operator (`==`, `<>`, `RLIKE`); rejected once the
    /// identifier is known, so the message can list the valid ones.
    Unknown(String),
}

#[derive(Debug)]
enum ListItem {
    String(String),
    Other(String),
}

#[derive(Debug)]
enum RawValue {
    Quoted(String),
    Number {
        text: String,
        value: f64,
        integer: bool,
    },
    List {
        text: String,
        items: Vec<ListItem>,
    },
    /// An unquoted word where a value belongs.
    Bare(String),
}

impl RawValue {
    /// The value as written, for messages.
    fn text(&self) -> &str {
        match self {
            RawValue::Quoted(value) => value,
            RawValue::Number { text, .. } | RawValue::List { text, .. } | RawValue::Bare(text) => {
                text
            }
        }
    }
}

#[derive(Debug)]
struct RawComparison {
    identifier: RawIdentifier,
    comparator: RawComparator,
    /// `None` for `IS [NOT] NULL`.
    value: Option<RawValue>,
}

fn is_word_char(character: char) -> bool {
    character.is_alphanumeric() || character == '_'
}

struct Cursor<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, position: 0 }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.position..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_end(&self) -> bool {
        self.position >= self.text.len()
    }

    fn bump(&mut self) -> Option<char> {
        let character = self.peek()?;
        self.position += character.len_utf8();
        Some(character)
    }

    /// Skips white space and tells whether there was any.
    fn skip_whitespace(&mut self) -> bool {
        let start = self.position;
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
        self.position > start
    }

    /// Consumes characters while `accept` holds and returns them.
    fn take_while(&mut self, accept: impl Fn(char) -> bool) -> &'a str {
        let start = self.position;
        while self.peek().is_some_and(&accept) {
            self.bump();
        }
        self.text.get(start..self.position).unwrap_or("")
    }

    /// The token at the cursor, for messages: a quoted string, a word, an operator or one character.
    fn lexeme(&self) -> String {
        let rest = self.rest();
        let mut scout = Cursor::new(rest);
        match scout.peek() {
            None => return "end of filter".to_owned(),
            Some(quote @ ('\'' | '"' | '`')) => {
                scout.bump();
                scout.take_while(|c| c != quote);
                scout.bump();
            }
            Some(c) if is_word_char(c) => {
                scout.take_while(|c| is_word_char(c) || c == '.');
            }
            Some(c) if is_operator_char(c) => {
                scout.take_while(is_operator_char);
            }
            Some(_) => {
                scout.bump();
            }
        }
        rest.get(..scout.position).unwrap_or(rest).to_owned()
    }

    /// Consumes a keyword (case-insensitive, as a whole word) if it is next.
    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let rest = self.rest();
        let Some(head) = rest.get(..keyword.len()) else {
            return false;
        };
        if !head.eq_ignore_ascii_case(keyword) {
            return false;
        }
        if rest
            .get(keyword.len()..)
            .and_then(|tail| tail.chars().next())
            .is_some_and(is_word_char)
        {
            return false;
        }
        self.position += keyword.len();
        true
    }

    /// Reads `quote ... quote`, returning the text between, or `None` if the closing quote is missing. With
    /// `sql_escapes`, a doubled quote or a backslash before a quote does not close the string (kept
    /// verbatim, as `sqlparse` and MLflow do).
    fn quoted(&mut self, quote: char, sql_escapes: bool) -> Option<&'a str> {
        self.bump();
        let content_start = self.position;
        loop {
            let character = self.bump()?;
            if sql_escapes && character == '\\' && self.peek() == Some(quote) {
                self.bump();
            } else if character == quote {
                if sql_escapes && self.peek() == Some(quote) {
                    self.bump();
                } else {
                    let content_end = self.position - quote.len_utf8();
                    return self.text.get(content_start..content_end);
                }
            }
        }
    }
}

fn is_operator_char(character: char) -> bool {
    matches!(character, '=' | '!' | '<' | '>')
}

fn syntax_error(message: impl fmt::Display) -> Error {
    Error::invalid_parameter(message.to_string())
}

fn parse_filter(filter: &str, target: Target) -> Result<Vec<Comparison>> {
    let mut cursor = Cursor::new(filter);
    cursor.skip_whitespace();
    let mut comparisons = Vec::new();
    if cursor.at_end() {
        return Ok(comparisons);
    }
    loop {
        let raw = parse_comparison(&mut cursor, target)?;
        comparisons.push(resolve_comparison(raw, target)?);
        cursor.skip_whitespace();
        if cursor.at_end() {
            return Ok(comparisons);
        }
        if !cursor.eat_keyword("AND") {
            return Err(syntax_error(format!(
                "Invalid clause(s) in filter string: '{}'",
                cursor.lexeme()
            )));
        }
        cursor.skip_whitespace();
        if cursor.at_end() {
            return Err(syntax_error(format!(
                "Invalid filter '{filter}': 'AND' must be followed by a comparison"
            )));
        }
    }
}

fn parse_identifier(cursor: &mut Cursor<'_>) -> Result<RawIdentifier> {
    let expected_identifier = |cursor: &Cursor<'_>| {
        syntax_error(format!(
            "Invalid comparison clause. Expected 'Identifier' found '{}'",
            cursor.lexeme()
        ))
    };
    let unterminated = |cursor: &Cursor<'_>| {
        syntax_error(format!(
            "Unterminated quoted identifier at '{}'",
            cursor.lexeme()
        ))
    };
    let first = match cursor.peek() {
        Some('`') => cursor
            .quoted('`', false)
            .ok_or_else(|| unterminated(cursor))?
            .to_owned(),
        Some('"') => {
            // A double-quoted identifier is a whole attribute key, like MLflow's quoted symbol.
            let key = cursor
                .quoted('"', false)
                .ok_or_else(|| unterminated(cursor))?
                .to_owned();
            return Ok(RawIdentifier { entity: None, key });
        }
        Some(c) if is_word_char(c) => cursor.take_while(is_word_char).to_owned(),
        _ => return Err(expected_identifier(cursor)),
    };
    if cursor.peek() != Some('.') {
        return Ok(RawIdentifier {
            entity: None,
            key: first,
        });
    }
    cursor.bump();
    let key = match cursor.peek() {
        Some(quote @ ('`' | '"')) => cursor
            .quoted(quote, false)
            .ok_or_else(|| unterminated(cursor))?
            .to_owned(),
        Some(c) if is_word_char(c) => cursor
            .take_while(|c| is_word_char(c) || c == '.')
            .to_owned(),
        _ => {
            return Err(syntax_error(format!(
                "Invalid identifier '{first}.'. Columns should be specified as 'attribute.<key>', \
                 'metric.<key>', 'tag.<key>', 'dataset.<key>', or 'param.<key>'."
            )))
        }
    };
    Ok(RawIdentifier {
        entity: Some(first),
        key,
    })
}

fn parse_comparator(cursor: &mut Cursor<'_>) -> Result<RawComparator> {
    let expected = |cursor: &Cursor<'_>| {
        syntax_error(format!(
            "Invalid comparison clause. Expected comparison found '{}'",
            cursor.lexeme()
        ))
    };
    match cursor.peek() {
        Some(c) if is_operator_char(c) => {
            let operator = cursor.take_while(is_operator_char);
            Ok(match operator {
                "=" => RawComparator::Known(Comparator::Eq),
                "!=" => RawComparator::Known(Comparator::NotEq),
                ">" => RawComparator::Known(Comparator::Gt),
                ">=" => RawComparator::Known(Comparator::Ge),
                "<" => RawComparator::Known(Comparator::Lt),
                "<=" => RawComparator::Known(Comparator::Le),
                other => RawComparator::Unknown(other.to_owned()),
            })
        }
        Some(c) if c.is_alphabetic() => {
            if cursor.eat_keyword("LIKE") {
                Ok(RawComparator::Known(Comparator::Like))
            } else if cursor.eat_keyword("ILIKE") {
                Ok(RawComparator::Known(Comparator::ILike))
            } else if cursor.eat_keyword("IN") {
                Ok(RawComparator::Known(Comparator::In))
            } else if cursor.eat_keyword("NOT") {
                cursor.skip_whitespace();
                if cursor.eat_keyword("IN") {
                    Ok(RawComparator::Known(Comparator::NotIn))
                } else {
                    Err(syntax_error(format!(
                        "Invalid clause(s) in filter string: 'NOT', '{}'",
                        cursor.lexeme()
                    )))
                }
            } else if cursor.eat_keyword("IS") {
                cursor.skip_whitespace();
                let negated = cursor.eat_keyword("NOT");
                cursor.skip_whitespace();
                if cursor.eat_keyword("NULL") {
                    Ok(RawComparator::Known(if negated {
                        Comparator::IsNotNull
                    } else {
                        Comparator::IsNull
                    }))
                } else {
                    Err(syntax_error(format!(
                        "Invalid clause(s) in filter string: 'IS{}', '{}'",
                        if negated { " NOT" } else { "" },
                        cursor.lexeme()
                    )))
                }
            } else {
                let word = cursor.take_while(is_word_char);
                Ok(RawComparator::Unknown(word.to_uppercase()))
            }
        }
        _ => Err(expected(cursor)),
    }
}

fn parse_number(cursor: &mut Cursor<'_>) -> Option<RawValue> {
    let start = cursor.position;
    let mut integer = true;
    if cursor.peek() == Some('-') {
        cursor.bump();
    }
    let whole = cursor.take_while(|c| c.is_ascii_digit());
    let mut fraction = "";
    if cursor.peek() == Some('.') {
        cursor.bump();
        integer = false;
        fraction = cursor.take_while(|c| c.is_ascii_digit());
    }
    if whole.is_empty() && fraction.is_empty() {
        cursor.position = start;
        return None;
    }
    if matches!(cursor.peek(), Some('e' | 'E')) {
        let exponent_start = cursor.position;
        cursor.bump();
        if matches!(cursor.peek(), Some('+' | '-')) {
            cursor.bump();
        }
        if cursor.take_while(|c| c.is_ascii_digit()).is_empty() {
            cursor.position = exponent_start;
        } else {
            integer = false;
        }
    }
    if cursor.peek().is_some_and(|c| is_word_char(c) || c == '.') {
        cursor.position = start;
        return None;
    }
    let text = cursor.text.get(start..cursor.position)?.to_owned();
    let value = text.parse::<f64>().ok()?;
    Some(RawValue::Number {
        text,
        value,
        integer,
    })
}

/// Parses a parenthesized list of Python string literals; other items are kept as text for the message.
fn parse_list(cursor: &mut Cursor<'_>) -> Result<RawValue> {
    let start = cursor.position;
    let ill_formed = || {
        syntax_error(
            "While parsing a list in the query, expected a non-empty list of string values, but got ill-formed list.",
        )
    };
    cursor.bump();
    let mut items = Vec::new();
    loop {
        cursor.skip_whitespace();
        match cursor.peek() {
            Some(')') => {
                cursor.bump();
                break;
            }
            Some(quote @ ('\'' | '"')) => items.push(ListItem::String(
                python_string(cursor, quote).ok_or_else(ill_formed)?,
            )),
            Some(c) if c == '-' || c == '.' || is_word_char(c) => {
                let text = cursor.take_while(|c| c == '-' || c == '.' || is_word_char(c));
                items.push(ListItem::Other(text.to_owned()));
            }
            _ => return Err(ill_formed()),
        }
        cursor.skip_whitespace();
        match cursor.bump() {
            Some(',') => {}
            Some(')') => break,
            _ => return Err(ill_formed()),
        }
    }
    let text = cursor
        .text
        .get(start..cursor.position)
        .unwrap_or("")
        .to_owned();
    Ok(RawValue::List { text, items })
}

/// Reads a Python string literal, decoding the common backslash escapes; an unknown escape keeps its
/// backslash, as Python does.
fn python_string(cursor: &mut Cursor<'_>, quote: char) -> Option<String> {
    cursor.bump();
    let mut value = String::new();
    loop {
        match cursor.bump()? {
            '\\' => match cursor.bump()? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'r' => value.push('\r'),
                '0' => value.push('\0'),
                escaped @ ('\\' | '\'' | '"') => value.push(escaped),
                other => {
                    value.push('\\');
                    value.push(other);
                }
            },
            character if character == quote => return Some(value),
            character => value.push(character),
        }
    }
}

fn parse_value(cursor: &mut Cursor<'_>, comparator: &RawComparator) -> Result<RawValue> {
    let expects_list = matches!(
        comparator,
        RawComparator::Known(Comparator::In | Comparator::NotIn)
    );
    match cursor.peek() {
        Some('(') => parse_list(cursor),
        _ if expects_list => Err(syntax_error(format!(
            "Invalid clause(s) in filter string: expected a list of quoted string values after '{}', found '{}'",
            match comparator {
                RawComparator::Known(comparator) => comparator.as_str(),
                RawComparator::Unknown(text) => text,
            },
            cursor.lexeme()
        ))),
        Some(quote @ ('\'' | '"')) => {
            let lexeme = cursor.lexeme();
            let value = cursor
                .quoted(quote, true)
                .ok_or_else(|| syntax_error(format!("Unterminated string value {lexeme}")))?;
            Ok(RawValue::Quoted(value.to_owned()))
        }
        Some(c) if c == '-' || c == '.' || c.is_ascii_digit() => match parse_number(cursor) {
            Some(number) => Ok(number),
            None => {
                let text = cursor.take_while(|c| c == '-' || c == '.' || is_word_char(c));
                Ok(RawValue::Bare(text.to_owned()))
            }
        },
        Some(c) if is_word_char(c) || c == '`' => {
            let text = if c == '`' {
                let lexeme = cursor.lexeme();
                cursor.position += lexeme.len();
                lexeme
            } else {
                cursor.take_while(|c| is_word_char(c) || c == '.').to_owned()
            };
            Ok(RawValue::Bare(text))
        }
        _ => Err(syntax_error(format!(
            "Invalid comparison clause. Expected value token found '{}'",
            cursor.lexeme()
        ))),
    }
}

fn parse_comparison(cursor: &mut Cursor<'_>, target: Target) -> Result<RawComparison> {
    let identifier = parse_identifier(cursor)?;
    cursor.skip_whitespace();
    let comparator = parse_comparator(cursor)?;
    if let RawComparator::Unknown(written) = &comparator {
        // Reject an unknown operator before reading on, so the message names it and not what follows.
        let (key_type, key) = resolve_identifier(&identifier, target, false)?;
        let kind = value_kind(target, key_type, &key);
        return Err(comparator_error(written, allowed_comparators(kind, target)));
    }
    if matches!(
        comparator,
        RawComparator::Known(Comparator::IsNull | Comparator::IsNotNull)
    ) {
        return Ok(RawComparison {
            identifier,
            comparator,
            value: None,
        });
    }
    cursor.skip_whitespace();
    let value = parse_value(cursor, &comparator)?;
    Ok(RawComparison {
        identifier,
        comparator,
        value: Some(value),
    })
}

fn parse_order_by(clause: &str, target: Target) -> Result<OrderBy> {
    let unparsable = || {
        Error::invalid_parameter(format!(
            "Invalid order_by clause '{clause}'. Could not be parsed."
        ))
    };
    let mut cursor = Cursor::new(clause);
    cursor.skip_whitespace();
    let identifier = parse_identifier(&mut cursor).map_err(|_| unparsable())?;
    let had_space = cursor.skip_whitespace();
    let ascending = if cursor.at_end() {
        true
    } else if !had_space {
        return Err(unparsable());
    } else if cursor.eat_keyword("ASC") {
        true
    } else if cursor.eat_keyword("DESC") {
        false
    } else {
        return Err(Error::invalid_parameter(format!(
            "Invalid ordering key in order_by clause '{clause}'."
        )));
    };
    cursor.skip_whitespace();
    if !cursor.at_end() {
        return Err(unparsable());
    }
    let (key_type, key) = resolve_identifier(&identifier, target, true)?;
    match (target, key_type) {
        (Target::Runs, KeyType::Dataset) => Err(Error::invalid_parameter(format!(
            "Invalid identifier type '{}'",
            key_type.mlflow_name()
        ))),
        (Target::Experiments, KeyType::Attribute) | (Target::Runs, _) => Ok(OrderBy {
            key_type,
            key,
            ascending,
        }),
        (Target::Experiments, _) => Err(Error::invalid_parameter(format!(
            "Invalid order_by entity: {}",
            key_type.mlflow_name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Parses `input` and compares the canonical rendering (or `error: <message substring>`) to `expected`.
    fn check(parse: fn(&str) -> Result<Vec<Comparison>>, input: &str, expected: &str) {
        let actual = match parse(input) {
            Ok(comparisons) => render_filter(&comparisons),
            Err(error) => {
                assert_eq!(
                    error.code,
                    ferroflow_proto::ErrorCode::InvalidParameterValue,
                    "{input:?}"
                );
                if let Some(substring) = expected.strip_prefix("error: ") {
                    assert!(
                        error.message.contains(substring),
                        "{input:?}: message {:?} does not contain {substring:?}",
                        error.message
                    );
                    return;
                }
                format!("error: {}", error.message)
            }
        };
        assert_eq!(actual, expected, "{input:?}");
    }

    fn check_order(parse: fn(&str) -> Result<OrderBy>, input: &str, expected: &str) {
        match parse(input) {
            Ok(order_by) => assert_eq!(order_by.to_string(), expected, "{input:?}"),
            Err(error) => {
                assert_eq!(
                    error.code,
                    ferroflow_proto::ErrorCode::InvalidParameterValue,
                    "{input:?}"
                );
                let substring = expected.strip_prefix("error: ").unwrap_or(expected);
                assert!(
                    error.message.contains(substring),
                    "{input:?}: message {:?} does not contain {substring:?}",
                    error.message
                );
            }
        }
    }

    #[test]
    fn run_filters_that_parse() {
        let cases = [
            ("", ""),
            ("   ", ""),
            ("metrics.a > 1", "metrics.a > 1"),
            ("metrics.a>1", "metrics.a > 1"),
            ("metric.a >= -1.5", "metrics.a >= -1.5"),
            ("metrics.a < .5", "metrics.a < 0.5"),
            ("metrics.a <= 1.", "metrics.a <= 1"),
            ("metrics.a != 1e-3", "metrics.a != 0.001"),
            ("metrics.a = 1.5E3", "metrics.a = 1500"),
            ("metrics.a = 1e+2", "metrics.a = 100"),
            ("metrics.`a b` = 1", "metrics.`a b` = 1"),
            ("metrics.\"a b\" = 1", "metrics.`a b` = 1"),
            ("metrics.`train/loss` < 0.25", "metrics.`train/loss` < 0.25"),
            ("metrics.1a > 1", "metrics.1a > 1"),
            ("metrics.a.b > 1", "metrics.a.b > 1"),
            ("metrics.order > 1", "metrics.order > 1"),
            ("`metrics`.a > 1", "metrics.a > 1"),
            ("params.a = 'x'", "params.a = 'x'"),
            ("param.a = \"x\"", "params.a = 'x'"),
            ("parameter.a != 'x'", "params.a != 'x'"),
            ("parameters.a LIKE '%x_'", "params.a LIKE '%x_'"),
            ("params.a like 'x%'", "params.a LIKE 'x%'"),
            ("params.a ILIKE '%X%'", "params.a ILIKE '%X%'"),
            ("params.a ilike '%X%'", "params.a ILIKE '%X%'"),
            ("params.a = ''", "params.a = ''"),
            ("params.a=''", "params.a = ''"),
            ("params.a IS NULL", "params.a IS NULL"),
            ("params.a is null", "params.a IS NULL"),
            ("params.a IS NOT NULL", "params.a IS NOT NULL"),
            ("params.a  is   not  null", "params.a IS NOT NULL"),
            ("params.select = 'x'", "params.select = 'x'"),
            ("params.` a` = 'x'", "params.` a` = 'x'"),
            ("params.`` = 'x'", "params.`` = 'x'"),
            // Values keep their text between the quotes verbatim, as MLflow's do.
            ("params.a = 'it''s'", "params.a = \"it''s\""),
            ("params.a = 'it\\'s'", "params.a = \"it\\'s\""),
            ("params.a = \"it's\"", "params.a = \"it's\""),
            ("params.a = 'say \"hi\"'", "params.a = 'say \"hi\"'"),
            ("params.a = 'héllo wörld'", "params.a = 'héllo wörld'"),
            ("tags.a = 'x'", "tags.a = 'x'"),
            ("tag.a = 'x'", "tags.a = 'x'"),
            ("tags.`mlflow.runName` = 'r'", "tags.mlflow.runName = 'r'"),
            ("tags.\"mlflow.runName\" = 'r'", "tags.mlflow.runName = 'r'"),
            ("tags.mlflow.runName = 'r'", "tags.mlflow.runName = 'r'"),
            ("tags.`a.b` IS NOT NULL", "tags.a.b IS NOT NULL"),
            ("tags.`a-b` = 'x'", "tags.`a-b` = 'x'"),
            ("run_id = 'abc'", "run_id = 'abc'"),
            ("run_id = \"a\" ", "run_id = 'a'"),
            ("attributes.run_id = 'abc'", "run_id = 'abc'"),
            ("attribute.run_id = 'abc'", "run_id = 'abc'"),
            ("attr.run_id = 'abc'", "run_id = 'abc'"),
            ("run.run_id = 'abc'", "run_id = 'abc'"),
            ("run_id IN ('a', 'b')", "run_id IN ('a', 'b')"),
            ("run_id in ('a')", "run_id IN ('a')"),
            ("run_id IN ('a',)", "run_id IN ('a')"),
            ("run_id IN('a')", "run_id IN ('a')"),
            ("run_id NOT IN ('a', \"b\")", "run_id NOT IN ('a', 'b')"),
            ("run_id not  in ('a')", "run_id NOT IN ('a')"),
            (
                "run_id IN ('a\\'b', 'c\\\\d')",
                "run_id IN ('a\\'b', 'c\\\\d')",
            ),
            ("run_name = 'r'", "run_name = 'r'"),
            ("`run name` = 'r'", "run_name = 'r'"),
            ("`Run name` = 'r'", "run_name = 'r'"),
            ("`Run Name` = 'r'", "run_name = 'r'"),
            ("\"Run Name\" = 'r'", "run_name = 'r'"),
            ("attribute.`run name` = 'r'", "run_name = 'r'"),
            ("attr.run_name LIKE 'a%'", "run_name LIKE 'a%'"),
            ("status = 'RUNNING'", "status = 'RUNNING'"),
            ("status != 'FAILED'", "status != 'FAILED'"),
            ("status LIKE 'R%'", "status LIKE 'R%'"),
            ("user_id ILIKE 'Bob'", "user_id ILIKE 'Bob'"),
            (
                "artifact_uri LIKE 'mlflow-artifacts:/%'",
                "artifact_uri LIKE 'mlflow-artifacts:/%'",
            ),
            ("start_time >= 5", "start_time >= 5"),
            ("start_time >= -5", "start_time >= -5"),
            ("created > 1.5", "start_time > 1.5"),
            ("Created > 1", "start_time > 1"),
            ("attributes.created < 2", "start_time < 2"),
            ("end_time > 1e3", "end_time > 1000"),
            ("end_time != 0", "end_time != 0"),
            ("dataset.name = 'a'", "datasets.name = 'a'"),
            ("datasets.digest IN ('a')", "datasets.digest IN ('a')"),
            ("dataset.context = \"train\"", "datasets.context = 'train'"),
            (
                "dataset.name NOT IN ('a', 'b')",
                "datasets.name NOT IN ('a', 'b')",
            ),
            ("dataset.name LIKE 'a%'", "datasets.name LIKE 'a%'"),
            ("dataset.context ILIKE 'T%'", "datasets.context ILIKE 'T%'"),
            (
                "params.a = 'x' AND params.b = 'y' and tags.c = 'z'",
                "params.a = 'x' AND params.b = 'y' AND tags.c = 'z'",
            ),
            (
                "params.a = 'x' AND params.b IS NOT NULL AND metrics.c >= 0",
                "params.a = 'x' AND params.b IS NOT NULL AND metrics.c >= 0",
            ),
            (
                "metrics.a = 1\n\tAND\nmetrics.b = 2",
                "metrics.a = 1 AND metrics.b = 2",
            ),
            (
                "params.a='x'AND params.b='y'",
                "params.a = 'x' AND params.b = 'y'",
            ),
            (
                "params.a = 'AND' AND params.b = 'OR'",
                "params.a = 'AND' AND params.b = 'OR'",
            ),
        ];
        for (input, expected) in cases {
            check(parse_run_filter, input, expected);
        }
    }

    #[test]
    fn run_filters_that_fail() {
        let cases = [
            ("params.a = 'x' OR params.b = 'y'", "error: Invalid clause(s) in filter string: 'OR'"),
            ("(params.a = 'x')", "error: Invalid comparison clause. Expected 'Identifier' found '('"),
            ("params.a = 'x';", "error: Invalid clause(s) in filter string: ';'"),
            ("params.a = 'x' params.b = 'y'", "error: Invalid clause(s) in filter string: 'params.b'"),
            ("metrics.a = 1 AND", "error: 'AND' must be followed by a comparison"),
            ("AND metrics.a = 1", "error: Invalid attribute key 'AND' specified"),
            ("metrics.a = 1 AND AND metrics.b = 1", "error: Invalid attribute key 'AND' specified"),
            ("metrics.a > +1", "error: Invalid comparison clause. Expected value token found '+'"),
            ("metrics.a-b > 1", "error: Invalid comparison clause. Expected comparison found '-'"),
            ("metrics.a b > 1", "error: Invalid comparator 'B'"),
            ("metrics.a:b > 1", "error: Expected comparison found ':'"),
            ("'a' = params.x", "error: Invalid comparison clause. Expected 'Identifier' found ''a''"),
            ("= 'x'", "error: Expected 'Identifier' found '='"),
            ("params.a", "error: Expected comparison found 'end of filter'"),
            ("params.a = ", "error: Expected value token found 'end of filter'"),
            ("params.a = 'x", "error: Unterminated string value 'x"),
            ("params.`a = 'x'", "error: Unterminated quoted identifier"),
            ("params. = 'x'", "error: Invalid identifier 'params.'"),
            ("foo.a = 'x'", "error: Invalid entity type 'foo'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']"),
            ("METRICS.a > 1", "error: Invalid entity type 'METRICS'"),
            ("experiments.a = 'x'", "error: Invalid entity type 'experiments'"),
            ("lifecycle_stage = 'active'", "error: Invalid attribute key 'lifecycle_stage' specified. Valid keys are '{'Created', 'Run Name', 'Run name', 'artifact_uri', 'created', 'end_time', 'run name', 'run_id', 'run_name', 'start_time', 'status', 'user_id'}'"),
            ("experiment_id = '0'", "error: Invalid attribute key 'experiment_id' specified"),
            ("RUN_ID = 'a'", "error: Invalid attribute key 'RUN_ID' specified"),
            ("`mlflow.runName` = 'x'", "error: Invalid attribute key 'mlflow.runName' specified"),
            ("run name = 'x'", "error: Invalid attribute key 'run' specified"),
            ("dataset.foo = 'x'", "error: Invalid dataset key 'foo' specified. Valid keys are '{'context', 'digest', 'name'}'"),
            ("params.a ISNULL", "error: Invalid comparator 'ISNULL'"),
            ("params.a IS NOT 'x'", "error: Invalid clause(s) in filter string: 'IS NOT', ''x''"),
            ("params.a IS 'x'", "error: Invalid clause(s) in filter string: 'IS', ''x''"),
            ("params.a NOT LIKE 'x'", "error: Invalid clause(s) in filter string: 'NOT', 'LIKE'"),
            ("metrics.a IS NULL", "error: IS NULL / IS NOT NULL is only supported for tags and params, not for 'metric' 'a'"),
            ("run_id IS NOT NULL", "error: IS NULL / IS NOT NULL is only supported for tags and params, not for 'attribute' 'run_id'"),
            ("dataset.name IS NULL", "error: not for 'dataset' 'name'"),
            ("metrics.a = '1'", "error: Expected numeric value type for metric. Found 1"),
            ("metrics.a = NaN", "error: Expected numeric value type for metric. Found NaN"),
            ("metrics.a = inf", "error: Expected numeric value type for metric. Found inf"),
            ("metrics.a < 0x10", "error: Expected numeric value type for metric. Found 0x10"),
            ("metrics.a=1and metrics.b=2", "error: Expected numeric value type for metric. Found 1and"),
            ("metrics.a > -", "error: Expected numeric value type for metric. Found -"),
            ("metrics.a IN (1)", "error: Expected numeric value type for metric. Found (1)"),
            ("metrics.a NOT IN (1)", "error: Expected numeric value type for metric. Found (1)"),
            ("metrics.a LIKE 1", "error: Invalid comparator 'LIKE' not one of '{'=', '!=', '>', '>=', '<', '<='}'"),
            ("metrics.a == 1", "error: Invalid comparator '==' not one of"),
            ("metrics.a <> 1", "error: Invalid comparator '<>' not one of"),
            ("metrics.a => 1", "error: Invalid comparator '=>' not one of"),
            ("params.a = 1", "error: Expected a quoted string value for parameter (e.g. 'my-value'). Got value 1"),
            ("param.a LIKE 5", "error: Expected a quoted string value for parameter (e.g. 'my-value'). Got value 5"),
            ("tags.a = 1.5", "error: Expected a quoted string value for tag (e.g. 'my-value'). Got value 1.5"),
            ("params.a IN ('x')", "error: Expected a quoted string value for parameter (e.g. 'my-value'). Got value ('x')"),
            ("params.a = x", "error: Parameter value is either not quoted or unidentified quote types used for string value x. Use either single or double quotes."),
            ("params.a = `x`", "error: Parameter value is either not quoted or unidentified quote types used for string value `x`."),
            ("status = RUNNING", "error: Parameter value is either not quoted"),
            ("params.a > 'x'", "error: Invalid comparator '>' not one of '{'=', '!=', 'LIKE', 'ILIKE', 'IS NULL', 'IS NOT NULL'}'"),
            ("tags.a RLIKE 'x'", "error: Invalid comparator 'RLIKE' not one of"),
            ("tags.a IN ('x')", "error: Expected a quoted string value for tag"),
            ("run_id > 'a'", "error: Invalid comparator '>' not one of '{'=', '!=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'}'"),
            ("run_id = 1", "error: Expected a quoted string value for attributes. Got value 1"),
            ("status IN ('RUNNING')", "error: Only ['run_id'] attributes support comparison with a list of quoted string values."),
            ("attributes.status IN ('A')", "error: Only ['run_id'] attributes support"),
            ("run_name IN ('a')", "error: Only ['run_id'] attributes support"),
            ("run_id = ('a')", "error: Invalid comparator '=' for a list of values"),
            ("run_id IN 'a'", "error: expected a list of quoted string values after 'IN', found ''a''"),
            ("run_id IN ()", "error: expected a non-empty list of string values, but got empty list"),
            ("run_id IN ('a', 1)", "error: expected string value, punctuation, or whitespace, but got different type in list: ('a', 1)"),
            ("run_id IN ('a' 'b')", "error: got ill-formed list"),
            ("run_id IN ('a'", "error: got ill-formed list"),
            ("run_id IN ('a',,)", "error: got ill-formed list"),
            ("start_time = '1'", "error: Expected numeric value type for numeric attribute: start_time. Found 1"),
            ("start_time IN (1)", "error: Expected numeric value type for numeric attribute: start_time. Found (1)"),
            ("end_time LIKE 5", "error: Invalid comparator 'LIKE' not one of '{'=', '!=', '>', '>=', '<', '<='}'"),
            ("dataset.name > 'a'", "error: Invalid comparator '>' not one of '{'=', '!=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'}'"),
            ("dataset.name = 1", "error: Expected a quoted string value for dataset attributes. Got value 1"),
            ("dataset.name = ('a')", "error: Invalid comparator '=' for a list of values"),
        ];
        for (input, expected) in cases {
            check(parse_run_filter, input, expected);
        }
    }

    #[test]
    fn experiment_filters() {
        let cases = [
            ("", ""),
            ("name = 'a'", "name = 'a'"),
            ("attribute.name LIKE 'a%'", "name LIKE 'a%'"),
            ("`name` = 'x'", "name = 'x'"),
            ("name != \"x\"", "name != 'x'"),
            ("name ILIKE '%X%'", "name ILIKE '%X%'"),
            ("experiment_id = '1'", "experiment_id = '1'"),
            ("experiment_id = '+07'", "experiment_id = '7'"),
            ("experiment_id != '0'", "experiment_id != '0'"),
            ("experiment_id IN ('1','2')", "experiment_id IN ('1', '2')"),
            ("experiment_id NOT IN ('1')", "experiment_id NOT IN ('1')"),
            ("creation_time > 5", "creation_time > 5"),
            ("creation_time >= -5", "creation_time >= -5"),
            ("last_update_time <= 1700000000000", "last_update_time <= 1700000000000"),
            ("tags.a = 'x'", "tags.a = 'x'"),
            ("tag.a = 'x'", "tags.a = 'x'"),
            ("tags.a IS NULL", "tags.a IS NULL"),
            ("tags.a IS NOT NULL", "tags.a IS NOT NULL"),
            ("tags.`a.b` != 'x'", "tags.a.b != 'x'"),
            ("name = \"x\" AND tags.k ILIKE '%v%'", "name = 'x' AND tags.k ILIKE '%v%'"),
            ("attributes.name = 'a'", "error: Invalid entity type 'attributes'. Valid entity types are ('attribute', 'tag', 'tags')"),
            ("attr.name = 'x'", "error: Invalid entity type 'attr'"),
            ("metrics.a > 1", "error: Invalid entity type 'metrics'"),
            ("params.a = 'x'", "error: Invalid entity type 'params'"),
            ("lifecycle_stage = 'active'", "error: Invalid attribute key 'lifecycle_stage' specified. Valid keys are '{'creation_time', 'experiment_id', 'last_update_time', 'name'}'"),
            ("artifact_location = 'x'", "error: Invalid attribute key 'artifact_location' specified"),
            ("name IN ('a')", "error: Only ['experiment_id'] attributes support comparison with a list of quoted string values."),
            ("name > 'a'", "error: Invalid comparator '>' not one of '{'=', '!=', 'LIKE', 'ILIKE'}'"),
            ("name IS NULL", "error: IS NULL / IS NOT NULL is only supported for tags, not for attribute 'name'"),
            ("experiment_id = 1", "error: Expected a quoted string value for attributes. Got value 1"),
            ("experiment_id > '1'", "error: Invalid comparator '>' not one of '{'=', '!=', 'IN', 'NOT IN'}'"),
            ("experiment_id LIKE '1%'", "error: Invalid comparator 'LIKE' not one of"),
            ("experiment_id = 'abc'", "error: Invalid experiment ID 'abc'. Experiment ID must be a valid integer."),
            ("experiment_id IN ('1', 'x')", "error: Invalid experiment ID 'x'"),
            ("creation_time > 5.5", "error: Invalid value for numeric attribute 'creation_time': '5.5'"),
            ("last_update_time <= 1e3", "error: Invalid value for numeric attribute 'last_update_time': '1e3'"),
            ("creation_time > '5'", "error: Expected numeric value type for numeric attribute: creation_time. Found 5"),
            ("creation_time LIKE 5", "error: Invalid comparator 'LIKE' not one of"),
            ("tags.a IN ('x')", "error: Expected a quoted string value for tag (e.g. 'my-value'). Got value ('x')"),
            ("tags.a > 'x'", "error: Invalid comparator '>' not one of"),
            ("name = 'a' OR name = 'b'", "error: Invalid clause(s) in filter string: 'OR'"),
        ];
        for (input, expected) in cases {
            check(parse_experiment_filter, input, expected);
        }
    }

    #[test]
    fn run_order_by() {
        let cases = [
            ("metrics.acc", "metrics.acc ASC"),
            ("metrics.acc DESC", "metrics.acc DESC"),
            ("metrics.acc desc", "metrics.acc DESC"),
            ("metrics.acc asc", "metrics.acc ASC"),
            ("metrics.acc  ASC", "metrics.acc ASC"),
            (" metrics.acc ", "metrics.acc ASC"),
            ("metric.`a b` DESC", "metrics.`a b` DESC"),
            ("metrics.\"a b\" DESC", "metrics.`a b` DESC"),
            ("params.lr", "params.lr ASC"),
            ("param.lr DESC", "params.lr DESC"),
            ("tags.`mlflow.runName`", "tags.mlflow.runName ASC"),
            ("tags.mlflow.runName DESC", "tags.mlflow.runName DESC"),
            ("start_time", "start_time ASC"),
            ("created DESC", "start_time DESC"),
            ("Created", "start_time ASC"),
            ("run_name", "run_name ASC"),
            ("attribute.run_name", "run_name ASC"),
            ("attributes.run_id DESC", "run_id DESC"),
            ("status DESC", "status DESC"),
            ("end_time", "end_time ASC"),
            ("user_id", "user_id ASC"),
            ("artifact_uri", "artifact_uri ASC"),
            ("metrics.acc DESCENDING", "error: Invalid ordering key in order_by clause 'metrics.acc DESCENDING'."),
            ("params.a b", "error: Invalid ordering key in order_by clause 'params.a b'."),
            ("params.a DESC ASC", "error: Invalid order_by clause 'params.a DESC ASC'. Could not be parsed."),
            ("params.a,params.b", "error: Invalid order_by clause 'params.a,params.b'. Could not be parsed."),
            ("", "error: Invalid order_by clause ''. Could not be parsed."),
            ("metric.a-b", "error: Invalid order_by clause 'metric.a-b'. Could not be parsed."),
            ("`run name`", "error: Invalid attribute key 'run name' specified. Valid keys are '{'Created', 'artifact_uri', 'created', 'end_time', 'run_id', 'run_name', 'start_time', 'status', 'user_id'}'"),
            ("lifecycle_stage", "error: Invalid attribute key 'lifecycle_stage' specified"),
            ("experiment_id", "error: Invalid attribute key 'experiment_id' specified"),
            ("timestamp", "error: Invalid attribute key 'timestamp' specified"),
            ("foo.a", "error: Invalid entity type 'foo'"),
            ("dataset.name", "error: Invalid identifier type 'dataset'"),
        ];
        for (input, expected) in cases {
            check_order(parse_run_order_by, input, expected);
        }
    }

    #[test]
    fn experiment_order_by() {
        let cases = [
            ("name", "name ASC"),
            ("name DESC", "name DESC"),
            ("experiment_id asc", "experiment_id ASC"),
            ("creation_time", "creation_time ASC"),
            ("last_update_time DESC", "last_update_time DESC"),
            ("attribute.name", "name ASC"),
            ("`name` DESC", "name DESC"),
            ("tags.a", "error: Invalid order_by entity: tag"),
            ("lifecycle_stage", "error: Invalid attribute key 'lifecycle_stage' specified. Valid keys are '{'creation_time', 'experiment_id', 'last_update_time', 'name'}'"),
            ("metrics.a", "error: Invalid entity type 'metrics'. Valid entity types are ('attribute', 'tag', 'tags')"),
            ("name UP", "error: Invalid ordering key in order_by clause 'name UP'."),
        ];
        for (input, expected) in cases {
            check_order(parse_experiment_order_by, input, expected);
        }
    }

    #[test]
    fn attribute_keys_are_canonical() {
        let parsed = parse_run_filter("created > 1 AND `Run Name` = 'x'").unwrap();
        assert_eq!(
            parsed,
            vec![
                Comparison {
                    key_type: KeyType::Attribute,
                    key: "start_time".to_owned(),
                    comparator: Comparator::Gt,
                    value: Value::Number(1.0),
                },
                Comparison {
                    key_type: KeyType::Attribute,
                    key: "run_name".to_owned(),
                    comparator: Comparator::Eq,
                    value: Value::String("x".to_owned()),
                },
            ]
        );
        assert_eq!(
            parse_run_filter("tags.a IS NULL").unwrap()[0].value,
            Value::Null
        );
        assert_eq!(
            parse_run_order_by("created DESC").unwrap(),
            OrderBy {
                key_type: KeyType::Attribute,
                key: "start_time".to_owned(),
                ascending: false
            }
        );
    }

    // Property: any valid filter, rendered to text, parses back to itself.

    fn key_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9_]{0,6}",
            "[a-z0-9_]{1,3}(\\.[a-z0-9_]{1,3}){0,2}",
            "[a-zA-Z0-9 ./:_-]{0,8}",
            "[a-z`]{1,5}",
            "[a-zé ]{1,5}",
        ]
    }

    fn string_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 %_.-]{0,8}",
            "[a-z%_\"\\\\]{0,6}",
            "[a-z%_'\\\\]{0,6}",
            "[a-zé😀 ]{0,4}"
        ]
        .prop_filter("the grammar cannot end a string with a backslash", |text| {
            !text.ends_with('\\')
        })
    }

    fn list_strategy() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec("[a-zA-Z0-9 '\"\\\\%\n]{0,6}", 1..4)
    }

    fn number_strategy() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-1000i64..1000).prop_map(|integer| integer as f64),
            prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
        ]
    }

    fn run_comparison_strategy() -> impl Strategy<Value = Comparison> {
        let numeric = prop_oneof![
            Just(Comparator::Eq),
            Just(Comparator::NotEq),
            Just(Comparator::Gt),
            Just(Comparator::Ge),
            Just(Comparator::Lt),
            Just(Comparator::Le)
        ];
        let key_value = prop_oneof![
            Just(Comparator::Eq),
            Just(Comparator::NotEq),
            Just(Comparator::Like),
            Just(Comparator::ILike)
        ];
        let string_attribute = prop_oneof![
            Just("run_id"),
            Just("run_name"),
            Just("status"),
            Just("user_id"),
            Just("artifact_uri")
        ];
        let make = |key_type, key: String, comparator, value| Comparison {
            key_type,
            key,
            comparator,
            value,
        };
        prop_oneof![
            (key_strategy(), numeric.clone(), number_strategy()).prop_map(
                move |(key, comparator, number)| make(
                    KeyType::Metric,
                    key,
                    comparator,
                    Value::Number(number)
                )
            ),
            (
                prop_oneof![Just(KeyType::Param), Just(KeyType::Tag)],
                key_strategy(),
                key_value.clone(),
                string_strategy()
            )
                .prop_map(move |(key_type, key, comparator, text)| make(
                    key_type,
                    key,
                    comparator,
                    Value::String(text)
                )),
            (
                prop_oneof![Just(KeyType::Param), Just(KeyType::Tag)],
                key_strategy(),
                prop_oneof![Just(Comparator::IsNull), Just(Comparator::IsNotNull)]
            )
                .prop_map(move |(key_type, key, comparator)| make(
                    key_type,
                    key,
                    comparator,
                    Value::Null
                )),
            (string_attribute, key_value.clone(), string_strategy()).prop_map(
                move |(key, comparator, text)| make(
                    KeyType::Attribute,
                    key.to_owned(),
                    comparator,
                    Value::String(text)
                )
            ),
            (
                prop_oneof![Just(Comparator::In), Just(Comparator::NotIn)],
                list_strategy()
            )
                .prop_map(move |(comparator, items)| make(
                    KeyType::Attribute,
                    "run_id".to_owned(),
                    comparator,
                    Value::List(items)
                )),
            (
                prop_oneof![Just("start_time"), Just("end_time")],
                numeric,
                number_strategy()
            )
                .prop_map(move |(key, comparator, number)| make(
                    KeyType::Attribute,
                    key.to_owned(),
                    comparator,
                    Value::Number(number)
                )),
            (
                prop_oneof![Just("name"), Just("digest"), Just("context")],
                key_value,
                string_strategy()
            )
                .prop_map(move |(key, comparator, text)| make(
                    KeyType::Dataset,
                    key.to_owned(),
                    comparator,
                    Value::String(text)
                )),
            (
                prop_oneof![Just("name"), Just("digest"), Just("context")],
                prop_oneof![Just(Comparator::In), Just(Comparator::NotIn)],
                list_strategy()
            )
                .prop_map(move |(key, comparator, items)| make(
                    KeyType::Dataset,
                    key.to_owned(),
                    comparator,
                    Value::List(items)
                )),
        ]
    }

    fn experiment_comparison_strategy() -> impl Strategy<Value = Comparison> {
        let make = |key_type, key: &str, comparator, value| Comparison {
            key_type,
            key: key.to_owned(),
            comparator,
            value,
        };
        let numeric = prop_oneof![
            Just(Comparator::Eq),
            Just(Comparator::NotEq),
            Just(Comparator::Gt),
            Just(Comparator::Ge),
            Just(Comparator::Lt),
            Just(Comparator::Le)
        ];
        let string = prop_oneof![
            Just(Comparator::Eq),
            Just(Comparator::NotEq),
            Just(Comparator::Like),
            Just(Comparator::ILike)
        ];
        prop_oneof![
            (string.clone(), string_strategy()).prop_map(move |(comparator, text)| make(
                KeyType::Attribute,
                "name",
                comparator,
                Value::String(text)
            )),
            (
                prop_oneof![Just(Comparator::Eq), Just(Comparator::NotEq)],
                any::<i64>()
            )
                .prop_map(move |(comparator, id)| make(
                    KeyType::Attribute,
                    "experiment_id",
                    comparator,
                    Value::String(id.to_string())
                )),
            (
                prop_oneof![Just(Comparator::In), Just(Comparator::NotIn)],
                prop::collection::vec(any::<i64>(), 1..4)
            )
                .prop_map(move |(comparator, ids)| make(
                    KeyType::Attribute,
                    "experiment_id",
                    comparator,
                    Value::List(ids.iter().map(ToString::to_string).collect())
                )),
            (
                prop_oneof![Just("creation_time"), Just("last_update_time")],
                numeric,
                -(1i64 << 50)..(1i64 << 50)
            )
                .prop_map(move |(key, comparator, time)| make(
                    KeyType::Attribute,
                    key,
                    comparator,
                    Value::Number(time as f64)
                )),
            (key_strategy(), string, string_strategy()).prop_map(|(key, comparator, text)| {
                Comparison {
                    key_type: KeyType::Tag,
                    key,
                    comparator,
                    value: Value::String(text),
                }
            }),
            (
                key_strategy(),
                prop_oneof![Just(Comparator::IsNull), Just(Comparator::IsNotNull)]
            )
                .prop_map(|(key, comparator)| Comparison {
                    key_type: KeyType::Tag,
                    key,
                    comparator,
                    value: Value::Null
                }),
        ]
    }

    /// Joins rendered comparisons with `AND` in a random case and random white space.
    fn join(comparisons: &[Comparison], separators: &[(bool, &str)]) -> String {
        let mut text = String::new();
        for (index, comparison) in comparisons.iter().enumerate() {
            if index > 0 {
                let (lowercase, space) = separators[index % separators.len()];
                text.push_str(space);
                text.push_str(if lowercase { "and" } else { "AND" });
                text.push_str(space);
            }
            text.push_str(&comparison.to_string());
        }
        text
    }

    fn separators() -> impl Strategy<Value = Vec<(bool, &'static str)>> {
        prop::collection::vec(
            (
                any::<bool>(),
                prop_oneof![Just(" "), Just("  "), Just("\n"), Just(" \t ")],
            ),
            1..4,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn run_filter_round_trips(comparisons in prop::collection::vec(run_comparison_strategy(), 0..5), separators in separators()) {
            let text = join(&comparisons, &separators);
            let parsed = parse_run_filter(&text);
            prop_assert!(parsed.is_ok(), "{text:?}: {parsed:?}");
            prop_assert_eq!(parsed.unwrap(), comparisons, "{:?}", text);
        }

        #[test]
        fn experiment_filter_round_trips(comparisons in prop::collection::vec(experiment_comparison_strategy(), 0..5), separators in separators()) {
            let text = join(&comparisons, &separators);
            let parsed = parse_experiment_filter(&text);
            prop_assert!(parsed.is_ok(), "{text:?}: {parsed:?}");
            prop_assert_eq!(parsed.unwrap(), comparisons, "{:?}", text);
        }

        #[test]
        fn run_order_by_round_trips(
            key_type in prop_oneof![Just(KeyType::Metric), Just(KeyType::Param), Just(KeyType::Tag)],
            key in key_strategy(),
            ascending in any::<bool>(),
        ) {
            let order_by = OrderBy { key_type, key, ascending };
            let text = order_by.to_string();
            prop_assert_eq!(parse_run_order_by(&text).ok(), Some(order_by), "{:?}", text);
        }

        /// Garbage never panics and always fails with INVALID_PARAMETER_VALUE or parses.
        #[test]
        fn arbitrary_text_never_panics(text in "[a-z`'\"()., =!<>%_\\\\-]{0,24}|\\PC{0,16}") {
            for result in [parse_run_filter(&text), parse_experiment_filter(&text)] {
                if let Err(error) = result {
                    prop_assert_eq!(error.code, ferroflow_proto::ErrorCode::InvalidParameterValue);
                }
            }
            for result in [parse_run_order_by(&text), parse_experiment_order_by(&text)] {
                if let Err(error) = result {
                    prop_assert_eq!(error.code, ferroflow_proto::ErrorCode::InvalidParameterValue);
                }
            }
        }
    }
}
