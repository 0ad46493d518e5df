//! The filter and `order_by` of `logged-models/search`, parsed into typed [`Comparison`]s and
//! [`OrderBy`]s. No I/O and no SQL: `ferroflow-store` compiles the result.
//!
//! This grammar is not the run search grammar of [`crate::filter`]: MLflow 3.17 parses logged model filters
//! with its own code (`mlflow/utils/search_logged_model_utils.py`), which knows other entity names, other
//! operators and other quoting rules. ferroflow follows that code, so a filter means the same thing on both
//! servers.
//!
//! # Filter grammar
//!
//! Keywords (`AND`, `LIKE`, `ILIKE`, `IN`, `NOT IN`) are case-insensitive; entity names and keys are not.
//! `ws` is any Unicode white space.
//!
//! ```text
//! filter      = ws* [ comparison { ws+ "AND" ws+ comparison } ] ws*
//! comparison  = identifier ws* operator ws* value
//! operator    = "=" | "!=" | "<" | "<=" | ">" | ">=" | "LIKE" | "ILIKE" | "IN" | "NOT" ws+ "IN"
//! identifier  = { word-char | "." | "`" { any but "`" } "`" | '"' { any but '"' } '"' }+
//! word-char   = Unicode letter or digit | "_"
//! value       = single-quoted | double-quoted | list | bare
//! single-quoted = "'" { any but "'" | "''" | "\" any } "'"
//! double-quoted = '"' { any but '"' } '"'
//! list        = "(" ws* [ item { ws* "," ws* item } [ ws* "," ] ] ws* ")"
//! item        = a Python string literal (single or double quotes, backslash escapes) | number
//! bare        = { any but white space, "(" and ")" }+
//! ```
//!
//! An identifier `<type>.<key>` whose `<type>` is made of lowercase ASCII letters names an entity:
//! `metrics`, `params` or `tags` (MLflow's plural names only; `attributes.<key>` names an attribute);
//! any other lowercase type is refused. Anything else is an attribute. One pair of backticks around a key
//! is dropped (`` tags.`a b` `` is the tag `a b`); double quotes are kept, as MLflow keeps them.
//!
//! # Entities and operators
//!
//! | identifier | operators | value |
//! |---|---|---|
//! | `metrics.<key>` | `=` `!=` `<` `<=` `>` `>=` | number |
//! | `creation_timestamp_ms` (`creation_time`, `creation_timestamp`), `last_updated_timestamp_ms` (`last_updated_timestamp`) | same | number |
//! | `params.<key>`, `tags.<key>` | `=` `!=` `LIKE` `ILIKE` `IN` `NOT IN` | string or list |
//! | the other columns of `logged_models`: `model_id`, `experiment_id`, `name`, `artifact_location`, `status`, `lifecycle_stage`, `model_type`, `source_run_id`, `status_message` | same | string or list |
//!
//! A string value is the value's text with every leading and trailing `'` removed, as MLflow's
//! `value.strip("'")` does: `'it''s'` is `it''s`, `"x"` is `"x"` with its quotes, and a bare word is
//! itself. `status` is compared as the database compares it: the column holds the enum number, so
//! `status = '2'` matches READY models and `status = 'READY'` matches none, on both servers.
//!
//! A metric comparison matches a model when any of its metric rows with that key matches (every step,
//! run and dataset, not only the latest); the search's `datasets` narrow those rows.
//!
//! # `order_by`
//!
//! An `order_by` item is an object: `field_name` is an attribute above (with its aliases) or
//! `metrics.<key>`, which orders by the model's latest value of the metric (by timestamp, then step),
//! optionally only among rows of `dataset_name` / `dataset_digest`. Other entities are refused.
//!
//! # Where ferroflow differs from MLflow
//!
//! MLflow answers INTERNAL_ERROR (500) for an unknown attribute or a value that is not a number where a
//! number is needed; ferroflow answers INVALID_PARAMETER_VALUE (400), since a 500 makes clients retry.
//! `IS NULL` is refused by both.

use crate::error::{Error, Result};
use std::fmt;

