//! Validation of client input against MLflow's limits, with MLflow's messages.

use crate::error::{Error, Result};

pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
pub const MAX_BATCH_LOG_REQUEST_SIZE: usize = 1_000_000;
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
pub const MAX_TAG_VAL_LENGTH: usize = 8000;
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
pub const MAX_EXPERIMENT_TAG_KEY_LENGTH: usize = 250;
pub const MAX_EXPERIMENT_TAG_VAL_LENGTH: usize = 20000;
pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
pub const MAX_EXPERIMENTS_LISTED_PER_PAGE: i64 = 50000;
pub const MAX_RESULTS_SEARCH_RUNS: i64 = 50000;
pub const DEFAULT_SEARCH_RUNS_MAX_RESULTS: i64 = 1000;
pub const MAX_DATASET_NAME_SIZE: usize = 500;
pub const MAX_DATASET_DIGEST_SIZE: usize = 36;
pub const MAX_DATASET_SCHEMA_SIZE: usize = 1_048_575;
pub const MAX_DATASET_SOURCE_SIZE: usize = 65_535;
pub const MAX_DATASET_PROFILE_SIZE: usize = 16_777_215;
pub const MAX_INPUT_TAG_KEY_SIZE: usize = 255;
pub const MAX_INPUT_TAG_VALUE_SIZE: usize = 500;
pub const MAX_RUNS_GET_METRIC_HISTORY_BULK: usize = 100;
pub const MAX_RESULTS_PER_RUN: i64 = 2500;
pub const MAX_RESULTS_GET_METRIC_HISTORY: i64 = 25000;

/// MLflow's message for a value it refuses: the value is shown as JSON.
pub fn invalid_value(path: &str, value: &str, message: Option<&str>) -> String {
    let formatted = serde_json::to_string(value).unwrap_or_default();
    match message {
        Some(message) => {
            format!("Invalid value {formatted} for parameter '{path}' supplied: {message}")
        }
        None => format!("Invalid value {formatted} for parameter '{path}' supplied."),
    }
}

/// `path` then `.value`, or `path[0]`, as MLflow names nested fields in messages.
pub fn json_path(current: &str, field: &str) -> String {
    if current.is_empty() {
        field.to_owned()
    } else if field.starts_with('[') {
        format!("{current}{field}")
    } else {
        format!("{current}.{field}")
    }
}

const BAD_CHARACTER_MESSAGE: &str =
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), \
     spaces ( ), colon(:) and slashes (/).";

fn has_only_name_characters(name: &str) -> bool {
    name.chars().all(|character| {
        character.is_alphanumeric() || matches!(character, '_' | '/' | '.' | '-' | ' ' | ':')
    })
}

/// POSIX path normalization, as `posixpath.normpath` does it.
pub fn normalize_posix_path(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let leading_slashes = if path.starts_with("//") && !path.starts_with("///") {
        2
    } else if path.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if leading_slashes == 0 && (parts.is_empty() || parts.last() == Some(&"..")) {
                    parts.push("..");
                } else if !parts.is_empty() {
                    parts.pop();
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    let normalized = format!("{}{}", "/".repeat(leading_slashes), joined);
    if normalized.is_empty() {
        ".".to_owned()
    } else {
        normalized
    }
}

fn path_not_unique(name: &str) -> bool {
    let normalized = normalize_posix_path(name);
    normalized != name
        || normalized == "."
        || normalized.starts_with("..")
        || normalized.starts_with('/')
}

fn bad_path_message(name: &str) -> String {
    format!(
        "Names may be treated as files in certain cases, and must not resolve to other names when treated as such. \
         This name would resolve to '{}'",
        normalize_posix_path(name)
    )
}

/// Checks a metric, param or tag key: allowed characters and a normalized relative path.
pub fn validate_key(name: &str, path: &str) -> Result<()> {
    if !has_only_name_characters(name) {
        return Err(Error::invalid_parameter(invalid_value(
            path,
            name,
            Some(BAD_CHARACTER_MESSAGE),
        )));
    }
    if path_not_unique(name) {
        return Err(Error::invalid_parameter(invalid_value(
            path,
            name,
            Some(&bad_path_message(name)),
        )));
    }
    Ok(())
}

/// Refuses a value longer than `limit` characters.
pub fn validate_length(entity_name: &str, limit: usize, value: &str) -> Result<()> {
    if value.chars().count() > limit {
        return Err(Error::invalid_parameter(format!(
            "'{entity_name}' exceeds the maximum length of {limit} characters"
        )));
    }
    Ok(())
}

/// Cuts a value to `limit` characters, as MLflow does for long param and tag values.
pub fn truncate(value: String, limit: usize) -> String {
    match value.char_indices().nth(limit) {
        Some((byte_index, _)) => value[..byte_index].to_owned(),
        None => value,
    }
}

pub fn validate_experiment_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid_parameter(format!(
            "Invalid experiment name: '{name}'"
        )));
    }
    validate_length("name", MAX_EXPERIMENT_NAME_LENGTH, name)
}

