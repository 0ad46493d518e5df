//! The filter and `order_by` of `registered-models/search` and `model-versions/search`, parsed into typed
//! [`RegistryComparison`]s and [`RegistryOrderBy`]s. No I/O and no SQL: `ferroflow-store` compiles them.
//!
//! MLflow 3.17 parses these with `SearchModelUtils` and `SearchModelVersionUtils`
//! (`mlflow/utils/search_utils.py`) and checks operators again in its SQL store; ferroflow applies the same
//! rules in one place, with MLflow's messages.
//!
//! # Filter grammar
//!
//! Keywords (`AND`, `LIKE`, `ILIKE`, `IN`, `NOT IN`) are case-insensitive; names and keys are not.
//!
//! ```text
//! filter     = ws* [ comparison { ws+ "AND" ws+ comparison } ] ws*
//! comparison = identifier ws* operator ws* value
//! operator   = "=" | "!=" | "<" | "<=" | ">" | ">=" | "LIKE" | "ILIKE" | "IN" | "NOT" ws+ "IN"
//! identifier = [ entity "." ] key       -- entity: attribute | tag | tags; split at the first dot
//! key        = { word-char | "." }+ | "`" { any but "`" } "`" | '"' { any but '"' } '"'
//! value      = "'" { any but "'" | "''" } "'" | '"' { any but '"' } '"' | number
//!            | "(" string { "," string } [ "," ] ")"
//! ```
//!
//! A quoted value keeps its text between the quotes verbatim, as MLflow does.
//!
//! # Identifiers and operators
//!
//! | search | identifier | operators | value |
//! |---|---|---|---|
//! | registered models | `name` | `=` `!=` `LIKE` `ILIKE` `IN` `NOT IN` | string / list |
//! | model versions | `name`, `run_id` | same | string / list |
//! | model versions | `source_path` (the `source` column) | `=` `!=` `LIKE` `ILIKE` | string |
//! | model versions | `version_number` | `=` `!=` `<` `<=` `>` `>=` | integer, bare or quoted |
//! | both | `tag.<key>`, `tags.<key>` | `=` `!=` `LIKE` `ILIKE` | string |
//!
//! # `order_by`
//!
//! `<key> [ASC|DESC]`. Registered models: `name`, `timestamp` and `last_updated_timestamp` (both order by
//! the last update, as MLflow does); ties are broken by `name ASC`. Model versions: `name`,
//! `version_number`, `creation_timestamp`, `last_updated_timestamp`; ties by `name ASC` then
//! `version_number DESC`; with no `order_by` at all, `last_updated_timestamp DESC` first. A key given twice
//! is refused.
//!
//! # Where ferroflow differs from MLflow
//!
//! MLflow answers INTERNAL_ERROR (500) for a duplicate `order_by` key; ferroflow answers
//! INVALID_PARAMETER_VALUE (400), since a 500 makes clients retry. MLflow's messages list valid keys as a
//! Python set, whose order varies between processes; ferroflow lists them sorted.

use crate::error::{Error, Result};
pub use crate::filter::{Comparator, Value};

/// The tag that marks a registered model or model version as a prompt.
pub const IS_PROMPT_TAG_KEY: &str = "mlflow.prompt.is_prompt";

/// What the left side of a registry comparison names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryKey {
    Name,
    RunId,
    /// The `source` column.
    SourcePath,
    VersionNumber,
    Tag(String),
}

/// One `identifier operator value` term; a filter is a conjunction of them.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryComparison {
    pub key: RegistryKey,
    pub comparator: Comparator,
    /// A string, a list of strings, or (for `version_number`) an integral number.
    pub value: Value,
}

/// A column registry searches order by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryOrderKey {
    Name,
    VersionNumber,
    CreationTimestamp,
    LastUpdatedTimestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryOrderBy {
    pub key: RegistryOrderKey,
    pub ascending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    RegisteredModels,
    ModelVersions,
}

/// Parses the `filter` of `registered-models/search`. Blank means no filter.
pub fn parse_registered_model_filter(filter: &str) -> Result<Vec<RegistryComparison>> {
    parse_filter(filter, Target::RegisteredModels)
}

/// Parses the `filter` of `model-versions/search`. Blank means no filter.
pub fn parse_model_version_filter(filter: &str) -> Result<Vec<RegistryComparison>> {
    parse_filter(filter, Target::ModelVersions)
}