/// A column of `logged_models` that filters and `order_by` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attribute {
    ModelId,
    ExperimentId,
    Name,
    ArtifactLocation,
    CreationTimestampMs,
    LastUpdatedTimestampMs,
    Status,
    LifecycleStage,
    ModelType,
    SourceRunId,
    StatusMessage,
}

impl Attribute {
    pub const ALL: [Attribute; 11] = [
        Attribute::ModelId,
        Attribute::ExperimentId,
        Attribute::Name,
        Attribute::ArtifactLocation,
        Attribute::CreationTimestampMs,
        Attribute::LastUpdatedTimestampMs,
        Attribute::Status,
        Attribute::LifecycleStage,
        Attribute::ModelType,
        Attribute::SourceRunId,
        Attribute::StatusMessage,
    ];

    /// The column name, which is also the attribute's name in filters.
    pub fn column(self) -> &'static str {
        match self {
            Attribute::ModelId => "model_id",
            Attribute::ExperimentId => "experiment_id",
            Attribute::Name => "name",
            Attribute::ArtifactLocation => "artifact_location",
            Attribute::CreationTimestampMs => "creation_timestamp_ms",
            Attribute::LastUpdatedTimestampMs => "last_updated_timestamp_ms",
            Attribute::Status => "status",
            Attribute::LifecycleStage => "lifecycle_stage",
            Attribute::ModelType => "model_type",
            Attribute::SourceRunId => "source_run_id",
            Attribute::StatusMessage => "status_message",
        }
    }

    /// The timestamps compare as numbers; every other attribute as a string.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            Attribute::CreationTimestampMs | Attribute::LastUpdatedTimestampMs
        )
    }

    /// The attribute a name refers to, after MLflow's aliases (`creation_time`, `creation_timestamp`,
    /// `last_updated_timestamp`).
    pub fn from_name(name: &str) -> Option<Self> {
        let canonical = match name {
            "creation_time" | "creation_timestamp" => "creation_timestamp_ms",
            "last_updated_timestamp" => "last_updated_timestamp_ms",
            other => other,
        };
        Self::ALL
            .into_iter()
            .find(|attribute| attribute.column() == canonical)
    }
}

/// What the left side of a comparison names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Entity {
    Attribute(Attribute),
    Metric(String),
    Param(String),
    Tag(String),
}

impl Entity {
    fn is_numeric(&self) -> bool {
        match self {
            Entity::Attribute(attribute) => attribute.is_numeric(),
            Entity::Metric(_) => true,
            Entity::Param(_) | Entity::Tag(_) => false,
        }
    }
}

impl fmt::Display for Entity {
    /// MLflow's spelling in messages: `attributes.name`, `metrics.loss`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entity::Attribute(attribute) => write!(formatter, "attributes.{}", attribute.column()),
            Entity::Metric(key) => write!(formatter, "metrics.{key}"),
            Entity::Param(key) => write!(formatter, "params.{key}"),
            Entity::Tag(key) => write!(formatter, "tags.{key}"),
        }
    }
}

// The comparators and values are the tracking filter's own; logged-model filters use a subset of them.
pub use crate::filter::{Comparator, Value};

/// The operators of numeric entities, in MLflow's order (it lists them in messages).
const NUMERIC_COMPARATORS: [Comparator; 6] = [
    Comparator::Lt,
    Comparator::Le,
    Comparator::Gt,
    Comparator::Ge,
    Comparator::Eq,
    Comparator::NotEq,
];

/// The operators of string entities, in MLflow's order.
const STRING_COMPARATORS: [Comparator; 6] = [
    Comparator::Eq,
    Comparator::NotEq,
    Comparator::Like,
    Comparator::ILike,
    Comparator::In,
    Comparator::NotIn,
];

/// One `entity operator value` term; a filter is a conjunction of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub entity: Entity,
    pub comparator: Comparator,
    pub value: Value,
}

/// What an `order_by` item sorts by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderField {
    Attribute(Attribute),
    /// The latest value of the metric, among rows of the dataset when one is named.
    Metric {
        key: String,
        dataset_name: Option<String>,
        dataset_digest: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    pub field: OrderField,
    pub ascending: bool,
}

