//! Registered scorers (MLflow 3 `mlflow.genai.scorers` `.register()`, `list_scorers`, `get_scorer`,
//! `delete_scorer`): the [`ScorerStore`] trait, the [`ScorerService`] behind the `/api/3.0/mlflow/scorers`
//! routes, and the checks MLflow 3.17's handler and `SqlAlchemyStore` make on a serialized scorer.
//!
//! A scorer is one row of `scorers` (experiment, name, `scorer_id`) and its versions are rows of
//! `scorer_versions` numbered 1, 2, … per scorer, as MLflow writes them, so either server reads the
//! other's. A custom `@scorer` (one carrying `call_source` code) is refused unless the server runs with
//! `MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS` set, as MLflow's server refuses it.
//!
//! Not served: registering a scorer whose judge model is an AI Gateway endpoint (`gateway:/<name>`),
//! which MLflow stores bound to the endpoint's id (ferroflow has no gateway). Such scorers written by
//! MLflow read as MLflow reads them: the endpoint's name in place of its id.

use crate::error::{Error, Result};
use crate::ids::now_millis;
use crate::model::LifecycleStage;
use crate::store::TrackingStore;
use crate::trace_json::OrderedJson;
use async_trait::async_trait;
use ferroflow_proto::scorers::{
    GetOnlineScoringConfigs, GetScorerResponse, ListScorerVersions, ListScorers,
    OnlineScoringConfig, OnlineScoringConfigsResponse, RegisterScorer, RegisterScorerResponse,
    Scorer, ScorerVersionRequest, ScorersResponse,
};
use ferroflow_proto::tracking::{Empty, Experiment};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The environment variable that lets the server accept custom (`@scorer`) scorers.
pub const CUSTOM_SCORERS_ENV: &str = "MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS";

/// MLflow's refusal of a custom scorer, word for word (the client shows it).
pub const CUSTOM_SCORER_REFUSED: &str =
    "Custom scorer registration (using @scorer decorator) is disabled by default outside of \
     Databricks tracking environments due to security concerns. Custom scorers require arbitrary \
     code execution during deserialization.\n\nTo use custom scorers:\n1. Configure MLflow to use \
     a Databricks tracking URI, or\n2. Manage your custom scorer code in a source code repository \
     (e.g., GitHub) and import it directly, or\n3. On a self-managed MLflow server (or local \
     environment) that you trust to run the scorer's code, set the \
     MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS environment variable to true, or\n4. Use built-in \
     scorers or make_judge() scorers instead.";

/// Options of a third-party scorer's LLM client that choose where it sends requests.
const DESTINATION_KEYS: [&str; 5] = [
    "api_base",
    "base_url",
    "model_list",
    "fallbacks",
    "custom_llm_provider",
];

/// Whether the value of `MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS` turns custom scorers on (`true` or `1`,
/// any case, as MLflow reads a boolean variable).
pub fn custom_scorers_enabled(value: Option<&str>) -> bool {
    value.is_some_and(|value| matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "1"))
}

/// A new scorer's id: a hyphenated UUID, as MLflow's `str(uuid.uuid4())`.
pub fn new_scorer_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// One version of a registered scorer, with its scorer's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScorerRow {
    pub experiment_id: i64,
    pub scorer_name: String,
    pub scorer_id: String,
    pub scorer_version: i64,
    pub serialized_scorer: String,
    pub creation_time: Option<i64>,
}

impl ScorerRow {
    fn to_message(&self) -> Scorer {
        Scorer {
            experiment_id: self.experiment_id,
            scorer_name: self.scorer_name.clone(),
            scorer_version: self.scorer_version,
            serialized_scorer: self.serialized_scorer.clone(),
            creation_time: self.creation_time.unwrap_or(0),
            scorer_id: self.scorer_id.clone(),
        }
    }
}

/// One row of `online_scoring_configs`.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineConfigRow {
    pub online_scoring_config_id: String,
    pub scorer_id: String,
    pub sample_rate: f64,
    pub experiment_id: i64,
    pub filter_string: Option<String>,
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// No scorer of that name in the experiment.
    NoScorer,
    /// The scorer exists but has no such version (or no versions at all).
    NoVersion,
    Deleted,
}