/// Whether the filter asks for prompts (`tags.`mlflow.prompt.is_prompt` = 'true'`, or `!= 'false'`),
/// judged on the first comparison of that tag, as MLflow does. Other searches leave prompts out.
pub fn is_querying_prompts(comparisons: &[RegistryComparison]) -> bool {
    for comparison in comparisons {
        if comparison.key != RegistryKey::Tag(IS_PROMPT_TAG_KEY.to_owned()) {
            continue;
        }
        let Value::String(value) = &comparison.value else {
            return false;
        };
        let value = value.to_lowercase();
        return (comparison.comparator == Comparator::Eq && value == "true")
            || (comparison.comparator == Comparator::NotEq && value == "false");
    }
    false
}

/// Parses the `order_by` of `registered-models/search`, with `name ASC` added unless `name` is ordered.
pub fn parse_registered_model_order_by(clauses: &[String]) -> Result<Vec<RegistryOrderBy>> {
    let mut order = Vec::new();
    for clause in clauses {
        let (key, ascending) = split_order_by(clause)?;
        let key = match key.as_str() {
            "name" => RegistryOrderKey::Name,
            "timestamp" | "last_updated_timestamp" => RegistryOrderKey::LastUpdatedTimestamp,
            other => {
                return Err(Error::invalid_parameter(format!(
                "Invalid order by key '{other}' specified.Valid keys are '{{'name', 'timestamp'}}'"
            )))
            }
        };
        push_unique(&mut order, RegistryOrderBy { key, ascending }, clauses)?;
    }
    if !order.iter().any(|item| item.key == RegistryOrderKey::Name) {
        order.push(RegistryOrderBy {
            key: RegistryOrderKey::Name,
            ascending: true,
        });
    }
    Ok(order)
}

/// Parses the `order_by` of `model-versions/search`: `last_updated_timestamp DESC` when empty, then
/// `name ASC` and `version_number DESC` unless ordered already.
pub fn parse_model_version_order_by(clauses: &[String]) -> Result<Vec<RegistryOrderBy>> {
    let mut order = Vec::new();
    if clauses.is_empty() {
        order.push(RegistryOrderBy {
            key: RegistryOrderKey::LastUpdatedTimestamp,
            ascending: false,
        });
    }
    for clause in clauses {
        let (identifier, ascending) = split_order_by(clause)?;
        let (is_tag, key) = match identifier.split_once('.') {
            None => (false, identifier.as_str()),
            Some(("attribute", key)) => (false, key),
            Some(("tag" | "tags", key)) => (true, key),
            Some((entity, _)) => {
                return Err(Error::invalid_parameter(format!(
                    "Invalid entity type '{entity}'. Valid entity types are ('attribute', 'tag', 'tags')"
                )))
            }
        };
        let key = strip_quotes(key);
        let order_key = match (is_tag, key.as_str()) {
            (false, "name") => RegistryOrderKey::Name,
            (false, "version_number") => RegistryOrderKey::VersionNumber,
            (false, "creation_timestamp") => RegistryOrderKey::CreationTimestamp,
            (false, "last_updated_timestamp") => RegistryOrderKey::LastUpdatedTimestamp,
            (false, other) => {
                return Err(Error::invalid_parameter(format!(
                    "Invalid attribute key '{other}' specified. Valid keys are '{{'creation_timestamp', \
                     'last_updated_timestamp', 'name', 'version_number'}}'"
                )))
            }
            (true, other) => {
                return Err(Error::invalid_parameter(format!(
                    "Invalid order by key '{other}' specified. Valid keys are {{'creation_timestamp', \
                     'last_updated_timestamp', 'name', 'version_number'}}"
                )))
            }
        };
        push_unique(
            &mut order,
            RegistryOrderBy {
                key: order_key,
                ascending,
            },
            clauses,
        )?;
    }
    if !order.iter().any(|item| item.key == RegistryOrderKey::Name) {
        order.push(RegistryOrderBy {
            key: RegistryOrderKey::Name,
            ascending: true,
        });
    }
    if !order
        .iter()
        .any(|item| item.key == RegistryOrderKey::VersionNumber)
    {
        order.push(RegistryOrderBy {
            key: RegistryOrderKey::VersionNumber,
            ascending: false,
        });
    }
    Ok(order)
}