/// Parses one `order_by` item. `dataset_name` and `dataset_digest` count only for metrics.
pub fn parse_order_by(
    field_name: &str,
    ascending: bool,
    dataset_name: Option<&str>,
    dataset_digest: Option<&str>,
) -> Result<OrderBy> {
    let field = match field_name.split_once('.') {
        None => OrderField::Attribute(Attribute::from_name(field_name).ok_or_else(|| {
            Error::invalid_parameter(format!("Invalid order by field name: {field_name}"))
        })?),
        Some(("metrics", key)) => OrderField::Metric {
            key: key.to_owned(),
            dataset_name: dataset_name
                .filter(|name| !name.is_empty())
                .map(str::to_owned),
            dataset_digest: dataset_digest
                .filter(|digest| !digest.is_empty())
                .map(str::to_owned),
        },
        Some(_) => {
            return Err(Error::invalid_parameter(format!(
                "Invalid order by field name: {field_name}. Only metrics are supported."
            )))
        }
    };
    Ok(OrderBy { field, ascending })
}

/// Parses a search filter. Blank means no filter.
pub fn parse_filter(filter: &str) -> Result<Vec<Comparison>> {
    let mut cursor = Cursor::new(filter);
    let mut comparisons = Vec::new();
    cursor.skip_whitespace();
    if cursor.at_end() {
        return Ok(comparisons);
    }
    loop {
        comparisons.push(parse_comparison(&mut cursor, filter)?);
        let had_whitespace = cursor.skip_whitespace();
        if cursor.at_end() {
            return Ok(comparisons);
        }
        if !had_whitespace || !cursor.eat_keyword("AND") || !cursor.skip_whitespace() {
            return Err(not_a_conjunction(filter));
        }
        if cursor.at_end() {
            return Err(not_a_conjunction(filter));
        }
    }
}

fn not_a_conjunction(filter: &str) -> Error {
    Error::invalid_parameter(format!(
        "Invalid filter string: {}. Expected a list of comparisons separated by 'AND' (e.g. \
         'metrics.loss > 0.1 AND params.lr = 0.01').",
        python_repr(filter)
    ))
}

/// A raw right-hand side, before it is converted for its entity.
enum RawValue {
    /// Quoted or bare text, as written (quotes included).
    Text(String),
    /// The items of a parenthesized list.
    List(Vec<String>),
}

fn parse_comparison(cursor: &mut Cursor<'_>, filter: &str) -> Result<Comparison> {
    let identifier = cursor.identifier();
    if identifier.is_empty() {
        return Err(not_a_conjunction(filter));
    }
    let entity = resolve_entity(&identifier)?;
    cursor.skip_whitespace();
    let comparator = cursor
        .comparator()
        .ok_or_else(|| not_a_conjunction(filter))?;
    let allowed: &[Comparator] = if entity.is_numeric() {
        &NUMERIC_COMPARATORS
    } else {
        &STRING_COMPARATORS
    };
    if !allowed.contains(&comparator) {
        let names: Vec<String> = allowed
            .iter()
            .map(|allowed| python_repr(allowed.as_str()))
            .collect();
        return Err(Error::invalid_parameter(format!(
            "Invalid comparison operator for {entity}: {}. Expected one of ({}).",
            python_repr(comparator.as_str()),
            names.join(", ")
        )));
    }
    cursor.skip_whitespace();
    let raw = cursor.value()?.ok_or_else(|| not_a_conjunction(filter))?;
    let value = match (entity.is_numeric(), comparator, raw) {
        (true, _, RawValue::Text(text)) => {
            Value::Number(parse_python_float(&text).ok_or_else(|| {
                Error::invalid_parameter(format!(
                    "invalid numeric value {} for {entity}",
                    python_repr(&text)
                ))
            })?)
        }
        (true, _, RawValue::List(_)) => {
            return Err(Error::invalid_parameter(format!(
                "invalid numeric value for {entity}: a list"
            )))
        }
        (false, Comparator::In | Comparator::NotIn, RawValue::List(items)) => Value::List(items),
        (false, Comparator::In | Comparator::NotIn, RawValue::Text(_)) => {
            return Err(not_a_conjunction(filter))
        }
        (false, _, RawValue::List(_)) => {
            return Err(Error::invalid_parameter(format!(
                "invalid value for {entity} {}: a list needs IN or NOT IN",
                comparator.as_str()
            )))
        }
        (false, _, RawValue::Text(text)) => Value::String(text.trim_matches('\'').to_owned()),
    };
    Ok(Comparison {
        entity,
        comparator,
        value,
    })
}