/// The storage of registered scorers.
#[async_trait]
pub trait ScorerStore: Send + Sync {
    /// Adds the next version of the scorer `name` of the experiment (creating the scorer with a new
    /// id at its first version), in one transaction; the version written.
    async fn register_scorer(
        &self,
        experiment_id: i64,
        name: &str,
        serialized_scorer: &str,
        now: i64,
    ) -> Result<ScorerRow>;
    /// The latest version of every scorer of the experiments, ordered by experiment then name.
    async fn latest_scorers(&self, experiment_ids: &[i64]) -> Result<Vec<ScorerRow>>;
    /// The ids of the active experiments (all of them when `ids` is `None`, else those of `ids`).
    async fn active_experiment_ids(&self, ids: Option<&[i64]>) -> Result<Vec<i64>>;
    /// The id of the scorer `name` of the experiment.
    async fn scorer_id(&self, experiment_id: i64, name: &str) -> Result<Option<String>>;
    /// The scorer's versions, oldest first.
    async fn scorer_versions(&self, scorer_id: &str) -> Result<Vec<ScorerRow>>;
    /// One version of the scorer, the latest when `version` is `None`.
    async fn scorer_version(
        &self,
        scorer_id: &str,
        version: Option<i64>,
    ) -> Result<Option<ScorerRow>>;
    /// Deletes one version, or (`None`) every version and the scorer itself with its online
    /// configs and gateway bindings, in one transaction.
    async fn delete_scorer(
        &self,
        experiment_id: i64,
        name: &str,
        version: Option<i64>,
    ) -> Result<DeleteOutcome>;
    /// The names of the AI Gateway endpoints (MLflow's `endpoints` table) by id.
    async fn gateway_endpoint_names(&self) -> Result<HashMap<String, String>>;
    /// The online scoring configs of the scorers.
    async fn online_configs(&self, scorer_ids: &[String]) -> Result<Vec<OnlineConfigRow>>;
}

/// Python's `repr` of a key (they are plain identifiers here).
fn python_repr(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Whether custom code (`call_source`) appears anywhere in the serialized scorer.
pub fn has_call_source(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            map.get("call_source")
                .is_some_and(|source| !source.is_null())
                || map.values().any(has_call_source)
        }
        Value::Array(items) => items.iter().any(has_call_source),
        _ => false,
    }
}

fn destination_keys(value: &Value, found: &mut BTreeSet<&'static str>) {
    match value {
        Value::Object(map) => {
            for key in DESTINATION_KEYS {
                if map.contains_key(key) {
                    found.insert(key);
                }
            }
            map.values()
                .for_each(|nested| destination_keys(nested, found));
        }
        Value::Array(items) => {
            for nested in items {
                if let Value::Array(pair) = nested {
                    if let [Value::String(key), _] = pair.as_slice() {
                        if let Some(known) = DESTINATION_KEYS.iter().find(|known| **known == key) {
                            found.insert(known);
                        }
                    }
                }
                destination_keys(nested, found);
            }
        }
        _ => {}
    }
}

fn third_party_data<'a>(value: &'a Value, found: &mut Vec<&'a serde_json::Map<String, Value>>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(data)) = map.get("third_party_scorer_data") {
                found.push(data);
            }
            map.values()
                .for_each(|nested| third_party_data(nested, found));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|nested| third_party_data(nested, found)),
        _ => {}
    }
}

/// MLflow's `_validate_third_party_scorer_data`: a third-party scorer's `kwargs` must be an object that
/// names no outbound destination, at any depth.
pub fn validate_third_party_data(serialized: &Value) -> Result<()> {
    let mut all = Vec::new();
    third_party_data(serialized, &mut all);
    for data in all {
        let Some(kwargs) = data.get("kwargs").filter(|kwargs| !kwargs.is_null()) else {
            continue;
        };
        if !kwargs.is_object() {
            return Err(Error::invalid_parameter(format!(
                "third_party_scorer_data.kwargs must be a JSON object, got {}.",
                python_type_name(kwargs)
            )));
        }
        let mut found = BTreeSet::new();
        destination_keys(kwargs, &mut found);
        if !found.is_empty() {
            let listed: Vec<String> = found.iter().map(|key| python_repr(key)).collect();
            return Err(Error::invalid_parameter(format!(
                "third_party_scorer_data.kwargs must not contain {}: these options choose where the \
                 scorer's LLM client sends requests. Configure the judge endpoint on the server \
                 instead, for example through a gateway endpoint ('gateway:/<name>') or the \
                 provider's environment variables.",
                listed.join(", ")
            )));
        }
    }
    Ok(())
}