fn push_unique(
    order: &mut Vec<RegistryOrderBy>,
    item: RegistryOrderBy,
    clauses: &[String],
) -> Result<()> {
    if order.iter().any(|existing| existing.key == item.key) {
        let listed: Vec<String> = clauses.iter().map(|clause| python_repr(clause)).collect();
        return Err(Error::invalid_parameter(format!(
            "`order_by` contains duplicate fields: [{}]",
            listed.join(", ")
        )));
    }
    order.push(item);
    Ok(())
}

/// `key [ASC|DESC]` as MLflow's `_parse_order_by_string` splits it (backticks count as quotes).
fn split_order_by(clause: &str) -> Result<(String, bool)> {
    let unparsable = || {
        Error::invalid_parameter(format!(
            "Invalid order_by clause '{clause}'. Could not be parsed."
        ))
    };
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for character in clause.trim().chars() {
        match (quote, character) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), c) => current.push(c),
            (None, '`' | '"' | '\'') => {
                quote = Some(if character == '`' { '"' } else { character });
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(unparsable());
    }
    if in_word {
        words.push(current);
    }
    match words.as_slice() {
        [key] => Ok((key.clone(), true)),
        [key, direction] => match direction.to_lowercase().as_str() {
            "asc" => Ok((key.clone(), true)),
            "desc" => Ok((key.clone(), false)),
            _ => Err(Error::invalid_parameter(format!(
                "Invalid ordering key in order_by clause '{clause}'."
            ))),
        },
        [] => Err(Error::invalid_parameter(format!(
            "Invalid order_by clause '{clause}'."
        ))),
        _ => Err(unparsable()),
    }
}

/// Python's `repr()` of a string, for messages.
fn python_repr(text: &str) -> String {
    crate::logged_model_filter::python_repr(text)
}

/// Removes one pair of surrounding quotes, then one pair of backticks, as MLflow does with keys.
fn strip_quotes(key: &str) -> String {
    let is_quoted = |text: &str, quote: char| {
        text.len() >= 2 && text.starts_with(quote) && text.ends_with(quote)
    };
    let mut key = key;
    if is_quoted(key, '\'') || is_quoted(key, '"') {
        key = &key[1..key.len() - 1];
    }
    if is_quoted(key, '`') {
        key = &key[1..key.len() - 1];
    }
    key.to_owned()
}

// ---------------------------------------------------------------------------------------------------------
// Syntax.

#[derive(Debug)]
enum RawValue {
    Quoted(String),
    Number { text: String, integer: bool },
    List(Vec<String>),
}

impl RawValue {
    fn text(&self) -> String {
        match self {
            RawValue::Quoted(text) => format!("'{text}'"),
            RawValue::Number { text, .. } => text.clone(),
            RawValue::List(items) => {
                let quoted: Vec<String> = items.iter().map(|item| format!("'{item}'")).collect();
                format!("({})", quoted.join(", "))
            }
        }
    }
}

struct Cursor<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        self.text.get(self.position..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let character = self.peek()?;
        self.position += character.len_utf8();
        Some(character)
    }

    fn at_end(&self) -> bool {
        self.position >= self.text.len()
    }

    fn skip_whitespace(&mut self) -> bool {
        let start = self.position;
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
        self.position > start
    }

    /// Consumes `keyword` (any case) when it stands as a whole word at the cursor.
    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let rest = self.rest();
        let Some(head) = rest.get(..keyword.len()) else {
            return false;
        };
        if !head.eq_ignore_ascii_case(keyword) {
            return false;
        }
        if rest[keyword.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            return false;
        }
        self.position += keyword.len();
        true
    }

    /// Reads a quoted run starting at the quote; a doubled quote inside does not close it. Returns the
    /// text between the quotes, verbatim.
    fn quoted(&mut self, quote: char) -> Option<&'a str> {
        self.bump();
        let start = self.position;
        loop {
            let character = self.bump()?;
            if character == quote {
                if self.peek() == Some(quote) {
                    self.bump();
                    continue;
                }
                return self.text.get(start..self.position - quote.len_utf8());
            }
        }
    }

    /// The rest from the cursor up to the next white space, for messages.
    fn lexeme(&self) -> &'a str {
        let rest = self.rest();
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        &rest[..end]
    }
}