/// MLflow's `Entity.from_str`: `<lowercase type>.<key>`, or an attribute.
fn resolve_entity(identifier: &str) -> Result<Entity> {
    if let Some((prefix, key)) = identifier.split_once('.') {
        if !prefix.is_empty() && !key.is_empty() && prefix.chars().all(|c| c.is_ascii_lowercase()) {
            let key = strip_backticks(key);
            return match prefix {
                "metrics" => Ok(Entity::Metric(key)),
                "params" => Ok(Entity::Param(key)),
                "tags" => Ok(Entity::Tag(key)),
                "attributes" => attribute_entity(&key),
                other => Err(Error::invalid_parameter(format!(
                    "Invalid entity type: {}. Expected one of ['attributes', 'metrics', 'params', 'tags'].",
                    python_repr(other)
                ))),
            };
        }
    }
    attribute_entity(&strip_backticks(identifier))
}

fn attribute_entity(name: &str) -> Result<Entity> {
    Attribute::from_name(name)
        .map(Entity::Attribute)
        .ok_or_else(|| {
            let names: Vec<&str> = Attribute::ALL.iter().map(|a| a.column()).collect();
            Error::invalid_parameter(format!(
                "invalid attribute {} in a logged model filter; expected one of {}",
                python_repr(name),
                names.join(", ")
            ))
        })
}

/// Python's `str.strip("`")`.
fn strip_backticks(text: &str) -> String {
    text.trim_matches('`').to_owned()
}

/// Python's `float()` on a bare token: decimal and exponent forms, `inf`, `nan`, `_` between digits.
fn parse_python_float(text: &str) -> Option<f64> {
    let trimmed = text.trim();
    if trimmed.starts_with('_') || trimmed.ends_with('_') || trimmed.contains("__") {
        return None;
    }
    let without_underscores: String = trimmed.chars().filter(|c| *c != '_').collect();
    let lowered = without_underscores.to_ascii_lowercase();
    let unsigned = lowered.trim_start_matches(['+', '-']);
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        return lowered.parse::<f64>().ok();
    }
    if !unsigned
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
    {
        return None;
    }
    lowered.parse::<f64>().ok()
}