/// The judge model a serialized scorer names (MLflow's `extract_model_from_serialized_scorer`).
pub fn scorer_model(serialized: &Value) -> Option<&Value> {
    let section = |key: &str| serialized.get(key).filter(|value| is_truthy(value));
    if let Some(data) = section("instructions_judge_pydantic_data") {
        return data.get("model");
    }
    if let Some(data) = section("builtin_scorer_pydantic_data") {
        return data.get("model");
    }
    if let Some(data) = section("memory_augmented_judge_data") {
        return data.get("base_judge").and_then(scorer_model);
    }
    if let Some(data) = section("third_party_scorer_data") {
        return data.get("model");
    }
    None
}

/// Python truthiness of a JSON value.
fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|number| number != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// MLflow's `validate_scorer_model`, and ferroflow's refusal of gateway-bound judges.
fn validate_model(model: Option<&Value>) -> Result<()> {
    match model {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(model)) if model.trim().is_empty() => Err(Error::invalid_parameter(
            "Scorer model cannot be empty or contain only whitespace.",
        )),
        Some(Value::String(model)) if model.starts_with("gateway:/") => Err(Error::new(
            ferroflow_proto::ErrorCode::NotImplemented,
            format!(
                "Scorer model '{model}' is an AI Gateway endpoint; this ferroflow server does not \
                 serve the AI Gateway, so scorers bound to it cannot be registered here."
            ),
        )),
        Some(Value::String(_)) => Ok(()),
        Some(other) => Err(Error::invalid_parameter(format!(
            "Scorer model must be a string, got {}.",
            python_type_name(other)
        ))),
    }
}

/// The judge section whose `model` MLflow reads and rewrites (`update_model_in_serialized_scorer`).
fn model_section(value: &mut OrderedJson) -> Option<&mut Vec<(String, OrderedJson)>> {
    let OrderedJson::Object(fields) = value else {
        return None;
    };
    let truthy = |value: &OrderedJson| match value {
        OrderedJson::Null => false,
        OrderedJson::Bool(flag) => *flag,
        OrderedJson::Int(number) => *number != 0,
        OrderedJson::UInt(number) => *number != 0,
        OrderedJson::Float(number) => *number != 0.0,
        OrderedJson::String(text) => !text.is_empty(),
        OrderedJson::Array(items) => !items.is_empty(),
        OrderedJson::Object(fields) => !fields.is_empty(),
    };
    let index = [
        "instructions_judge_pydantic_data",
        "builtin_scorer_pydantic_data",
        "memory_augmented_judge_data",
        "third_party_scorer_data",
    ]
    .iter()
    .find_map(|key| {
        fields
            .iter()
            .position(|(name, value)| name == key && truthy(value))
    })?;
    let (key, section) = &mut fields[index];
    if key == "memory_augmented_judge_data" {
        let OrderedJson::Object(memory) = section else {
            return None;
        };
        let base = memory.iter_mut().find(|(name, _)| name == "base_judge")?;
        return model_section(&mut base.1);
    }
    match section {
        OrderedJson::Object(fields) => Some(fields),
        _ => None,
    }
}