fn is_word_char(character: char) -> bool {
    character.is_alphanumeric() || character == '_'
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_parameter(message)
}

fn parse_filter(filter: &str, target: Target) -> Result<Vec<RegistryComparison>> {
    let mut cursor = Cursor {
        text: filter,
        position: 0,
    };
    let mut comparisons = Vec::new();
    cursor.skip_whitespace();
    if cursor.at_end() {
        return Ok(comparisons);
    }
    loop {
        comparisons.push(parse_comparison(&mut cursor, target)?);
        let had_space = cursor.skip_whitespace();
        if cursor.at_end() {
            return Ok(comparisons);
        }
        if !had_space || !cursor.eat_keyword("AND") {
            return Err(invalid(format!(
                "Invalid clause(s) in filter string: {}",
                cursor.rest().trim()
            )));
        }
        if !cursor.skip_whitespace() || cursor.at_end() {
            return Err(invalid(format!(
                "Invalid filter '{filter}'. Could not be parsed."
            )));
        }
    }
}

/// The raw identifier text: word characters, dots and quoted runs.
fn parse_identifier(cursor: &mut Cursor<'_>) -> Result<String> {
    let start = cursor.position;
    loop {
        match cursor.peek() {
            Some(quote @ ('`' | '"')) => {
                cursor.quoted(quote).ok_or_else(|| {
                    invalid(format!(
                        "Invalid comparison clause. Expected 'Identifier' found '{}'",
                        &cursor.text[start..]
                    ))
                })?;
            }
            Some(c) if is_word_char(c) || c == '.' => {
                cursor.bump();
            }
            _ => break,
        }
    }
    let identifier = &cursor.text[start..cursor.position];
    if identifier.is_empty() {
        return Err(invalid(format!(
            "Invalid comparison clause. Expected 'Identifier' found '{}'",
            cursor.lexeme()
        )));
    }
    Ok(identifier.to_owned())
}

fn parse_comparator(cursor: &mut Cursor<'_>) -> Result<Comparator> {
    let operator: String = cursor
        .rest()
        .chars()
        .take_while(|c| matches!(c, '=' | '!' | '<' | '>'))
        .collect();
    if !operator.is_empty() {
        cursor.position += operator.len();
        return match operator.as_str() {
            "=" => Ok(Comparator::Eq),
            "!=" => Ok(Comparator::NotEq),
            "<" => Ok(Comparator::Lt),
            "<=" => Ok(Comparator::Le),
            ">" => Ok(Comparator::Gt),
            ">=" => Ok(Comparator::Ge),
            other => Err(invalid(format!(
                "Invalid comparison clause. Expected comparison found '{other}'"
            ))),
        };
    }
    if cursor.eat_keyword("LIKE") {
        return Ok(Comparator::Like);
    }
    if cursor.eat_keyword("ILIKE") {
        return Ok(Comparator::ILike);
    }
    if cursor.eat_keyword("IN") {
        return Ok(Comparator::In);
    }
    let start = cursor.position;
    if cursor.eat_keyword("NOT") {
        cursor.skip_whitespace();
        if cursor.eat_keyword("IN") {
            return Ok(Comparator::NotIn);
        }
        cursor.position = start;
    }
    Err(invalid(format!(
        "Invalid comparison clause. Expected comparison found '{}'",
        cursor.lexeme()
    )))
}

fn parse_list(cursor: &mut Cursor<'_>) -> Result<Vec<String>> {
    let ill_formed = || {
        invalid(
            "While parsing a list in the query, expected a non-empty list of string values, but got \
             ill-formed list.",
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
            Some(quote @ ('\'' | '"')) => {
                items.push(cursor.quoted(quote).ok_or_else(ill_formed)?.to_owned());
            }
            _ => {
                return Err(invalid(
                    "While parsing a list in the query, expected string value, punctuation, or \
                     whitespace, but got different type in list",
                ))
            }
        }
        cursor.skip_whitespace();
        match cursor.bump() {
            Some(',') => {}
            Some(')') => break,
            _ => return Err(ill_formed()),
        }
    }
    if items.is_empty() {
        return Err(invalid(
            "While parsing a list in the query, expected a non-empty list of string values, but got \
             empty list",
        ));
    }
    Ok(items)
}