/// Python's `repr()` of a string: single quotes unless the text holds `'` and no `"`.
pub fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut repr = String::with_capacity(text.len() + 2);
    repr.push(quote);
    for character in text.chars() {
        match character {
            '\\' => repr.push_str("\\\\"),
            '\n' => repr.push_str("\\n"),
            '\r' => repr.push_str("\\r"),
            '\t' => repr.push_str("\\t"),
            other if other == quote => {
                repr.push('\\');
                repr.push(other);
            }
            other if other.is_control() => {
                let code = u32::from(other);
                if code <= 0xff {
                    repr.push_str(&format!("\\x{code:02x}"));
                } else {
                    repr.push_str(&format!("\\u{code:04x}"));
                }
            }
            other => repr.push(other),
        }
    }
    repr.push(quote);
    repr
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
        &self.text[self.position..]
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

    /// Skips white space; true when there was some.
    fn skip_whitespace(&mut self) -> bool {
        let start = self.position;
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
        self.position > start
    }

    /// Consumes `keyword` (any case) when it is followed by something that cannot continue a word.
    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let rest = self.rest();
        let Some(candidate) = rest.get(..keyword.len()) else {
            return false;
        };
        if !candidate.eq_ignore_ascii_case(keyword) {
            return false;
        }
        let next = rest[keyword.len()..].chars().next();
        if next.is_some_and(is_word_char) {
            return false;
        }
        self.position += keyword.len();
        true
    }

    /// An identifier as written: word characters, dots and quoted runs, with their quotes.
    fn identifier(&mut self) -> String {
        let start = self.position;
        while let Some(character) = self.peek() {
            match character {
                '`' | '"' => {
                    self.bump();
                    while let Some(inner) = self.bump() {
                        if inner == character {
                            break;
                        }
                    }
                }
                character if is_word_char(character) || character == '.' => {
                    self.bump();
                }
                _ => break,
            }
        }
        self.text[start..self.position].to_owned()
    }

    fn comparator(&mut self) -> Option<Comparator> {
        for (symbol, comparator) in [
            ("!=", Comparator::NotEq),
            ("<>", Comparator::NotEq),
            ("<=", Comparator::Le),
            (">=", Comparator::Ge),
            ("=", Comparator::Eq),
            ("<", Comparator::Lt),
            (">", Comparator::Gt),
        ] {
            if self.rest().starts_with(symbol) {
                self.position += symbol.len();
                return Some(comparator);
            }
        }
        if self.eat_keyword("LIKE") {
            return Some(Comparator::Like);
        }
        if self.eat_keyword("ILIKE") {
            return Some(Comparator::ILike);
        }
        if self.eat_keyword("IN") {
            return Some(Comparator::In);
        }
        let before_not = self.position;
        if self.eat_keyword("NOT") && self.skip_whitespace() && self.eat_keyword("IN") {
            return Some(Comparator::NotIn);
        }
        self.position = before_not;
        None
    }

    /// The value of a comparison; `None` when there is none.
    fn value(&mut self) -> Result<Option<RawValue>> {
        let start = self.position;
        match self.peek() {
            None => Ok(None),
            Some('(') => self.list().map(|items| Some(RawValue::List(items))),
            Some('\'') => {
                self.bump();
                loop {
                    match self.bump() {
                        None => return Ok(None),
                        Some('\\') => {
                            self.bump();
                        }
                        Some('\'') if self.peek() == Some('\'') => {
                            self.bump();
                        }
                        Some('\'') => break,
                        Some(_) => {}
                    }
                }
                Ok(Some(RawValue::Text(
                    self.text[start..self.position].to_owned(),
                )))
            }
            Some('"') => {
                self.bump();
                loop {
                    match self.bump() {
                        None => return Ok(None),
                        Some('"') => break,
                        Some(_) => {}
                    }
                }
                Ok(Some(RawValue::Text(
                    self.text[start..self.position].to_owned(),
                )))
            }
            Some(_) => {
                while self
                    .peek()
                    .is_some_and(|c| !c.is_whitespace() && c != '(' && c != ')')
                {
                    self.bump();
                }
                if self.position == start {
                    return Ok(None);
                }
                Ok(Some(RawValue::Text(
                    self.text[start..self.position].to_owned(),
                )))
            }
        }
    }

    /// A parenthesized list of Python literals, as MLflow reads it with `ast.literal_eval`.
    fn list(&mut self) -> Result<Vec<String>> {
        let invalid = |text: &str| {
            Error::invalid_parameter(format!(
                "invalid list value {}: expected a parenthesized list of quoted strings",
                python_repr(text)
            ))
        };
        let start = self.position;
        self.bump();
        let mut items = Vec::new();
        loop {
            self.skip_whitespace();
            match self.peek() {
                Some(')') => {
                    self.bump();
                    return Ok(items);
                }
                Some(quote @ ('\'' | '"')) => {
                    let mut item = self
                        .python_string(quote)
                        .ok_or_else(|| invalid(&self.text[start..]))?;
                    // Adjacent literals concatenate, as in Python: ('a' 'b') is 'ab'.
                    loop {
                        self.skip_whitespace();
                        match self.peek() {
                            Some(next @ ('\'' | '"')) => item.push_str(
                                &self
                                    .python_string(next)
                                    .ok_or_else(|| invalid(&self.text[start..]))?,
                            ),
                            _ => break,
                        }
                    }
                    items.push(item);
                }
                Some(character) if character.is_ascii_digit() || "+-.".contains(character) => {
                    let number_start = self.position;
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || "+-._".contains(c))
                    {
                        self.bump();
                    }
                    let number = &self.text[number_start..self.position];
                    parse_python_float(number).ok_or_else(|| invalid(&self.text[start..]))?;
                    items.push(number.to_owned());
                }
                _ => return Err(invalid(&self.text[start..])),
            }
            self.skip_whitespace();
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some(')') => {}
                _ => return Err(invalid(&self.text[start..])),
            }
        }
    }

    /// One Python string literal starting at `quote`, with its escapes decoded.
    fn python_string(&mut self, quote: char) -> Option<String> {
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump()? {
                character if character == quote => return Some(value),
                '\\' => match self.bump()? {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    'r' => value.push('\r'),
                    '0' => value.push('\0'),
                    'a' => value.push('\u{7}'),
                    'b' => value.push('\u{8}'),
                    'f' => value.push('\u{c}'),
                    'v' => value.push('\u{b}'),
                    '\\' => value.push('\\'),
                    '\'' => value.push('\''),
                    '"' => value.push('"'),
                    '\n' => {}
                    'x' => value.push(self.hex_escape(2)?),
                    'u' => value.push(self.hex_escape(4)?),
                    'U' => value.push(self.hex_escape(8)?),
                    other => {
                        value.push('\\');
                        value.push(other);
                    }
                },
                character => value.push(character),
            }
        }
    }

    fn hex_escape(&mut self, digits: usize) -> Option<char> {
        let hex = self.rest().get(..digits)?;
        let code = u32::from_str_radix(hex, 16).ok()?;
        self.position += digits;
        char::from_u32(code)
    }
}