/// The endpoint id of a stored `gateway:/<endpoint_id>` judge model.
fn gateway_endpoint_id(value: &mut OrderedJson) -> Option<String> {
    let section = model_section(value)?;
    let (_, model) = section.iter().find(|(name, _)| name == "model")?;
    model
        .as_str()?
        .strip_prefix("gateway:/")
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// MLflow's read of a stored scorer: a judge bound to a gateway endpoint id shows the endpoint's name
/// (`gateway:/<name>`), or no model once the endpoint is gone, re-serialized as Python's `json.dumps`.
/// With `listed` (`list`, `versions`) every scorer is re-serialized, as MLflow's batch read does;
/// otherwise (`get`) a scorer without a gateway judge keeps its stored text.
pub fn resolve_gateway_model(
    serialized: &str,
    endpoint_names: &HashMap<String, String>,
    listed: bool,
) -> Option<String> {
    let mut value = OrderedJson::parse(serialized)?;
    let Some(endpoint_id) = gateway_endpoint_id(&mut value) else {
        return listed.then(|| value.python_dumps(true));
    };
    let new_model = match endpoint_names.get(&endpoint_id) {
        Some(name) => OrderedJson::String(format!("gateway:/{name}")),
        None => OrderedJson::Null,
    };
    if let Some(section) = model_section(&mut value) {
        match section.iter_mut().find(|(name, _)| name == "model") {
            Some((_, model)) => *model = new_model,
            None => section.push(("model".to_owned(), new_model)),
        }
    }
    Some(value.python_dumps(true))
}

fn required(value: Option<String>, name: &str) -> Result<String> {
    value
        .filter(|value| !value.is_empty())
        .ok_or_else(|| Error::missing_parameter(name))
}

fn scorer_not_found(name: &str, experiment_id: &str) -> Error {
    Error::not_found(format!(
        "Scorer with name '{name}' not found for experiment {experiment_id}."
    ))
}

fn version_not_found(name: &str, version: i64, experiment_id: &str) -> Error {
    Error::not_found(format!(
        "Scorer with name '{name}' and version {version} not found for experiment {experiment_id}."
    ))
}

/// Validates the `/scorers` requests and answers them as MLflow 3.17 does.
#[derive(Clone)]
pub struct ScorerService {
    store: Arc<dyn ScorerStore>,
    tracking: Arc<dyn TrackingStore>,
    custom_scorers: bool,
}

impl ScorerService {
    /// Custom scorers are refused until [`ScorerService::with_custom_scorers`] turns them on.
    pub fn new(store: Arc<dyn ScorerStore>, tracking: Arc<dyn TrackingStore>) -> Self {
        Self {
            store,
            tracking,
            custom_scorers: false,
        }
    }

    /// Accepts custom (`@scorer`) scorers, as `MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS=true` does.
    pub fn with_custom_scorers(mut self, enabled: bool) -> Self {
        self.custom_scorers = enabled;
        self
    }

    /// The experiment, which must exist and be active; its id as the `INTEGER` the tables hold.
    async fn active_experiment(&self, experiment_id: &str) -> Result<i64> {
        let experiment: Experiment = self
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
        experiment
            .experiment_id
            .parse()
            .map_err(|_| Error::not_found(format!("No Experiment with id={experiment_id} exists")))
    }

    /// The messages of `rows`, their judges' gateway endpoints named as MLflow names them on read.
    async fn messages(&self, rows: &[ScorerRow], listed: bool) -> Result<Vec<Scorer>> {
        let gateway = rows
            .iter()
            .any(|row| row.serialized_scorer.contains("gateway:/"));
        let names = if gateway {
            self.store.gateway_endpoint_names().await?
        } else {
            HashMap::new()
        };
        Ok(rows
            .iter()
            .map(|row| {
                let mut message = row.to_message();
                if let Some(text) = resolve_gateway_model(&row.serialized_scorer, &names, listed) {
                    message.serialized_scorer = text;
                }
                message
            })
            .collect())
    }

    /// `POST /scorers/register`.
    pub async fn register_scorer(&self, request: RegisterScorer) -> Result<RegisterScorerResponse> {
        let experiment_id = required(request.experiment_id, "experiment_id")?;
        let name = required(request.name, "name")?;
        let serialized_scorer = required(request.serialized_scorer, "serialized_scorer")?;
        let serialized: Value = serde_json::from_str(&serialized_scorer)
            .map_err(|_| Error::invalid_parameter("serialized_scorer must be valid JSON"))?;
        if has_call_source(&serialized) && !self.custom_scorers {
            return Err(Error::invalid_parameter(CUSTOM_SCORER_REFUSED));
        }
        validate_third_party_data(&serialized)?;
        if name.trim().is_empty() {
            return Err(Error::invalid_parameter(
                "Scorer name cannot be empty or contain only whitespace.",
            ));
        }
        let experiment = self.active_experiment(&experiment_id).await?;
        validate_model(scorer_model(&serialized))?;
        let row = self
            .store
            .register_scorer(experiment, &name, &serialized_scorer, now_millis())
            .await?;
        Ok(RegisterScorerResponse {
            version: row.scorer_version,
            scorer_id: row.scorer_id,
            experiment_id: row.experiment_id.to_string(),
            name: row.scorer_name,
            serialized_scorer: row.serialized_scorer,
            creation_time: row.creation_time.unwrap_or(0),
        })
    }

    /// `GET /scorers/list`: the latest version of each scorer of one experiment, of the listed
    /// (active) experiments, or of every active experiment.
    pub async fn list_scorers(&self, request: ListScorers) -> Result<ScorersResponse> {
        let experiment_id = request.experiment_id.filter(|id| !id.is_empty());
        let experiments = match (experiment_id, request.experiment_ids) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_parameter(
                    "Cannot specify both 'experiment_id' and 'experiment_ids'. Use \
                     'experiment_ids' to scope the query to multiple experiments, or \
                     'experiment_id' to scope it to a single experiment.",
                ))
            }
            (None, Some(ids)) => {
                let mut numbers = Vec::with_capacity(ids.len());
                for id in &ids {
                    let number = id
                        .parse::<i64>()
                        .ok()
                        .filter(|_| !id.is_empty() && id.bytes().all(|byte| byte.is_ascii_digit()));
                    match number {
                        Some(number) => numbers.push(number),
                        None => {
                            return Err(Error::invalid_parameter(format!(
                                "Invalid experiment ID: '{id}'"
                            )))
                        }
                    }
                }
                numbers.sort_unstable();
                numbers.dedup();
                self.store.active_experiment_ids(Some(&numbers)).await?
            }
            (Some(id), None) => vec![self.active_experiment(&id).await?],
            (None, None) => self.store.active_experiment_ids(None).await?,
        };
        let rows = self.store.latest_scorers(&experiments).await?;
        Ok(ScorersResponse {
            scorers: self.messages(&rows, true).await?,
        })
    }

    /// The scorer's id, or MLflow's not-found error.
    async fn scorer(&self, experiment_id: &str, name: &str) -> Result<String> {
        let experiment = self.active_experiment(experiment_id).await?;
        self.store
            .scorer_id(experiment, name)
            .await?
            .ok_or_else(|| scorer_not_found(name, experiment_id))
    }

    /// `GET /scorers/versions`.
    pub async fn list_scorer_versions(
        &self,
        request: ListScorerVersions,
    ) -> Result<ScorersResponse> {
        let experiment_id = required(request.experiment_id, "experiment_id")?;
        let name = required(request.name, "name")?;
        let scorer_id = self.scorer(&experiment_id, &name).await?;
        let rows = self.store.scorer_versions(&scorer_id).await?;
        if rows.is_empty() {
            return Err(scorer_not_found(&name, &experiment_id));
        }
        Ok(ScorersResponse {
            scorers: self.messages(&rows, true).await?,
        })
    }

    /// `GET /scorers/get`: the version asked for, else the latest.
    pub async fn get_scorer(&self, request: ScorerVersionRequest) -> Result<GetScorerResponse> {
        let experiment_id = required(request.experiment_id, "experiment_id")?;
        let name = required(request.name, "name")?;
        let scorer_id = self.scorer(&experiment_id, &name).await?;
        let row = self
            .store
            .scorer_version(&scorer_id, request.version)
            .await?
            .ok_or_else(|| match request.version {
                Some(version) => version_not_found(&name, version, &experiment_id),
                None => scorer_not_found(&name, &experiment_id),
            })?;
        let mut messages = self.messages(std::slice::from_ref(&row), false).await?;
        Ok(GetScorerResponse {
            scorer: messages.remove(0),
        })
    }

    /// `DELETE /scorers/delete`: one version, or every version and the scorer.
    pub async fn delete_scorer(&self, request: ScorerVersionRequest) -> Result<Empty> {
        let experiment_id = required(request.experiment_id, "experiment_id")?;
        let name = required(request.name, "name")?;
        let experiment = self.active_experiment(&experiment_id).await?;
        match self
            .store
            .delete_scorer(experiment, &name, request.version)
            .await?
        {
            DeleteOutcome::Deleted => Ok(Empty {}),
            DeleteOutcome::NoScorer => Err(scorer_not_found(&name, &experiment_id)),
            DeleteOutcome::NoVersion => Err(match request.version {
                Some(version) => version_not_found(&name, version, &experiment_id),
                None => scorer_not_found(&name, &experiment_id),
            }),
        }
    }

    /// `GET /scorers/online-configs`: the configs of those scorers that have one.
    pub async fn online_configs(
        &self,
        request: GetOnlineScoringConfigs,
    ) -> Result<OnlineScoringConfigsResponse> {
        let scorer_ids = request
            .scorer_ids
            .filter(|ids| !ids.is_empty())
            .ok_or_else(|| Error::missing_parameter("scorer_ids"))?;
        let rows = self.store.online_configs(&scorer_ids).await?;
        Ok(OnlineScoringConfigsResponse {
            configs: rows
                .into_iter()
                .map(|row| OnlineScoringConfig {
                    online_scoring_config_id: row.online_scoring_config_id,
                    scorer_id: row.scorer_id,
                    sample_rate: row.sample_rate,
                    experiment_id: row.experiment_id.to_string(),
                    filter_string: row.filter_string,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn call_source_is_found_at_any_depth() {
        assert!(has_call_source(
            &json!({"name": "x", "call_source": "return 1"})
        ));
        assert!(has_call_source(
            &json!({"ensemble_scorer_data": {"scorers": [{"call_source": "x"}]}})
        ));
        assert!(!has_call_source(&json!({"name": "x", "call_source": null})));
        assert!(!has_call_source(
            &json!({"builtin_scorer_class": "Safety", "builtin_scorer_pydantic_data": {}})
        ));
    }

    #[test]
    fn custom_scorer_switch_reads_true_and_one() {
        assert!(custom_scorers_enabled(Some("true")));
        assert!(custom_scorers_enabled(Some("TRUE")));
        assert!(custom_scorers_enabled(Some("1")));
        assert!(!custom_scorers_enabled(Some("false")));
        assert!(!custom_scorers_enabled(Some("yes")));
        assert!(!custom_scorers_enabled(None));
    }

    #[test]
    fn third_party_kwargs_may_not_pick_a_destination() {
        let ok = json!({"third_party_scorer_data": {"kwargs": {"temperature": 0}}});
        assert!(validate_third_party_data(&ok).is_ok());
        let nested = json!({"ensemble": [{"third_party_scorer_data": {
            "kwargs": {"completion_kwargs": {"base_url": "x", "api_base": "y"}}}}]});
        let message = validate_third_party_data(&nested).unwrap_err().message;
        assert!(
            message.starts_with(
                "third_party_scorer_data.kwargs must not contain 'api_base', 'base_url':"
            ),
            "{message}"
        );
        let pairs = json!({"third_party_scorer_data": {"kwargs": {"o": [["fallbacks", 1]]}}});
        assert!(validate_third_party_data(&pairs).is_err());
        let list = json!({"third_party_scorer_data": {"kwargs": [1]}});
        assert_eq!(
            validate_third_party_data(&list).unwrap_err().message,
            "third_party_scorer_data.kwargs must be a JSON object, got list."
        );
    }

    #[test]
    fn gateway_models_read_as_endpoint_names() {
        let names = HashMap::from([("e-1".to_owned(), "chat".to_owned())]);
        let stored =
            r#"{"name":"j","builtin_scorer_pydantic_data":{"model":"gateway:/e-1","x":1}}"#;
        assert_eq!(
            resolve_gateway_model(stored, &names, false).as_deref(),
            Some(
                r#"{"name": "j", "builtin_scorer_pydantic_data": {"model": "gateway:/chat", "x": 1}}"#
            )
        );
        let gone = r#"{"memory_augmented_judge_data":{"base_judge":{"instructions_judge_pydantic_data":{"model":"gateway:/e-9"}}}}"#;
        assert_eq!(
            resolve_gateway_model(gone, &names, false).as_deref(),
            Some(
                r#"{"memory_augmented_judge_data": {"base_judge": {"instructions_judge_pydantic_data": {"model": null}}}}"#
            )
        );
        let plain = r#"{"name":"p","builtin_scorer_pydantic_data":{"model":"openai:/gpt-4o"}}"#;
        assert_eq!(resolve_gateway_model(plain, &names, false), None);
        assert_eq!(
            resolve_gateway_model(plain, &names, true).as_deref(),
            Some(r#"{"name": "p", "builtin_scorer_pydantic_data": {"model": "openai:/gpt-4o"}}"#)
        );
    }

    #[test]
    fn model_is_read_from_each_scorer_kind() {
        let builtin = json!({"builtin_scorer_pydantic_data": {"model": "openai:/gpt-4o"}});
        assert_eq!(scorer_model(&builtin), Some(&json!("openai:/gpt-4o")));
        let memory = json!({"memory_augmented_judge_data": {"base_judge":
            {"instructions_judge_pydantic_data": {"model": "m"}}}});
        assert_eq!(scorer_model(&memory), Some(&json!("m")));
        assert_eq!(scorer_model(&json!({"call_source": "x"})), None);
        assert!(validate_model(Some(&json!("  "))).is_err());
        assert!(validate_model(Some(&json!(3))).is_err());
        assert!(validate_model(Some(&json!("openai:/gpt-4o"))).is_ok());
    }
}