fn parse_value(cursor: &mut Cursor<'_>) -> Result<RawValue> {
    match cursor.peek() {
        Some('(') => parse_list(cursor).map(RawValue::List),
        Some(quote @ ('\'' | '"')) => {
            let lexeme = cursor.lexeme();
            let text = cursor
                .quoted(quote)
                .ok_or_else(|| invalid(format!("Invalid filter string: unterminated {lexeme}")))?;
            Ok(RawValue::Quoted(text.to_owned()))
        }
        Some(c) if c == '-' || c == '.' || c.is_ascii_digit() => {
            let text: String = cursor
                .rest()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'))
                .collect();
            cursor.position += text.len();
            if text.parse::<f64>().is_err() {
                return Err(invalid(format!(
                    "Invalid comparison clause. Expected value token found '{text}'"
                )));
            }
            let integer = text.parse::<i64>().is_ok();
            Ok(RawValue::Number { text, integer })
        }
        _ => {
            let lexeme = cursor.lexeme();
            Err(invalid(format!(
                "Parameter value is either not quoted or unidentified quote types used for string value \
                 {lexeme}. Use either single or double quotes."
            )))
        }
    }
}

fn parse_comparison(cursor: &mut Cursor<'_>, target: Target) -> Result<RegistryComparison> {
    let identifier = parse_identifier(cursor)?;
    cursor.skip_whitespace();
    let comparator = parse_comparator(cursor)?;
    cursor.skip_whitespace();
    if cursor.at_end() {
        return Err(invalid(
            "Invalid comparison clause. Expected 3 tokens found 2",
        ));
    }
    let raw = parse_value(cursor)?;
    resolve(&identifier, comparator, raw, target)
}

const MODEL_VERSION_KEYS: &str = "{'name', 'run_id', 'source_path', 'version_number'}";