fn is_word_char(character: char) -> bool {
    character.is_alphanumeric() || character == '_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(filter: &str, expected: &[(Entity, Comparator, Value)]) {
        let parsed = parse_filter(filter).unwrap_or_else(|error| panic!("{filter}: {error}"));
        let expected: Vec<Comparison> = expected
            .iter()
            .cloned()
            .map(|(entity, comparator, value)| Comparison {
                entity,
                comparator,
                value,
            })
            .collect();
        assert_eq!(parsed, expected, "{filter}");
    }

    fn check_error(filter: &str, message: &str) {
        let error = parse_filter(filter).expect_err(filter);
        assert_eq!(
            error.code,
            ferroflow_proto::ErrorCode::InvalidParameterValue
        );
        assert_eq!(error.message, message, "{filter}");
    }

    fn text(value: &str) -> Value {
        Value::String(value.to_owned())
    }

    fn name() -> Entity {
        Entity::Attribute(Attribute::Name)
    }

    #[test]
    fn blank_is_no_filter() {
        check("", &[]);
        check("   ", &[]);
    }

    #[test]
    fn the_filters_the_client_sends() {
        check("name = 'model'", &[(name(), Comparator::Eq, text("model"))]);
        check(
            "name = 'some dir'",
            &[(name(), Comparator::Eq, text("some dir"))],
        );
        check("name = 'a.txt'", &[(name(), Comparator::Eq, text("a.txt"))]);
    }

    #[test]
    fn values_are_stripped_of_single_quotes_only() {
        check("name = beta", &[(name(), Comparator::Eq, text("beta"))]);
        check(
            "name = \"beta\"",
            &[(name(), Comparator::Eq, text("\"beta\""))],
        );
        check("name = 'it''s'", &[(name(), Comparator::Eq, text("it''s"))]);
        check("name='x'", &[(name(), Comparator::Eq, text("x"))]);
        check("name = ''", &[(name(), Comparator::Eq, text(""))]);
    }

    #[test]
    fn entities() {
        check(
            "metrics.acc > 0.6 AND params.lr = '0.1' and tags.`mlflow.source.name` LIKE '%a%'",
            &[
                (
                    Entity::Metric("acc".into()),
                    Comparator::Gt,
                    Value::Number(0.6),
                ),
                (Entity::Param("lr".into()), Comparator::Eq, text("0.1")),
                (
                    Entity::Tag("mlflow.source.name".into()),
                    Comparator::Like,
                    text("%a%"),
                ),
            ],
        );
        check(
            "tags.mlflow.user != 'x'",
            &[(
                Entity::Tag("mlflow.user".into()),
                Comparator::NotEq,
                text("x"),
            )],
        );
        check(
            "attributes.model_type ILIKE 'SK%'",
            &[(
                Entity::Attribute(Attribute::ModelType),
                Comparator::ILike,
                text("SK%"),
            )],
        );
        check(
            "creation_time >= 1 AND last_updated_timestamp < -2.5e3",
            &[
                (
                    Entity::Attribute(Attribute::CreationTimestampMs),
                    Comparator::Ge,
                    Value::Number(1.0),
                ),
                (
                    Entity::Attribute(Attribute::LastUpdatedTimestampMs),
                    Comparator::Lt,
                    Value::Number(-2500.0),
                ),
            ],
        );
    }

    #[test]
    fn lists() {
        check(
            "name IN ('a', \"b\", 'c\\'d',)",
            &[(
                name(),
                Comparator::In,
                Value::List(vec!["a".into(), "b".into(), "c'd".into()]),
            )],
        );
        check(
            "model_id not in ('m-1')",
            &[(
                Entity::Attribute(Attribute::ModelId),
                Comparator::NotIn,
                Value::List(vec!["m-1".into()]),
            )],
        );
        check(
            "name IN ()",
            &[(name(), Comparator::In, Value::List(vec![]))],
        );
        check(
            "name IN (1, 'a' 'b')",
            &[(
                name(),
                Comparator::In,
                Value::List(vec!["1".into(), "ab".into()]),
            )],
        );
    }

    #[test]
    fn mlflow_messages() {
        check_error(
            "name > 'x'",
            "Invalid comparison operator for attributes.name: '>'. Expected one of ('=', '!=', 'LIKE', \
             'ILIKE', 'IN', 'NOT IN').",
        );
        check_error(
            "metrics.acc LIKE 1",
            "Invalid comparison operator for metrics.acc: 'LIKE'. Expected one of ('<', '<=', '>', '>=', \
             '=', '!=').",
        );
        check_error(
            "metric.acc > 1",
            "Invalid entity type: 'metric'. Expected one of ['attributes', 'metrics', 'params', 'tags'].",
        );
        check_error(
            "name = 'beta' OR name = 'gamma'",
            "Invalid filter string: \"name = 'beta' OR name = 'gamma'\". Expected a list of comparisons \
             separated by 'AND' (e.g. 'metrics.loss > 0.1 AND params.lr = 0.01').",
        );
    }

    #[test]
    fn refusals() {
        for filter in [
            "name = 'a' AND",
            "name = 'a' name = 'b'",
            "name",
            "name =",
            "= 'a'",
            "name IS NULL",
            "tags.a IS NOT NULL",
            "name IN 'a'",
            "name = ('a')",
            "name = 'unterminated",
            "foo = 'x'",
            "Name = 'x'",
            "creation_timestamp > abc",
            "creation_timestamp > '5'",
            "metrics.acc > (1)",
            "(name = 'a')",
            "name IN ('a'",
            "name IN (a)",
        ] {
            let error = parse_filter(filter).expect_err(filter);
            assert_eq!(
                error.code,
                ferroflow_proto::ErrorCode::InvalidParameterValue,
                "{filter}"
            );
        }
    }

    #[test]
    fn order_by_fields() {
        assert_eq!(
            parse_order_by("creation_time", false, None, None).unwrap(),
            OrderBy {
                field: OrderField::Attribute(Attribute::CreationTimestampMs),
                ascending: false,
            }
        );
        assert_eq!(
            parse_order_by("metrics.acc", true, Some("ds"), Some("")).unwrap(),
            OrderBy {
                field: OrderField::Metric {
                    key: "acc".into(),
                    dataset_name: Some("ds".into()),
                    dataset_digest: None,
                },
                ascending: true,
            }
        );
        assert_eq!(
            parse_order_by("foo", true, None, None).unwrap_err().message,
            "Invalid order by field name: foo"
        );
        assert_eq!(
            parse_order_by("params.a", true, None, None)
                .unwrap_err()
                .message,
            "Invalid order by field name: params.a. Only metrics are supported."
        );
        assert_eq!(
            parse_order_by("", true, None, None).unwrap_err().message,
            "Invalid order by field name: "
        );
    }

    #[test]
    fn python_repr_matches_python() {
        assert_eq!(python_repr("abc"), "'abc'");
        assert_eq!(python_repr("it's"), "\"it's\"");
        assert_eq!(python_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(python_repr("a\\b\n"), "'a\\\\b\\n'");
        assert_eq!(python_repr("é"), "'é'");
    }

    fn render(comparison: &Comparison) -> String {
        let identifier = match &comparison.entity {
            Entity::Attribute(attribute) => attribute.column().to_owned(),
            Entity::Metric(key) => format!("metrics.`{key}`"),
            Entity::Param(key) => format!("params.`{key}`"),
            Entity::Tag(key) => format!("tags.`{key}`"),
        };
        let value = match &comparison.value {
            Value::Number(number) => format!("{number:?}"),
            Value::String(text) => format!("'{text}'"),
            Value::List(items) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|item| format!("'{}'", item.replace('\\', "\\\\").replace('\'', "\\'")))
                    .collect();
                format!("({})", items.join(", "))
            }
            Value::Null => "NULL".to_owned(),
        };
        format!("{identifier} {} {value}", comparison.comparator.as_str())
    }

    fn comparison_strategy() -> impl Strategy<Value = Comparison> {
        let key = "[a-z0-9_. ]{1,8}".prop_filter("a key is not only dots and spaces", |key| {
            key.chars().any(|c| c.is_alphanumeric() || c == '_')
        });
        let text = "[a-zA-Z0-9_%. -]{0,8}";
        let string_comparator = prop::sample::select(vec![
            Comparator::Eq,
            Comparator::NotEq,
            Comparator::Like,
            Comparator::ILike,
        ]);
        let list_comparator = prop::sample::select(vec![Comparator::In, Comparator::NotIn]);
        let number_comparator = prop::sample::select(NUMERIC_COMPARATORS.to_vec());
        let string_entity = prop_oneof![
            prop::sample::select(
                Attribute::ALL
                    .iter()
                    .copied()
                    .filter(|attribute| !attribute.is_numeric())
                    .collect::<Vec<_>>()
            )
            .prop_map(Entity::Attribute),
            key.clone().prop_map(Entity::Param),
            key.clone().prop_map(Entity::Tag),
        ];
        let number_entity = prop_oneof![
            Just(Entity::Attribute(Attribute::CreationTimestampMs)),
            Just(Entity::Attribute(Attribute::LastUpdatedTimestampMs)),
            key.prop_map(Entity::Metric),
        ];
        prop_oneof![
            (string_entity.clone(), string_comparator, text).prop_map(
                |(entity, comparator, text)| Comparison {
                    entity,
                    comparator,
                    value: Value::String(text),
                }
            ),
            (
                string_entity,
                list_comparator,
                prop::collection::vec("[a-z'\\\\ ]{0,5}", 0..4)
            )
                .prop_map(|(entity, comparator, items)| Comparison {
                    entity,
                    comparator,
                    value: Value::List(items),
                }),
            (number_entity, number_comparator, -1e12f64..1e12).prop_map(
                |(entity, comparator, number)| Comparison {
                    entity,
                    comparator,
                    value: Value::Number(number),
                }
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn rendered_filters_parse_back(comparisons in prop::collection::vec(comparison_strategy(), 1..4)) {
            let rendered: Vec<String> = comparisons.iter().map(render).collect();
            let filter = rendered.join(" AND ");
            prop_assert_eq!(parse_filter(&filter).unwrap(), comparisons, "{}", filter);
        }

        #[test]
        fn any_text_parses_or_is_refused(filter in "\\PC{0,40}") {
            if let Err(error) = parse_filter(&filter) {
                prop_assert_eq!(error.code, ferroflow_proto::ErrorCode::InvalidParameterValue);
            }
        }

        #[test]
        fn filter_like_text_parses_or_is_refused(filter in "[a-z_.`'\"()=<>!%, 0-9-]{0,40}") {
            if let Err(error) = parse_filter(&filter) {
                prop_assert_eq!(error.code, ferroflow_proto::ErrorCode::InvalidParameterValue);
            }
        }
    }

    #[test]
    fn python_floats() {
        assert_eq!(parse_python_float("1_000"), Some(1000.0));
        assert_eq!(parse_python_float("-.5"), Some(-0.5));
        assert_eq!(parse_python_float("1e3"), Some(1000.0));
        assert!(parse_python_float("nan").is_some_and(f64::is_nan));
        assert_eq!(parse_python_float("'5'"), None);
        assert_eq!(parse_python_float("abc"), None);
        assert_eq!(parse_python_float("0x10"), None);
    }
}