pub fn validate_experiment_tag(key: &str, value: &str) -> Result<()> {
    validate_key(key, "key")?;
    validate_length("key", MAX_EXPERIMENT_TAG_KEY_LENGTH, key)?;
    validate_length("value", MAX_EXPERIMENT_TAG_VAL_LENGTH, value)
}

/// Validates a run tag and returns its value cut to MLflow's limit.
pub fn validate_run_tag(key: &str, value: String, path: &str) -> Result<String> {
    validate_key(key, &json_path(path, "key"))?;
    validate_length(&json_path(path, "key"), MAX_ENTITY_KEY_LENGTH, key)?;
    Ok(truncate(value, MAX_TAG_VAL_LENGTH))
}

/// Validates a param and returns its value cut to MLflow's limit.
pub fn validate_param(key: &str, value: String, path: &str) -> Result<String> {
    validate_key(key, &json_path(path, "key"))?;
    validate_length("Param key", MAX_ENTITY_KEY_LENGTH, key)?;
    Ok(truncate(value, MAX_PARAM_VAL_LENGTH))
}

pub fn validate_metric(key: &str, timestamp: i64, path: &str) -> Result<()> {
    validate_key(key, &json_path(path, "name"))?;
    if timestamp < 0 {
        return Err(Error::invalid_parameter(invalid_value(
            &json_path(path, "timestamp"),
            &timestamp.to_string(),
            Some(&format!(
                "metric '{key}'. Timestamp must be a nonnegative long (64-bit integer) "
            )),
        )));
    }
    validate_length("Metric name", MAX_ENTITY_KEY_LENGTH, key)
}

fn validate_batch_limit(entity_name: &str, limit: usize, length: usize) -> Result<()> {
    if length > limit {
        return Err(Error::invalid_parameter(format!(
            "A batch logging request can contain at most {limit} {entity_name}. Got {length} {entity_name}. \
             Please split up {entity_name} across multiple requests and try again."
        )));
    }
    Ok(())
}

pub fn validate_batch_limits(metrics: usize, params: usize, tags: usize) -> Result<()> {
    validate_batch_limit("metrics", MAX_METRICS_PER_BATCH, metrics)?;
    validate_batch_limit("params", MAX_PARAMS_TAGS_PER_BATCH, params)?;
    validate_batch_limit("tags", MAX_PARAMS_TAGS_PER_BATCH, tags)?;
    validate_batch_limit(
        "metrics, params, and tags",
        MAX_ENTITIES_PER_BATCH,
        metrics + params + tags,
    )
}

/// Run ids as MLflow accepts them: `^[a-zA-Z0-9][\w-]{0,255}$`.
pub fn validate_run_id(run_id: &str) -> Result<()> {
    let mut characters = run_id.chars();
    let valid = matches!(characters.next(), Some(first) if first.is_ascii_alphanumeric())
        && run_id.chars().count() <= 256
        && characters
            .all(|character| character.is_alphanumeric() || character == '_' || character == '-');
    if valid {
        Ok(())
    } else {
        Err(Error::invalid_parameter(invalid_value(
            "run_id", run_id, None,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_key(key: &str, valid: bool) {
        assert_eq!(validate_key(key, "key").is_ok(), valid, "{key}");
    }

    #[test]
    fn keys() {
        check_key("loss", true);
        check_key("train/loss", true);
        check_key("a b:c-d.e_f", true);
        check_key("ünïcödé", true);
        check_key("../etc", false);
        check_key("/abs", false);
        check_key("a//b", false);
        check_key("./a", false);
        check_key("a/", false);
        check_key(".", false);
        check_key("bad$char", false);
        check_key("semi;colon", false);
    }

    #[test]
    fn normpath_matches_python() {
        assert_eq!(normalize_posix_path("a/./b"), "a/b");
        assert_eq!(normalize_posix_path("a/../../b"), "../b");
        assert_eq!(normalize_posix_path("/../a"), "/a");
        assert_eq!(normalize_posix_path(""), ".");
        assert_eq!(normalize_posix_path("a/"), "a");
    }

    #[test]
    fn messages_match_mlflow() {
        assert_eq!(
            invalid_value("metrics[0].name", "a$", Some("x")),
            "Invalid value \"a$\" for parameter 'metrics[0].name' supplied: x"
        );
        assert_eq!(json_path("", "key"), "key");
        assert_eq!(json_path("params[1]", "key"), "params[1].key");
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("héllo".to_owned(), 2), "hé");
        assert_eq!(truncate("hi".to_owned(), 5), "hi");
    }

    #[test]
    fn batch_limits() {
        assert!(validate_batch_limits(1000, 0, 0).is_ok());
        assert!(validate_batch_limits(1001, 0, 0).is_err());
        assert!(validate_batch_limits(0, 101, 0).is_err());
        assert!(validate_batch_limits(900, 100, 1).is_err());
    }

    #[test]
    fn run_ids() {
        assert!(validate_run_id("0123456789abcdef0123456789abcdef").is_ok());
        assert!(validate_run_id("../x").is_err());
        assert!(validate_run_id("").is_err());
    }
}