fn resolve(
    identifier: &str,
    comparator: Comparator,
    raw: RawValue,
    target: Target,
) -> Result<RegistryComparison> {
    let (is_tag, key) = match identifier.split_once('.') {
        None => (false, identifier),
        Some(("attribute", key)) => (false, key),
        Some(("tag" | "tags", key)) => (true, key),
        Some((entity, _)) => {
            return Err(invalid(format!(
            "Invalid entity type '{entity}'. Valid entity types are ('attribute', 'tag', 'tags')"
        )))
        }
    };
    if is_tag {
        let key = strip_quotes(key);
        let value = match raw {
            RawValue::Quoted(text) => text,
            other => {
                return Err(invalid(format!(
                    "Expected a quoted string value for tag (e.g. 'my-value'). Got value {}",
                    other.text()
                )))
            }
        };
        if !matches!(
            comparator,
            Comparator::Eq | Comparator::NotEq | Comparator::Like | Comparator::ILike
        ) {
            return Err(invalid(format!(
                "Invalid comparator for tag: {}",
                comparator.as_str()
            )));
        }
        return Ok(RegistryComparison {
            key: RegistryKey::Tag(key),
            comparator,
            value: Value::String(value),
        });
    }
    let key_name = strip_quotes(key);
    let key = match (target, key_name.as_str()) {
        (_, "name") => RegistryKey::Name,
        (Target::ModelVersions, "run_id") => RegistryKey::RunId,
        (Target::ModelVersions, "source_path") => RegistryKey::SourcePath,
        (Target::ModelVersions, "version_number") => RegistryKey::VersionNumber,
        (Target::RegisteredModels, other) => {
            return Err(invalid(format!(
                "Invalid attribute key '{other}' specified. Valid keys are '{{'name'}}'"
            )))
        }
        (Target::ModelVersions, other) => {
            return Err(invalid(format!(
                "Invalid attribute key '{other}' specified. Valid keys are '{MODEL_VERSION_KEYS}'"
            )))
        }
    };
    let list_keys = match target {
        Target::RegisteredModels => "['name']",
        Target::ModelVersions => "['name', 'run_id']",
    };
    let value = match raw {
        RawValue::Quoted(text) => Value::String(text),
        RawValue::List(items) => {
            if !matches!(key, RegistryKey::Name | RegistryKey::RunId) {
                return Err(invalid(format!(
                    "Only {list_keys} attributes support comparison with a list of quoted string values."
                )));
            }
            Value::List(items)
        }
        RawValue::Number { text, integer } => match (target, &key) {
            (Target::ModelVersions, RegistryKey::VersionNumber) if integer => Value::String(text),
            (Target::ModelVersions, RegistryKey::VersionNumber) => {
                return Err(invalid(format!(
                    "Invalid value for numeric attribute 'version_number': {text}"
                )))
            }
            (Target::ModelVersions, _) => return Err(invalid(
                "Only the '{'creation_timestamp', 'last_updated_timestamp', 'version_number'}' \
                     attributes support comparison with numeric values.",
            )),
            (Target::RegisteredModels, _) => {
                return Err(invalid(format!(
                "Expected a quoted string value or a list of quoted string values for attributes. \
                     Got value {text}"
            )))
            }
        },
    };
    if key == RegistryKey::VersionNumber {
        if !matches!(
            comparator,
            Comparator::Eq
                | Comparator::NotEq
                | Comparator::Lt
                | Comparator::Le
                | Comparator::Gt
                | Comparator::Ge
        ) {
            return Err(invalid(format!(
                "Invalid comparator for attribute version_number: {}",
                comparator.as_str()
            )));
        }
        let number = match &value {
            Value::String(text) => text.trim().parse::<i64>().map_err(|_| {
                invalid(format!(
                    "Invalid value for numeric attribute 'version_number': '{text}'"
                ))
            })?,
            _ => {
                return Err(invalid(format!(
                    "Invalid comparator for attribute version_number: {}",
                    comparator.as_str()
                )))
            }
        };
        return Ok(RegistryComparison {
            key,
            comparator,
            value: Value::Number(number as f64),
        });
    }
    let allows_lists = matches!(key, RegistryKey::Name | RegistryKey::RunId);
    let valid = match comparator {
        Comparator::Eq | Comparator::NotEq | Comparator::Like | Comparator::ILike => {
            matches!(value, Value::String(_))
        }
        Comparator::In | Comparator::NotIn => allows_lists && matches!(value, Value::List(_)),
        Comparator::Lt
        | Comparator::Le
        | Comparator::Gt
        | Comparator::Ge
        | Comparator::IsNull
        | Comparator::IsNotNull => false,
    };
    if !valid {
        return Err(invalid(format!(
            "Invalid comparator for attribute: {}",
            comparator.as_str()
        )));
    }
    Ok(RegistryComparison {
        key,
        comparator,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text gives comparisons or an INVALID_PARAMETER_VALUE error, never a panic.
        #[test]
        fn parsers_never_panic(filter in "\\PC{0,40}", clause in "\\PC{0,20}") {
            for result in [parse_registered_model_filter(&filter), parse_model_version_filter(&filter)] {
                if let Err(error) = result {
                    prop_assert_eq!(error.code, ferroflow_proto::ErrorCode::InvalidParameterValue);
                }
            }
            let _ = parse_registered_model_order_by(std::slice::from_ref(&clause));
            let _ = parse_model_version_order_by(std::slice::from_ref(&clause));
        }

        /// Filters built from the grammar's pieces parse.
        #[test]
        fn grammar_filters_parse(
            key in "[a-z][a-z0-9_.]{0,10}",
            value in "[^'\\\\]{0,10}",
            operator in prop::sample::select(vec!["=", "!=", "LIKE", "ILIKE", "like"]),
        ) {
            let filter = format!("tags.`{key}` {operator} '{value}' AND name = 'x'");
            prop_assert!(parse_registered_model_filter(&filter).is_ok(), "{}", filter);
            prop_assert!(parse_model_version_filter(&filter).is_ok(), "{}", filter);
        }
    }

    fn model(filter: &str) -> Result<Vec<RegistryComparison>> {
        parse_registered_model_filter(filter)
    }

    fn version(filter: &str) -> Result<Vec<RegistryComparison>> {
        parse_model_version_filter(filter)
    }

    fn error(result: Result<Vec<RegistryComparison>>) -> String {
        result.unwrap_err().message
    }

    #[test]
    fn registered_model_filters() {
        assert_eq!(model("").unwrap(), vec![]);
        assert_eq!(
            model("name = 'a' and tags.`mlflow.prompt.is_prompt` != 'true'").unwrap(),
            vec![
                RegistryComparison {
                    key: RegistryKey::Name,
                    comparator: Comparator::Eq,
                    value: Value::String("a".into()),
                },
                RegistryComparison {
                    key: RegistryKey::Tag(IS_PROMPT_TAG_KEY.into()),
                    comparator: Comparator::NotEq,
                    value: Value::String("true".into()),
                },
            ]
        );
        assert_eq!(
            model("name IN ('a', \"b\")").unwrap()[0].value,
            Value::List(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            model("tag.k LIKE '%x%'").unwrap()[0].key,
            RegistryKey::Tag("k".into())
        );
        assert_eq!(
            error(model("run_id = 'a'")),
            "Invalid attribute key 'run_id' specified. Valid keys are '{'name'}'"
        );
        assert_eq!(
            error(model("metrics.a = 'x'")),
            "Invalid entity type 'metrics'. Valid entity types are ('attribute', 'tag', 'tags')"
        );
        assert_eq!(
            error(model("tags.a IN ('x')")),
            "Expected a quoted string value for tag (e.g. 'my-value'). Got value ('x')"
        );
        assert_eq!(
            error(model("name > 'a'")),
            "Invalid comparator for attribute: >"
        );
        assert!(model("name = 'a' name = 'b'").is_err());
        assert!(model("name = 'a' AND").is_err());
        assert!(model("name = a").is_err());
    }

    #[test]
    fn model_version_filters() {
        assert_eq!(
            version("version_number >= 2").unwrap()[0].value,
            Value::Number(2.0)
        );
        assert_eq!(
            version("version_number = '3'").unwrap()[0].value,
            Value::Number(3.0)
        );
        assert_eq!(
            error(version("version_number = 1.5")),
            "Invalid value for numeric attribute 'version_number': 1.5"
        );
        assert_eq!(
            version("run_id IN ('a','b')").unwrap()[0].key,
            RegistryKey::RunId
        );
        assert_eq!(
            version("source_path LIKE 'models:/%'").unwrap()[0].key,
            RegistryKey::SourcePath
        );
        assert_eq!(
            error(version("source_path IN ('a')")),
            "Only ['name', 'run_id'] attributes support comparison with a list of quoted string values."
        );
        assert!(version("creation_timestamp > 1").is_err());
    }

    #[test]
    fn prompt_selection() {
        assert!(is_querying_prompts(
            &model("tags.`mlflow.prompt.is_prompt` = 'true'").unwrap()
        ));
        assert!(is_querying_prompts(
            &model("tags.`mlflow.prompt.is_prompt` != 'false'").unwrap()
        ));
        assert!(!is_querying_prompts(
            &model("tag.`mlflow.prompt.is_prompt` != 'true'").unwrap()
        ));
        assert!(!is_querying_prompts(&model("name = 'x'").unwrap()));
    }

    #[test]
    fn order_by() {
        let strings = |items: &[&str]| {
            items
                .iter()
                .map(|item| (*item).to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            parse_registered_model_order_by(&strings(&["timestamp DESC"])).unwrap(),
            vec![
                RegistryOrderBy {
                    key: RegistryOrderKey::LastUpdatedTimestamp,
                    ascending: false
                },
                RegistryOrderBy {
                    key: RegistryOrderKey::Name,
                    ascending: true
                },
            ]
        );
        assert!(parse_registered_model_order_by(&strings(&[
            "timestamp",
            "last_updated_timestamp"
        ]))
        .is_err());
        assert!(parse_registered_model_order_by(&strings(&["creation_timestamp"])).is_err());
        assert!(parse_registered_model_order_by(&strings(&["name sideways"])).is_err());
        assert_eq!(
            parse_model_version_order_by(&[]).unwrap(),
            vec![
                RegistryOrderBy {
                    key: RegistryOrderKey::LastUpdatedTimestamp,
                    ascending: false
                },
                RegistryOrderBy {
                    key: RegistryOrderKey::Name,
                    ascending: true
                },
                RegistryOrderBy {
                    key: RegistryOrderKey::VersionNumber,
                    ascending: false
                },
            ]
        );
        assert_eq!(
            parse_model_version_order_by(&strings(&["version_number ASC"])).unwrap(),
            vec![
                RegistryOrderBy {
                    key: RegistryOrderKey::VersionNumber,
                    ascending: true
                },
                RegistryOrderBy {
                    key: RegistryOrderKey::Name,
                    ascending: true
                },
            ]
        );
    }
}
