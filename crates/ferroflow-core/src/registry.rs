//! The model registry (and the prompt registry built on it): the [`RegistryStore`] trait and the
//! [`RegistryService`] that validates each `/registered-models` and `/model-versions` request as MLflow
//! 3.17 does (`server/handlers.py` and `store/model_registry/sqlalchemy_store.py`), decides times and
//! drives the store.
//!
//! A registered model owns numbered versions (1, 2, ...). A new version is READY at once. Deleting a
//! version keeps its row with the stage `Deleted_Internal` and its fields redacted, so its number is never
//! reused; every read skips such rows. Prompts are registered models tagged `mlflow.prompt.is_prompt` =
//! `true`: searches leave them out unless the filter asks for them.
//!
//! A version made from a MLflow 3 logged model (`models:/m-...`) is stored with the model's artifact
//! location, which `get-download-uri` answers, and the logged model gets the tag `mlflow.modelVersions`
//! listing its registrations, as MLflow does.

use crate::error::{Error, Result};
use crate::ids::{decode_page_token, encode_page_token, now_millis};
use crate::logged_model_filter::python_repr;
use crate::logged_models::LoggedModelStore;
use crate::registry_filter::{
    is_querying_prompts, parse_model_version_filter, parse_model_version_order_by,
    parse_registered_model_filter, parse_registered_model_order_by, RegistryComparison,
    RegistryOrderBy, IS_PROMPT_TAG_KEY,
};
use crate::store::TrackingStore;
use crate::validation::{invalid_value, normalize_posix_path, validate_key, validate_length};
use crate::webhooks::{NoEvents, RegistryEvents, WebhookAction, WebhookEntity, WebhookEvent};
use async_trait::async_trait;
use ferroflow_proto::logged_models::LoggedModelTag;
use ferroflow_proto::registry::{
    CreateModelVersion, CreateRegisteredModel, DeleteModelVersionTag, DeleteRegisteredModelTag,
    GetLatestVersions, ModelVersion, ModelVersionDownloadUriResponse, ModelVersionKey,
    ModelVersionResponse, ModelVersionTag, ModelVersionsResponse, RegisteredModel,
    RegisteredModelAliasRequest, RegisteredModelName, RegisteredModelResponse, RegisteredModelTag,
    RenameRegisteredModel, SearchModelVersions, SearchRegisteredModels,
    SearchRegisteredModelsResponse, SetModelVersionTag, SetRegisteredModelTag,
    TransitionModelVersionStage, UpdateModelVersion, UpdateRegisteredModel,
};
use ferroflow_proto::tracking::{Empty, KeyValueInput};
use std::sync::Arc;

pub const DEFAULT_SEARCH_REGISTERED_MODELS_MAX_RESULTS: i64 = 100;
pub const MAX_SEARCH_REGISTERED_MODELS_MAX_RESULTS: i64 = 1000;
pub const DEFAULT_SEARCH_MODEL_VERSIONS_MAX_RESULTS: i64 = 200_000;
pub const MAX_SEARCH_MODEL_VERSIONS_MAX_RESULTS: i64 = 200_000;
pub const MAX_REGISTRY_TAG_KEY_LENGTH: usize = 250;
pub const MAX_REGISTRY_TAG_VALUE_LENGTH: usize = 100_000;
pub const MAX_ALIAS_LENGTH: usize = 255;

/// The stages a version can be in, in MLflow's order.
pub const ALL_STAGES: [&str; 4] = ["None", "Staging", "Production", "Archived"];
/// The stage of a deleted version's row.
pub const STAGE_DELETED_INTERNAL: &str = "Deleted_Internal";
/// The tag listing the registered versions made from a logged model.
pub const MODEL_VERSIONS_TAG: &str = "mlflow.modelVersions";
/// The tag holding a prompt's type (`text` or `chat`).
pub const PROMPT_TYPE_TAG_KEY: &str = "_mlflow_prompt_type";
/// The tag holding a prompt version's template.
pub const PROMPT_TEXT_TAG_KEY: &str = "mlflow.prompt.text";
/// The sources MLflow's own clients send for prompt versions; the server refuses any other.
pub const PROMPT_SOURCE_PLACEHOLDERS: [&str; 2] = ["dummy-source", "prompt-template"];

/// A new registered model with everything decided.
#[derive(Debug, Clone)]
pub struct NewRegisteredModel {
    pub name: String,
    pub description: String,
    /// Distinct keys.
    pub tags: Vec<RegisteredModelTag>,
    pub creation_time: i64,
}

/// A new model version; the store numbers it one past the model's highest version, deleted ones
/// included.
#[derive(Debug, Clone)]
pub struct NewModelVersion {
    pub name: String,
    pub source: String,
    /// What `get-download-uri` answers: the source, or the resolved location of a `models:/` source.
    pub storage_location: String,
    pub run_id: String,
    pub run_link: String,
    pub description: String,
    /// Distinct keys.
    pub tags: Vec<ModelVersionTag>,
    pub creation_time: i64,
}

/// The outcome of a rename.
#[derive(Debug, Clone)]
pub enum RenameOutcome {
    Renamed(RegisteredModel),
    NotFound,
    NameTaken,
}

/// A search of registered models or model versions, already parsed.
#[derive(Debug, Clone)]
pub struct RegistryQuery {
    pub filter: Vec<RegistryComparison>,
    pub order_by: Vec<RegistryOrderBy>,
    /// False leaves out prompts (rows whose model or version has `mlflow.prompt.is_prompt` = `true`),
    /// and the filter's own comparisons on that tag are then dropped, as MLflow does.
    pub include_prompts: bool,
    pub max_results: usize,
    pub offset: usize,
}

/// One page of a search and whether more follow.
#[derive(Debug, Clone)]
pub struct RegistryPage<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

/// Registered models, their versions, tags and aliases, in MLflow's tables. Versions in the stage
/// `Deleted_Internal` are invisible to every read.
#[async_trait]
pub trait RegistryStore: Send + Sync + 'static {
    /// `None` when the name is taken.
    async fn create_registered_model(
        &self,
        model: NewRegisteredModel,
    ) -> Result<Option<RegisteredModel>>;
    /// The model with its tags, aliases and latest version per stage.
    async fn get_registered_model(&self, name: &str) -> Result<Option<RegisteredModel>>;
    async fn update_registered_model(
        &self,
        name: &str,
        description: &str,
        now: i64,
    ) -> Result<Option<RegisteredModel>>;
    /// Renames the model and its versions, tags and aliases in one transaction.
    async fn rename_registered_model(
        &self,
        name: &str,
        new_name: &str,
        now: i64,
    ) -> Result<RenameOutcome>;
    /// Deletes the model with its versions, tags and aliases; false when there is none.
    async fn delete_registered_model(&self, name: &str) -> Result<bool>;
    async fn search_registered_models(
        &self,
        query: RegistryQuery,
    ) -> Result<RegistryPage<RegisteredModel>>;
    /// Upserts; false when there is no such model.
    async fn set_registered_model_tag(&self, name: &str, tag: RegisteredModelTag) -> Result<bool>;
    /// False when there is no such model; a missing tag is no error.
    async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<bool>;

    /// `None` when there is no such model. Also sets the model's `last_updated_time`.
    async fn create_model_version(&self, version: NewModelVersion) -> Result<Option<ModelVersion>>;
    /// The version with its tags and aliases.
    async fn get_model_version(&self, name: &str, version: i64) -> Result<Option<ModelVersion>>;
    /// The stored location of the version (its `storage_location`, else its `source`).
    async fn get_model_version_download_uri(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<String>>;
    /// Sets the description (`None` clears it).
    async fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: Option<&str>,
        now: i64,
    ) -> Result<Option<ModelVersion>>;
    /// Moves the version to `stage` (canonical), and with `archive_existing` the model's other versions
    /// in that stage to `Archived`, in one transaction.
    async fn transition_model_version_stage(
        &self,
        name: &str,
        version: i64,
        stage: &str,
        archive_existing: bool,
        now: i64,
    ) -> Result<Option<ModelVersion>>;
    /// Marks the version deleted and redacts it, removing its aliases; false when there is none.
    async fn delete_model_version(&self, name: &str, version: i64, now: i64) -> Result<bool>;
    async fn search_model_versions(
        &self,
        query: RegistryQuery,
    ) -> Result<RegistryPage<ModelVersion>>;
    /// Upserts; false when there is no such version.
    async fn set_model_version_tag(
        &self,
        name: &str,
        version: i64,
        tag: ModelVersionTag,
    ) -> Result<bool>;
    /// False when there is no such version; a missing tag is no error.
    async fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<bool>;

    /// Points the alias at the version (upsert); false when there is no such version.
    async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: i64,
    ) -> Result<bool>;
    /// False when there is no such model; a missing alias is no error.
    async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<bool>;
    /// The version the alias points to.
    async fn get_registered_model_alias(&self, name: &str, alias: &str) -> Result<Option<i64>>;
}

#[derive(Clone)]
pub struct RegistryService {
    store: Arc<dyn RegistryStore>,
    tracking: Arc<dyn TrackingStore>,
    logged_models: Arc<dyn LoggedModelStore>,
    /// The server's own artifact roots: a version source may name their hosts.
    trusted_artifact_roots: Vec<String>,
    /// Where registry events go (webhooks).
    events: Arc<dyn RegistryEvents>,
}

fn required(value: Option<String>, name: &str) -> Result<String> {
    match value {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(Error::missing_parameter(name)),
    }
}

fn model_not_found(name: &str) -> Error {
    Error::not_found(format!("Registered Model with name={name} not found"))
}

fn version_not_found(name: &str, version: i64) -> Error {
    Error::not_found(format!(
        "Model Version (name={name}, version={version}) not found"
    ))
}

fn path_not_unique(name: &str) -> bool {
    let normalized = normalize_posix_path(name);
    normalized != name
        || normalized == "."
        || normalized.starts_with("..")
        || normalized.starts_with('/')
}

/// MLflow's `_validate_model_name`.
pub fn validate_model_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid_parameter(
            "Missing value for required parameter 'name'.",
        ));
    }
    if name.contains(['/', ':']) {
        return Err(Error::invalid_parameter(format!(
            "Invalid model name '{name}'. Names cannot contain '/' or ':'."
        )));
    }
    if path_not_unique(name) {
        let message = format!(
            "Names may be treated as files in certain cases, and must not resolve to other names when \
             treated as such. This name would resolve to '{}'",
            normalize_posix_path(name)
        );
        return Err(Error::invalid_parameter(invalid_value(
            "name",
            name,
            Some(&message),
        )));
    }
    Ok(())
}

/// MLflow's `_validate_model_version`: the version is an integer.
pub fn parse_version(version: &str) -> Result<i64> {
    version.trim().parse::<i64>().map_err(|_| {
        Error::invalid_parameter(format!(
            "Parameter 'version' must be an integer, got '{version}'."
        ))
    })
}

/// MLflow's `_validate_model_alias_name`.
pub fn validate_alias(alias: &str) -> Result<()> {
    if alias.is_empty() {
        return Err(Error::invalid_parameter(
            "Registered model alias name cannot be empty.",
        ));
    }
    if !alias
        .chars()
        .all(|character| character.is_alphanumeric() || character == '_' || character == '-')
    {
        return Err(Error::invalid_parameter(format!(
            "Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and \
             dashes (-)."
        )));
    }
    validate_length("Registered model alias name", MAX_ALIAS_LENGTH, alias)
}

/// MLflow's `_validate_model_alias_name_reserved`: `latest` (any case) and `v<digits>` are reserved.
pub fn validate_alias_not_reserved(alias: &str) -> Result<()> {
    if alias.eq_ignore_ascii_case("latest") {
        return Err(Error::invalid_parameter(
            "'latest' alias name (case insensitive) is reserved.",
        ));
    }
    let mut characters = alias.chars();
    if matches!(characters.next(), Some('v' | 'V'))
        && alias.len() > 1
        && characters.all(|character| character.is_ascii_digit())
    {
        return Err(Error::invalid_parameter(format!(
            "Version alias name '{alias}' is reserved."
        )));
    }
    Ok(())
}

/// MLflow's `get_canonical_stage`: a stage name in any case, written canonically.
pub fn canonical_stage(stage: &str) -> Result<&'static str> {
    ALL_STAGES
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(stage))
        .ok_or_else(|| {
            Error::invalid_parameter(format!(
                "Invalid Model Version stage: {stage}. Value must be one of {}.",
                ALL_STAGES.join(", ")
            ))
        })
}

fn validate_tag(key: &str, value: &str, prompt_text_check: bool) -> Result<()> {
    validate_key(key, "key")?;
    validate_length("key", MAX_REGISTRY_TAG_KEY_LENGTH, key)?;
    if prompt_text_check
        && key == PROMPT_TEXT_TAG_KEY
        && value.chars().count() > MAX_REGISTRY_TAG_VALUE_LENGTH
    {
        return Err(Error::invalid_parameter(format!(
            "Prompt text exceeds max length of {MAX_REGISTRY_TAG_VALUE_LENGTH} characters."
        )));
    }
    validate_length("value", MAX_REGISTRY_TAG_VALUE_LENGTH, value)
}

/// Tags as MLflow keeps them: of a key given twice the last value wins, in first-seen order.
fn distinct_tags(inputs: Vec<KeyValueInput>) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for input in inputs {
        let key = input.key.unwrap_or_default();
        let value = input.value.unwrap_or_default();
        match tags.iter_mut().find(|(existing, _)| *existing == key) {
            Some(existing) => existing.1 = value,
            None => tags.push((key, value)),
        }
    }
    tags
}

fn is_prompt_tags(tags: &[(String, String)]) -> bool {
    tags.iter()
        .find(|(key, _)| key == IS_PROMPT_TAG_KEY)
        .is_some_and(|(_, value)| value.eq_ignore_ascii_case("true"))
}

fn page_size(max_results: Option<i64>, default: i64, max: i64) -> Result<usize> {
    let max_results = max_results.unwrap_or(default);
    if max_results > max {
        // The searches are GET routes, so the value arrived as a string.
        return Err(Error::invalid_parameter(format!(
            "Invalid value \"{max_results}\" for parameter 'max_results' supplied:  Hint: Value was of \
             type 'str'. See the API docs for more information about request parameters."
        )));
    }
    if max_results < 1 {
        return Err(Error::invalid_parameter(format!(
            "Invalid value for max_results. It must be a positive integer, but got {max_results}"
        )));
    }
    usize::try_from(max_results).map_err(|_| Error::invalid_parameter("invalid max_results"))
}

impl RegistryService {
    pub fn new(
        store: Arc<dyn RegistryStore>,
        tracking: Arc<dyn TrackingStore>,
        logged_models: Arc<dyn LoggedModelStore>,
    ) -> Self {
        Self {
            store,
            tracking,
            logged_models,
            trusted_artifact_roots: Vec::new(),
            events: Arc::new(NoEvents),
        }
    }

    /// Sends registry events (model version created, alias set, ...) to `events`.
    pub fn with_events(mut self, events: Arc<dyn RegistryEvents>) -> Self {
        self.events = events;
        self
    }

    fn emit(&self, entity: WebhookEntity, action: WebhookAction, payload: serde_json::Value) {
        if let Ok(event) = WebhookEvent::new(entity, action) {
            self.events.emit(event, payload);
        }
    }

    /// Whether the model is a prompt (MLflow's `_is_prompt`), for choosing the event to send.
    async fn is_prompt(&self, name: &str) -> Result<bool> {
        Ok(self
            .store
            .get_registered_model(name)
            .await?
            .and_then(|model| model.tag(IS_PROMPT_TAG_KEY).map(str::to_lowercase))
            .is_some_and(|value| value == "true"))
    }

    /// Sets the server's artifact roots (`--default-artifact-root`, `--artifacts-destination`), whose hosts
    /// a model version source may name although its scheme addresses a host.
    pub fn with_trusted_artifact_roots(mut self, roots: Vec<String>) -> Self {
        self.trusted_artifact_roots = roots;
        self
    }

    pub fn store(&self) -> &Arc<dyn RegistryStore> {
        &self.store
    }

    async fn registered_model(&self, name: &str) -> Result<RegisteredModel> {
        validate_model_name(name)?;
        self.store
            .get_registered_model(name)
            .await?
            .ok_or_else(|| model_not_found(name))
    }

    async fn model_version(&self, name: &str, version: i64) -> Result<ModelVersion> {
        self.store
            .get_model_version(name, version)
            .await?
            .ok_or_else(|| version_not_found(name, version))
    }

    /// `POST /registered-models/create`.
    pub async fn create_registered_model(
        &self,
        request: CreateRegisteredModel,
    ) -> Result<RegisteredModelResponse> {
        let name = required(request.name, "name")?;
        validate_model_name(&name)?;
        let tags = distinct_tags(request.tags);
        for (key, value) in &tags {
            validate_tag(key, value, false)?;
        }
        let new_is_prompt = tags.iter().any(|(key, _)| key == IS_PROMPT_TAG_KEY);
        let is_prompt_request = is_prompt_tags(&tags);
        let description = request.description.clone().unwrap_or_default();
        let event_tags: serde_json::Map<String, serde_json::Value> = tags
            .iter()
            .filter(|(key, _)| {
                !is_prompt_request || (key != IS_PROMPT_TAG_KEY && key != PROMPT_TYPE_TAG_KEY)
            })
            .map(|(key, value)| (key.clone(), serde_json::Value::String(value.clone())))
            .collect();
        let created = self
            .store
            .create_registered_model(NewRegisteredModel {
                name: name.clone(),
                description: request.description.unwrap_or_default(),
                tags: tags
                    .into_iter()
                    .map(|(key, value)| RegisteredModelTag { key, value })
                    .collect(),
                creation_time: now_millis(),
            })
            .await?;
        match created {
            Some(registered_model) => {
                let entity = if is_prompt_request {
                    WebhookEntity::Prompt
                } else {
                    WebhookEntity::RegisteredModel
                };
                self.emit(
                    entity,
                    WebhookAction::Created,
                    serde_json::json!({"name": name, "tags": event_tags, "description": description}),
                );
                Ok(RegisteredModelResponse { registered_model })
            }
            None => {
                let existing_is_prompt = self
                    .store
                    .get_registered_model(&name)
                    .await?
                    .is_some_and(|model| model.tag(IS_PROMPT_TAG_KEY).is_some());
                let entity = |prompt: bool| if prompt { "Prompt" } else { "Registered Model" };
                let (old, new) = (entity(existing_is_prompt), entity(new_is_prompt));
                if old != new {
                    return Err(Error::already_exists(format!(
                        "Tried to create a {} with name {}, but the name is already taken by a {}. \
                         MLflow does not allow creating a model and a prompt with the same name.",
                        new.to_lowercase(),
                        python_repr(&name),
                        old.to_lowercase()
                    )));
                }
                Err(Error::already_exists(format!(
                    "{new} (name={name}) already exists."
                )))
            }
        }
    }

    /// `GET /registered-models/get`.
    pub async fn get_registered_model(
        &self,
        request: RegisteredModelName,
    ) -> Result<RegisteredModelResponse> {
        let name = required(request.name, "name")?;
        Ok(RegisteredModelResponse {
            registered_model: self.registered_model(&name).await?,
        })
    }

    /// `PATCH /registered-models/update`.
    pub async fn update_registered_model(
        &self,
        request: UpdateRegisteredModel,
    ) -> Result<RegisteredModelResponse> {
        let name = required(request.name, "name")?;
        validate_model_name(&name)?;
        let registered_model = self
            .store
            .update_registered_model(
                &name,
                request.description.as_deref().unwrap_or(""),
                now_millis(),
            )
            .await?
            .ok_or_else(|| model_not_found(&name))?;
        Ok(RegisteredModelResponse { registered_model })
    }

    /// `POST /registered-models/rename`.
    pub async fn rename_registered_model(
        &self,
        request: RenameRegisteredModel,
    ) -> Result<RegisteredModelResponse> {
        let name = required(request.name, "name")?;
        let new_name = required(request.new_name, "new_name")?;
        if new_name.trim().is_empty() {
            return Err(Error::invalid_parameter(
                "Missing value for required parameter 'new_name'.",
            ));
        }
        validate_model_name(&new_name)?;
        validate_model_name(&name)?;
        match self
            .store
            .rename_registered_model(&name, &new_name, now_millis())
            .await?
        {
            RenameOutcome::Renamed(registered_model) => {
                Ok(RegisteredModelResponse { registered_model })
            }
            RenameOutcome::NotFound => Err(model_not_found(&name)),
            RenameOutcome::NameTaken => Err(Error::already_exists(format!(
                "Registered Model (name={new_name}) already exists."
            ))),
        }
    }

    /// `DELETE /registered-models/delete`.
    pub async fn delete_registered_model(&self, request: RegisteredModelName) -> Result<Empty> {
        let name = required(request.name, "name")?;
        validate_model_name(&name)?;
        if !self.store.delete_registered_model(&name).await? {
            return Err(model_not_found(&name));
        }
        Ok(Empty {})
    }

    /// `GET /registered-models/search`.
    pub async fn search_registered_models(
        &self,
        request: SearchRegisteredModels,
    ) -> Result<SearchRegisteredModelsResponse> {
        let max_results = page_size(
            request.max_results,
            DEFAULT_SEARCH_REGISTERED_MODELS_MAX_RESULTS,
            MAX_SEARCH_REGISTERED_MODELS_MAX_RESULTS,
        )?;
        let filter = parse_registered_model_filter(request.filter.as_deref().unwrap_or(""))?;
        let order_by = parse_registered_model_order_by(&request.order_by)?;
        let offset = decode_page_token(request.page_token.as_deref())?;
        let include_prompts = is_querying_prompts(&filter);
        let page = self
            .store
            .search_registered_models(RegistryQuery {
                filter,
                order_by,
                include_prompts,
                max_results,
                offset,
            })
            .await?;
        Ok(SearchRegisteredModelsResponse {
            registered_models: page.items,
            next_page_token: page
                .has_more
                .then(|| encode_page_token(offset + max_results)),
        })
    }

    /// `POST /registered-models/get-latest-versions`: the latest version of each requested stage (all
    /// stages when none is named), with their aliases.
    pub async fn get_latest_versions(
        &self,
        request: GetLatestVersions,
    ) -> Result<ModelVersionsResponse> {
        let name = required(request.name, "name")?;
        let stages: Vec<&str> = if request.stages.is_empty() {
            ALL_STAGES.to_vec()
        } else {
            request
                .stages
                .iter()
                .map(|stage| canonical_stage(stage))
                .collect::<Result<_>>()?
        };
        let model = self.registered_model(&name).await?;
        let versions = latest_with_aliases(&model)
            .into_iter()
            .filter(|version| {
                version
                    .current_stage
                    .as_deref()
                    .is_some_and(|stage| stages.contains(&stage))
            })
            .collect();
        Ok(ModelVersionsResponse {
            model_versions: versions,
            next_page_token: None,
        })
    }

    /// `POST /registered-models/set-tag`.
    pub async fn set_registered_model_tag(&self, request: SetRegisteredModelTag) -> Result<Empty> {
        let name = required(request.name, "name")?;
        let key = required(request.key, "key")?;
        let value = request.value.unwrap_or_default();
        validate_model_name(&name)?;
        validate_tag(&key, &value, false)?;
        if !self
            .store
            .set_registered_model_tag(
                &name,
                RegisteredModelTag {
                    key: key.clone(),
                    value: value.clone(),
                },
            )
            .await?
        {
            return Err(model_not_found(&name));
        }
        if self.is_prompt(&name).await? {
            self.emit(
                WebhookEntity::PromptTag,
                WebhookAction::Set,
                serde_json::json!({"name": name, "key": key, "value": value}),
            );
        }
        Ok(Empty {})
    }

    /// `DELETE /registered-models/delete-tag`.
    pub async fn delete_registered_model_tag(
        &self,
        request: DeleteRegisteredModelTag,
    ) -> Result<Empty> {
        let name = required(request.name, "name")?;
        let key = required(request.key, "key")?;
        validate_model_name(&name)?;
        validate_key(&key, "key")?;
        if !self.store.delete_registered_model_tag(&name, &key).await? {
            return Err(model_not_found(&name));
        }
        if self.is_prompt(&name).await? {
            self.emit(
                WebhookEntity::PromptTag,
                WebhookAction::Deleted,
                serde_json::json!({"name": name, "key": key}),
            );
        }
        Ok(Empty {})
    }

    /// `POST /registered-models/alias`.
    pub async fn set_registered_model_alias(
        &self,
        request: RegisteredModelAliasRequest,
    ) -> Result<Empty> {
        let name = required(request.name, "name")?;
        let alias = required(request.alias, "alias")?;
        let version = required(request.version, "version")?;
        validate_model_name(&name)?;
        validate_alias(&alias)?;
        validate_alias_not_reserved(&alias)?;
        let version = parse_version(&version)?;
        if !self
            .store
            .set_registered_model_alias(&name, &alias, version)
            .await?
        {
            return Err(version_not_found(&name, version));
        }
        let entity = if self.is_prompt(&name).await? {
            WebhookEntity::PromptAlias
        } else {
            WebhookEntity::ModelVersionAlias
        };
        self.emit(
            entity,
            WebhookAction::Created,
            serde_json::json!({"name": name, "alias": alias, "version": version.to_string()}),
        );
        Ok(Empty {})
    }

    /// `DELETE /registered-models/alias`.
    pub async fn delete_registered_model_alias(
        &self,
        request: RegisteredModelAliasRequest,
    ) -> Result<Empty> {
        let name = required(request.name, "name")?;
        let alias = required(request.alias, "alias")?;
        validate_model_name(&name)?;
        validate_alias(&alias)?;
        if !self
            .store
            .delete_registered_model_alias(&name, &alias)
            .await?
        {
            return Err(model_not_found(&name));
        }
        let entity = if self.is_prompt(&name).await? {
            WebhookEntity::PromptAlias
        } else {
            WebhookEntity::ModelVersionAlias
        };
        self.emit(
            entity,
            WebhookAction::Deleted,
            serde_json::json!({"name": name, "alias": alias}),
        );
        Ok(Empty {})
    }

    /// `GET /registered-models/alias`: `latest` (any case) is the highest live version.
    pub async fn get_model_version_by_alias(
        &self,
        request: RegisteredModelAliasRequest,
    ) -> Result<ModelVersionResponse> {
        let name = required(request.name, "name")?;
        let alias = required(request.alias, "alias")?;
        validate_model_name(&name)?;
        validate_alias(&alias)?;
        let model = self.registered_model(&name).await?;
        if alias.eq_ignore_ascii_case("latest") {
            let latest = latest_with_aliases(&model)
                .into_iter()
                .max_by_key(ModelVersion::version_number)
                .ok_or_else(|| {
                    Error::not_found(format!("Latest version not found for model {name}."))
                })?;
            return Ok(ModelVersionResponse {
                model_version: latest,
            });
        }
        let version = self
            .store
            .get_registered_model_alias(&name, &alias)
            .await?
            .ok_or_else(|| {
                Error::invalid_parameter(format!("Registered model alias {alias} not found."))
            })?;
        Ok(ModelVersionResponse {
            model_version: self.model_version(&name, version).await?,
        })
    }

    /// `POST /model-versions/create`.
    pub async fn create_model_version(
        &self,
        request: CreateModelVersion,
    ) -> Result<ModelVersionResponse> {
        let name = required(request.name, "name")?;
        let source = required(request.source, "source")?;
        let tags = distinct_tags(request.tags);
        let is_prompt = is_prompt_tags(&tags);
        if is_prompt && !PROMPT_SOURCE_PLACEHOLDERS.contains(&source.as_str()) {
            return Err(Error::invalid_parameter(format!(
                "Invalid prompt source: '{source}'. Prompt sources must use an MLflow placeholder."
            )));
        }
        if let Some(scheme) = rejected_host_scheme(&source, &self.trusted_artifact_roots) {
            return Err(Error::invalid_parameter(format!(
                "'source' cannot use the '{scheme}' scheme: the '{scheme}' scheme addresses a host other \
                 than the tracking server's configured artifact storage, so the server would connect to \
                 the host named in the URI. Set the MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES \
                 environment variable on the server to allow it."
            )));
        }
        let has_run_id = request.run_id.is_some();
        let has_model_id = request.model_id.is_some();
        let mut run_id = request.run_id.unwrap_or_default();
        let mut model_id = request.model_id.unwrap_or_default();
        let mut source = source;
        let mut storage_location = source.clone();
        if !is_prompt {
            let lineage = self
                .resolve_source_lineage(&source, &run_id, &model_id, has_run_id, has_model_id)
                .await?;
            source = lineage.source;
            run_id = lineage.run_id;
            model_id = lineage.model_id;
            if let Some(location) = lineage.storage_location {
                storage_location = location;
            }
            if model_id.is_empty() {
                self.validate_source_run(&source, &run_id).await?;
            } else {
                self.validate_source_model(&source, &model_id).await?;
            }
        }
        validate_model_name(&name)?;
        for (key, value) in &tags {
            validate_tag(key, value, true)?;
        }
        // A `models:/m-...` source is stored with the logged model's location and run.
        let logged_model_source = parse_models_uri(&source).and_then(|parsed| match parsed {
            ModelsUri::LoggedModel(id) => Some(id),
            ModelsUri::Version { .. }
            | ModelsUri::Alias { .. }
            | ModelsUri::Stage { .. }
            | ModelsUri::Latest { .. } => None,
        });
        if let Some(source_model_id) = &logged_model_source {
            let model = self
                .logged_models
                .get_logged_model(source_model_id, false)
                .await?
                .ok_or_else(|| {
                    Error::invalid_parameter(format!(
                        "Unable to fetch model from model URI source artifact location '{source}'.\
                         Error: Logged model with ID '{source_model_id}' not found."
                    ))
                })?;
            storage_location = model.info.artifact_uri;
            if run_id.is_empty() {
                run_id = model.info.source_run_id.unwrap_or_default();
            }
        }
        if run_id.is_empty() && !model_id.is_empty() {
            if let Some(model) = self
                .logged_models
                .get_logged_model(&model_id, false)
                .await?
            {
                run_id = model.info.source_run_id.unwrap_or_default();
            }
        }
        let description = request.description.unwrap_or_default();
        let event_source = source.clone();
        let event_run_id = run_id.clone();
        let event_tags = tags.clone();
        let model_version = self
            .store
            .create_model_version(NewModelVersion {
                name: name.clone(),
                source,
                storage_location,
                run_id,
                run_link: request.run_link.unwrap_or_default(),
                description: description.clone(),
                tags: tags
                    .into_iter()
                    .map(|(key, value)| ModelVersionTag { key, value })
                    .collect(),
                creation_time: now_millis(),
            })
            .await?
            .ok_or_else(|| model_not_found(&name))?;
        if !is_prompt && !model_id.is_empty() {
            self.tag_logged_model(&model_id, &name, model_version.version_number())
                .await?;
        }
        let description = (!description.is_empty()).then_some(description);
        if is_prompt {
            let mut template = None;
            let mut prompt_tags = serde_json::Map::new();
            for (key, value) in event_tags {
                if key == PROMPT_TEXT_TAG_KEY {
                    template = Some(value);
                } else if key != IS_PROMPT_TAG_KEY && key != PROMPT_TYPE_TAG_KEY {
                    prompt_tags.insert(key, serde_json::Value::String(value));
                }
            }
            self.emit(
                WebhookEntity::PromptVersion,
                WebhookAction::Created,
                serde_json::json!({"name": name, "version": model_version.version,
                    "template": template, "tags": prompt_tags, "description": description}),
            );
        } else {
            let tags: serde_json::Map<String, serde_json::Value> = event_tags
                .into_iter()
                .map(|(key, value)| (key, serde_json::Value::String(value)))
                .collect();
            self.emit(
                WebhookEntity::ModelVersion,
                WebhookAction::Created,
                serde_json::json!({"name": name, "version": model_version.version,
                    "source": event_source, "run_id": (!event_run_id.is_empty()).then_some(event_run_id),
                    "tags": tags, "description": description}),
            );
        }
        Ok(ModelVersionResponse { model_version })
    }

    /// Adds `{"name", "version"}` to the logged model's `mlflow.modelVersions` tag, as MLflow's
    /// `set_model_versions_tags` does.
    async fn tag_logged_model(&self, model_id: &str, name: &str, version: i64) -> Result<()> {
        let Some(model) = self.logged_models.get_logged_model(model_id, true).await? else {
            return Err(Error::not_found(format!(
                "Logged model with ID '{model_id}' not found."
            )));
        };
        let entry = serde_json::json!({"name": name, "version": version});
        let mut entries: Vec<serde_json::Value> = model
            .info
            .tags
            .iter()
            .find(|tag| tag.key == MODEL_VERSIONS_TAG)
            .and_then(|tag| serde_json::from_str(&tag.value).ok())
            .unwrap_or_default();
        if !entries.contains(&entry) {
            entries.push(entry);
        }
        let value = format!(
            "[{}]",
            entries
                .iter()
                .map(python_json)
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.logged_models
            .set_logged_model_tags(
                model_id,
                vec![LoggedModelTag {
                    key: MODEL_VERSIONS_TAG.to_owned(),
                    value,
                }],
            )
            .await?;
        Ok(())
    }

    /// MLflow's `_resolve_registered_model_source_lineage`: a `models:/<name>/<version>` (or `@alias`)
    /// source is rewritten to its canonical form and inherits the version's run and stored location.
    async fn resolve_source_lineage(
        &self,
        source: &str,
        run_id: &str,
        model_id: &str,
        has_run_id: bool,
        has_model_id: bool,
    ) -> Result<Lineage> {
        let unchanged = || Lineage {
            source: source.to_owned(),
            run_id: run_id.to_owned(),
            model_id: model_id.to_owned(),
            storage_location: None,
        };
        let Some(rest) = source.strip_prefix("models:") else {
            return Ok(unchanged());
        };
        if rest.starts_with("//") {
            return Err(Error::invalid_parameter(format!(
                "Invalid model version source: '{source}'. Registered model sources must use the active \
                 model registry."
            )));
        }
        let parsed =
            parse_models_uri(source).ok_or_else(|| invalid_source_id(source, "model_id"))?;
        let source_name = match &parsed {
            ModelsUri::LoggedModel(_) => return Ok(unchanged()),
            ModelsUri::Version { name, .. }
            | ModelsUri::Alias { name, .. }
            | ModelsUri::Stage { name, .. }
            | ModelsUri::Latest { name } => name.clone(),
        };
        let source_model = self.registered_model(&source_name).await?;
        if source_model
            .tag(IS_PROMPT_TAG_KEY)
            .is_some_and(|value| value.eq_ignore_ascii_case("true"))
        {
            return Err(Error::invalid_parameter(format!(
                "Invalid model version source: '{source}'. Prompt versions cannot be used as model \
                 version sources."
            )));
        }
        let latest_of = |stage: Option<&str>| -> Result<i64> {
            let stage = stage.map(canonical_stage).transpose()?;
            source_model
                .latest_versions
                .iter()
                .filter(|version| stage.is_none() || version.current_stage.as_deref() == stage)
                .map(ModelVersion::version_number)
                .max()
                .ok_or_else(|| {
                    let stage_text = stage
                        .map(|stage| format!(" and stage '{stage}'"))
                        .unwrap_or_default();
                    Error::not_found(format!(
                        "No versions of model with name '{source_name}'{stage_text} found"
                    ))
                })
        };
        let version = match parsed {
            ModelsUri::LoggedModel(_) => return Ok(unchanged()),
            ModelsUri::Version { version, .. } => version,
            ModelsUri::Alias { alias, .. } if alias.eq_ignore_ascii_case("latest") => {
                latest_of(None)?
            }
            ModelsUri::Alias { alias, .. } => self
                .store
                .get_registered_model_alias(&source_name, &alias)
                .await?
                .ok_or_else(|| {
                    Error::invalid_parameter(format!("Registered model alias {alias} not found."))
                })?,
            ModelsUri::Stage { stage, .. } => latest_of(Some(&stage))?,
            ModelsUri::Latest { .. } => latest_of(None)?,
        };
        let source_version = self.model_version(&source_name, version).await?;
        let version_run_id = source_version.run_id.clone().unwrap_or_default();
        if has_run_id && run_id != version_run_id || has_model_id && !model_id.is_empty() {
            return Err(Error::invalid_parameter(format!(
                "Invalid model version source: '{source}'. The run_id and model_id request parameters \
                 must match the referenced model version."
            )));
        }
        let storage_location = self
            .store
            .get_model_version_download_uri(&source_name, version)
            .await?;
        Ok(Lineage {
            source: format!("models:/{source_name}/{version}"),
            run_id: if has_run_id {
                run_id.to_owned()
            } else {
                version_run_id
            },
            model_id: model_id.to_owned(),
            storage_location,
        })
    }

    /// MLflow's `_validate_source_run`.
    async fn validate_source_run(&self, source: &str, run_id: &str) -> Result<()> {
        if is_local_uri(source) {
            if !run_id.is_empty() {
                let run = self
                    .tracking
                    .get_run_info(run_id)
                    .await?
                    .ok_or_else(|| invalid_source_id(source, "run_id"))?;
                if is_local_uri(&run.artifact_uri) && local_path_within(source, &run.artifact_uri) {
                    return Ok(());
                }
            }
            return Err(Error::invalid_parameter(format!(
                "Invalid model version source: '{source}'. To use a local path as a model version source, \
                 the run_id request parameter has to be specified and the local path has to be contained \
                 within the artifact directory of the run specified by the run_id."
            )));
        }
        validate_no_relative_paths(source)?;
        let (scheme, authority, _) = uri_parts(source);
        if scheme == "runs" {
            if !authority.is_empty() {
                return Err(invalid_source_id(source, "run_id"));
            }
            let source_run_id = source
                .strip_prefix("runs:/")
                .and_then(|rest| rest.split('/').next())
                .unwrap_or("");
            if !run_id.is_empty() && source_run_id == run_id {
                return Ok(());
            }
            return Err(invalid_source_id(source, "run_id"));
        }
        if scheme == "models" {
            if !authority.is_empty() {
                return Err(invalid_source_id(source, "model_id"));
            }
            if matches!(
                parse_models_uri(source),
                Some(ModelsUri::LoggedModel(_)) | None
            ) {
                return Err(invalid_source_id(source, "model_id"));
            }
        }
        if is_mlflow_artifact_source(source) {
            if !run_id.is_empty() {
                let run = self
                    .tracking
                    .get_run_info(run_id)
                    .await?
                    .ok_or_else(|| invalid_source_id(source, "run_id"))?;
                if uri_within_root(source, &run.artifact_uri) {
                    return Ok(());
                }
            }
            return Err(invalid_source_id(source, "run_id"));
        }
        Ok(())
    }

    /// MLflow's `_validate_source_model`.
    async fn validate_source_model(&self, source: &str, model_id: &str) -> Result<()> {
        if is_local_uri(source) {
            if let Some(model) = self.logged_models.get_logged_model(model_id, false).await? {
                if is_local_uri(&model.info.artifact_uri)
                    && local_path_within(source, &model.info.artifact_uri)
                {
                    return Ok(());
                }
            }
            return Err(Error::invalid_parameter(format!(
                "Invalid model version source: '{source}'. To use a local path as a model version source, \
                 the model_id request parameter has to be specified and the local path has to be \
                 contained within the artifact directory of the run specified by the model_id."
            )));
        }
        validate_no_relative_paths(source)?;
        let (scheme, authority, _) = uri_parts(source);
        if scheme == "models" {
            if !authority.is_empty() {
                return Err(invalid_source_id(source, "model_id"));
            }
            match parse_models_uri(source) {
                Some(ModelsUri::LoggedModel(source_model_id)) => {
                    if source_model_id == model_id {
                        return Ok(());
                    }
                    return Err(invalid_source_id(source, "model_id"));
                }
                Some(_) => {}
                None => return Err(invalid_source_id(source, "model_id")),
            }
        }
        if scheme == "runs" {
            return Err(invalid_source_id(source, "model_id"));
        }
        if is_mlflow_artifact_source(source) {
            if let Some(model) = self.logged_models.get_logged_model(model_id, false).await? {
                if uri_within_root(source, &model.info.artifact_uri) {
                    return Ok(());
                }
            }
            return Err(invalid_source_id(source, "model_id"));
        }
        Ok(())
    }

    /// `GET /model-versions/get`.
    pub async fn get_model_version(
        &self,
        request: ModelVersionKey,
    ) -> Result<ModelVersionResponse> {
        let (name, version) = name_and_version(request.name, request.version)?;
        Ok(ModelVersionResponse {
            model_version: self.model_version(&name, version).await?,
        })
    }

    /// `PATCH /model-versions/update`: an absent description clears it, as MLflow does.
    pub async fn update_model_version(
        &self,
        request: UpdateModelVersion,
    ) -> Result<ModelVersionResponse> {
        let (name, version) = name_and_version(request.name, request.version)?;
        let model_version = self
            .store
            .update_model_version(&name, version, request.description.as_deref(), now_millis())
            .await?
            .ok_or_else(|| version_not_found(&name, version))?;
        Ok(ModelVersionResponse { model_version })
    }

    /// `POST /model-versions/transition-stage`.
    pub async fn transition_model_version_stage(
        &self,
        request: TransitionModelVersionStage,
    ) -> Result<ModelVersionResponse> {
        let (name, version) = name_and_version(request.name, request.version)?;
        let stage_input = required(request.stage, "stage")?;
        let stage = canonical_stage(&stage_input)?;
        let archive_existing = request.archive_existing_versions.unwrap_or(false);
        if archive_existing && !matches!(stage, "Staging" | "Production") {
            return Err(Error::invalid_parameter(format!(
                "Model version transition cannot archive existing model versions because \
                 '{stage_input}' is not an Active stage. Valid stages are ['Staging', 'Production']"
            )));
        }
        let model_version = self
            .store
            .transition_model_version_stage(&name, version, stage, archive_existing, now_millis())
            .await?
            .ok_or_else(|| version_not_found(&name, version))?;
        Ok(ModelVersionResponse { model_version })
    }

    /// `DELETE /model-versions/delete`.
    pub async fn delete_model_version(&self, request: ModelVersionKey) -> Result<Empty> {
        let (name, version) = name_and_version(request.name, request.version)?;
        if !self
            .store
            .delete_model_version(&name, version, now_millis())
            .await?
        {
            return Err(version_not_found(&name, version));
        }
        Ok(Empty {})
    }

    /// `GET /model-versions/get-download-uri`.
    pub async fn get_model_version_download_uri(
        &self,
        request: ModelVersionKey,
    ) -> Result<ModelVersionDownloadUriResponse> {
        let (name, version) = name_and_version(request.name, request.version)?;
        let artifact_uri = self
            .store
            .get_model_version_download_uri(&name, version)
            .await?
            .ok_or_else(|| version_not_found(&name, version))?;
        Ok(ModelVersionDownloadUriResponse { artifact_uri })
    }

    /// `GET /model-versions/search`.
    pub async fn search_model_versions(
        &self,
        request: SearchModelVersions,
    ) -> Result<ModelVersionsResponse> {
        let max_results = page_size(
            request.max_results,
            DEFAULT_SEARCH_MODEL_VERSIONS_MAX_RESULTS,
            MAX_SEARCH_MODEL_VERSIONS_MAX_RESULTS,
        )?;
        let filter = parse_model_version_filter(request.filter.as_deref().unwrap_or(""))?;
        let order_by = parse_model_version_order_by(&request.order_by)?;
        let offset = decode_page_token(request.page_token.as_deref())?;
        let include_prompts = is_querying_prompts(&filter);
        let page = self
            .store
            .search_model_versions(RegistryQuery {
                filter,
                order_by,
                include_prompts,
                max_results,
                offset,
            })
            .await?;
        Ok(ModelVersionsResponse {
            model_versions: page.items,
            next_page_token: page
                .has_more
                .then(|| encode_page_token(offset + max_results)),
        })
    }

    /// `POST /model-versions/set-tag`.
    pub async fn set_model_version_tag(&self, request: SetModelVersionTag) -> Result<Empty> {
        let (name, version) = name_and_version(request.name, request.version)?;
        let key = required(request.key, "key")?;
        let value = request.value.unwrap_or_default();
        validate_tag(&key, &value, true)?;
        if !self
            .store
            .set_model_version_tag(
                &name,
                version,
                ModelVersionTag {
                    key: key.clone(),
                    value: value.clone(),
                },
            )
            .await?
        {
            return Err(version_not_found(&name, version));
        }
        let entity = if self.is_prompt(&name).await? {
            WebhookEntity::PromptVersionTag
        } else {
            WebhookEntity::ModelVersionTag
        };
        self.emit(
            entity,
            WebhookAction::Set,
            serde_json::json!({"name": name, "version": version.to_string(), "key": key, "value": value}),
        );
        Ok(Empty {})
    }

    /// `DELETE /model-versions/delete-tag`.
    pub async fn delete_model_version_tag(&self, request: DeleteModelVersionTag) -> Result<Empty> {
        let (name, version) = name_and_version(request.name, request.version)?;
        let key = required(request.key, "key")?;
        validate_key(&key, "key")?;
        if !self
            .store
            .delete_model_version_tag(&name, version, &key)
            .await?
        {
            return Err(version_not_found(&name, version));
        }
        let entity = if self.is_prompt(&name).await? {
            WebhookEntity::PromptVersionTag
        } else {
            WebhookEntity::ModelVersionTag
        };
        self.emit(
            entity,
            WebhookAction::Deleted,
            serde_json::json!({"name": name, "version": version.to_string(), "key": key}),
        );
        Ok(Empty {})
    }
}

struct Lineage {
    source: String,
    run_id: String,
    model_id: String,
    storage_location: Option<String>,
}

/// The latest version of each stage, each with the aliases of the model that point to it.
fn latest_with_aliases(model: &RegisteredModel) -> Vec<ModelVersion> {
    model
        .latest_versions
        .iter()
        .cloned()
        .map(|mut version| {
            version.aliases = model
                .aliases
                .iter()
                .filter(|alias| alias.version == version.version)
                .map(|alias| alias.alias.clone())
                .collect();
            version
        })
        .collect()
}

fn name_and_version(name: Option<String>, version: Option<String>) -> Result<(String, i64)> {
    let name = required(name, "name")?;
    let version = required(version, "version")?;
    validate_model_name(&name)?;
    Ok((name, parse_version(&version)?))
}

fn invalid_source_id(source: &str, id_name: &str) -> Error {
    Error::invalid_parameter(format!(
        "Invalid model version source: '{source}'. The {id_name} request parameter must identify the \
         resource that contains the source."
    ))
}

/// A parsed `models:/` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ModelsUri {
    LoggedModel(String),
    Version {
        name: String,
        version: i64,
    },
    Alias {
        name: String,
        alias: String,
    },
    /// The latest version in a stage (`models:/name/Production`).
    Stage {
        name: String,
        stage: String,
    },
    /// The latest version of all (`models:/name/latest`).
    Latest {
        name: String,
    },
}

/// MLflow's `_parse_model_uri`: a logged model id, a version, an alias, a stage or `latest`; `None` for
/// a URI of another form.
fn parse_models_uri(uri: &str) -> Option<ModelsUri> {
    let path = uri.strip_prefix("models:")?;
    if path.starts_with("//") || !path.starts_with('/') || path.len() <= 1 {
        return None;
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [name, suffix] if !name.trim().is_empty() && !suffix.is_empty() => {
            if suffix.chars().all(|character| character.is_ascii_digit()) {
                Some(ModelsUri::Version {
                    name: (*name).to_owned(),
                    version: suffix.parse().ok()?,
                })
            } else if suffix.eq_ignore_ascii_case("latest") {
                Some(ModelsUri::Latest {
                    name: (*name).to_owned(),
                })
            } else if suffix.trim().is_empty() {
                None
            } else {
                Some(ModelsUri::Stage {
                    name: (*name).to_owned(),
                    stage: (*suffix).to_owned(),
                })
            }
        }
        [single] if !single.trim().is_empty() => match single.rsplit_once('@') {
            Some((name, alias)) if !alias.trim().is_empty() => Some(ModelsUri::Alias {
                name: name.to_owned(),
                alias: alias.to_owned(),
            }),
            Some(_) => None,
            None => Some(ModelsUri::LoggedModel((*single).to_owned())),
        },
        _ => None,
    }
}

/// The scheme (lowercase), authority and path of a URI, split as `urllib.parse.urlsplit` does.
fn uri_parts(uri: &str) -> (String, String, String) {
    let (scheme, rest) = match uri.find(':') {
        Some(index)
            if index > 0
                && uri[..index]
                    .chars()
                    .enumerate()
                    .all(|(position, character)| {
                        character.is_ascii_alphabetic()
                            || position > 0
                                && (character.is_ascii_digit() || "+-.".contains(character))
                    }) =>
        {
            (uri[..index].to_ascii_lowercase(), &uri[index + 1..])
        }
        _ => (String::new(), uri),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            (scheme, after[..end].to_owned(), after[end..].to_owned())
        }
        None => (scheme, String::new(), rest.to_owned()),
    }
}

/// Schemes whose artifact repositories connect to the host the URI names.
const HOST_ADDRESSED_SCHEMES: [&str; 10] = [
    "ftp",
    "sftp",
    "hdfs",
    "viewfs",
    "http",
    "https",
    "mlflow-artifacts",
    "r2",
    "b2",
    "abfss",
];

/// The (scheme family, host, port) a host-addressed URI connects to; `None` when it names no host. An
/// authority that cannot be read is a target no root matches.
fn host_target(uri: &str) -> Option<(String, String, Option<u16>)> {
    let (scheme, authority, _) = uri_parts(uri);
    if !HOST_ADDRESSED_SCHEMES.contains(&scheme.as_str()) {
        return None;
    }
    if scheme == "mlflow-artifacts" && authority.is_empty() {
        return None;
    }
    let family = match scheme.as_str() {
        "viewfs" => "hdfs",
        "https" | "mlflow-artifacts" => "http",
        other => other,
    }
    .to_owned();
    let malformed = || Some(("malformed".to_owned(), authority.clone(), None));
    if authority.contains('\\') || authority.chars().any(char::is_whitespace) {
        return malformed();
    }
    let host_and_port = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = if let Some(rest) = host_and_port.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, port)) => (host, port.strip_prefix(':')),
            None => return malformed(),
        }
    } else {
        match host_and_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_and_port, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(port) => match port.parse::<u16>() {
            Ok(port) => Some(port),
            Err(_) => return malformed(),
        },
    };
    Some((family, host.to_lowercase(), port))
}

/// MLflow's `rejected_host_addressed_scheme`: the scheme of a source that would make the server connect
/// to a host other than those of its own artifact roots; `None` when the source is acceptable.
fn rejected_host_scheme(uri: &str, trusted_roots: &[String]) -> Option<String> {
    let (family, host, port) = host_target(uri)?;
    let trusted = trusted_roots
        .iter()
        .filter_map(|root| host_target(root))
        .any(|(root_family, root_host, root_port)| {
            family != "malformed" && root_family == family && root_host == host && root_port == port
        });
    if trusted {
        return None;
    }
    Some(uri_parts(uri).0)
}

/// MLflow's `_validate_storage_location_uri` for a client-supplied artifact root (`field` names it in the
/// message): no fragment or `;` parameters, no `..` in the query however often it is percent-encoded, no
/// host-addressed scheme (`http`, `ftp`, `mlflow-artifacts://host`, …) other than the hosts of the server's
/// own roots, no `runs:/` URI and at most MLflow's 2048 characters. ferroflow refuses `;` anywhere after the
/// scheme, where Python's `urlparse` sees parameters only in some schemes' last segment.
pub fn validate_storage_location(value: &str, field: &str, trusted_roots: &[String]) -> Result<()> {
    let after_scheme = value.split_once(':').map_or(value, |(_, rest)| rest);
    if value.contains('#') || after_scheme.contains(';') {
        return Err(Error::invalid_parameter(format!(
            "'{field}' URL can't include fragments or params."
        )));
    }
    if let Some((_, query)) = value.split_once('?') {
        if fully_percent_decoded(query).contains("..") {
            return Err(Error::invalid_parameter("Invalid query string"));
        }
    }
    if let Some(scheme) = rejected_host_scheme(value, trusted_roots) {
        return Err(Error::invalid_parameter(format!(
            "'{field}' cannot use the '{scheme}' scheme: the '{scheme}' scheme addresses a host other \
             than the tracking server's configured artifact storage, so the server would connect to \
             the host named in the URI. Set the MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES \
             environment variable on the server to allow it."
        )));
    }
    if value.starts_with("runs:") {
        return Err(Error::invalid_parameter(format!(
            "Artifact location cannot be a runs:/ URI. Given: '{value}'"
        )));
    }
    if value.chars().count() > MAX_ARTIFACT_LOCATION_LENGTH {
        return Err(Error::invalid_parameter(format!(
            "Invalid artifact path length. The length of the artifact path cannot be greater than \
             {MAX_ARTIFACT_LOCATION_LENGTH} characters. To configure this limit, please set the \
             MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH environment variable."
        )));
    }
    Ok(())
}

/// MLflow's `MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH` default.
const MAX_ARTIFACT_LOCATION_LENGTH: usize = 2048;

/// Percent-decodes `text` until it stops changing (at most 10 rounds, as MLflow's `_decode`).
fn fully_percent_decoded(text: &str) -> String {
    let mut current = text.to_owned();
    for _ in 0..10 {
        let bytes = current.as_bytes();
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut index = 0;
        while index < bytes.len() {
            let hex = |at: usize| bytes.get(at).and_then(|byte| (*byte as char).to_digit(16));
            match (bytes[index], hex(index + 1), hex(index + 2)) {
                (b'%', Some(high), Some(low)) => {
                    decoded.push(u8::try_from(high * 16 + low).unwrap_or(b'%'));
                    index += 3;
                }
                (byte, _, _) => {
                    decoded.push(byte);
                    index += 1;
                }
            }
        }
        let next = String::from_utf8_lossy(&decoded).into_owned();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

/// MLflow's `is_local_uri` (for a non-Windows server).
fn is_local_uri(uri: &str) -> bool {
    let (scheme, authority, _) = uri_parts(uri);
    if scheme.is_empty() {
        return true;
    }
    let host = authority
        .rsplit('@')
        .next()
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let remote = !(host.is_empty()
        || host == "."
        || host.starts_with("localhost")
        || host.starts_with("127.0.0.1"));
    scheme == "file" && !remote
}

/// The file-system path of a local URI (`file:///x`, `file:/x` or a plain path).
fn local_path(uri: &str) -> String {
    let (scheme, _, path) = uri_parts(uri);
    let path = if scheme.is_empty() {
        uri.to_owned()
    } else {
        path
    };
    percent_decode(&path)
}

/// Whether the local `source` lies inside (or is) the local directory `root`, compared lexically.
fn local_path_within(source: &str, root: &str) -> bool {
    let source = normalize_posix_path(&local_path(source));
    let root = normalize_posix_path(&local_path(root));
    if !source.starts_with('/') || !root.starts_with('/') {
        return false;
    }
    source == root || source.starts_with(&format!("{}/", root.trim_end_matches('/')))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
            if let Some(value) = hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                decoded.push(value);
                index += 3;
                continue;
            }
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// MLflow's `_validate_non_local_source_contains_relative_paths`: after decoding, the source's path must
/// be absolute and normalized, without `..` anywhere and without NUL.
fn validate_no_relative_paths(source: &str) -> Result<()> {
    let refused = || {
        Error::invalid_parameter(format!(
            "Invalid model version source: '{source}'. If supplying a source as an http, https, local \
             file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided \
             without relative path references present. Please provide an absolute path."
        ))
    };
    let mut decoded = source.to_owned();
    loop {
        let next = percent_decode(&decoded.replace('+', " "));
        if next == decoded {
            break;
        }
        decoded = next;
    }
    if decoded.split('/').any(|part| part == "..") {
        return Err(refused());
    }
    let (_, _, path) = uri_parts(&decoded);
    let mut collapsed = String::with_capacity(path.len());
    for character in path.trim_end_matches('/').chars() {
        if character == '/' && collapsed.ends_with('/') {
            continue;
        }
        collapsed.push(character);
    }
    if collapsed.contains('\0') {
        return Err(refused());
    }
    if !collapsed.starts_with('/') || normalize_posix_path(&collapsed) != collapsed {
        return Err(refused());
    }
    Ok(())
}

/// MLflow's `_is_mlflow_artifact_source`: `mlflow-artifacts:` URIs and http(s) URLs of the proxied
/// artifact API.
fn is_mlflow_artifact_source(source: &str) -> bool {
    let (scheme, _, path) = uri_parts(source);
    if scheme == "mlflow-artifacts" {
        return true;
    }
    let parts: Vec<String> = path
        .split('/')
        .filter(|part| !part.is_empty())
        .map(percent_decode)
        .collect();
    let route = ["api", "2.0", "mlflow-artifacts", "artifacts"];
    (scheme == "http" || scheme == "https")
        && parts.windows(route.len()).any(|window| window == route)
}

/// MLflow's `_is_uri_within_root`: same scheme and authority, and the root's path segments prefix the
/// source's.
fn uri_within_root(source: &str, root: &str) -> bool {
    let segments = |path: &str| -> Vec<String> {
        path.split('/')
            .filter(|part| !part.is_empty())
            .map(percent_decode)
            .collect()
    };
    let (source_scheme, source_authority, source_path) = uri_parts(source);
    let (root_scheme, root_authority, root_path) = uri_parts(root);
    let source_parts = segments(&source_path);
    let root_parts = segments(&root_path);
    source_scheme == root_scheme
        && source_authority.to_lowercase() == root_authority.to_lowercase()
        && !root_parts.is_empty()
        && source_parts.starts_with(&root_parts)
}

/// A JSON value as Python's `json.dumps` writes it (`", "` and `": "` separators, ASCII only).
fn python_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => {
            let mut json = String::with_capacity(text.len() + 2);
            json.push('"');
            for character in text.chars() {
                match character {
                    '"' => json.push_str("\\\""),
                    '\\' => json.push_str("\\\\"),
                    '\n' => json.push_str("\\n"),
                    '\r' => json.push_str("\\r"),
                    '\t' => json.push_str("\\t"),
                    ' '..='~' => json.push(character),
                    other => {
                        let mut units = [0u16; 2];
                        for unit in other.encode_utf16(&mut units) {
                            json.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                }
            }
            json.push('"');
            json
        }
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        serde_json::Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(key, value)| format!(
                    "{}: {}",
                    python_json(&serde_json::Value::String(key.clone())),
                    python_json(value)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        assert!(validate_model_name("my model").is_ok());
        assert_eq!(
            validate_model_name("a/b").unwrap_err().message,
            "Invalid model name 'a/b'. Names cannot contain '/' or ':'."
        );
        assert!(validate_model_name("..").is_err());
        assert!(validate_model_name("   ").is_err());
    }

    #[test]
    fn aliases() {
        assert!(validate_alias("champion-1_x").is_ok());
        assert!(validate_alias("bad alias").is_err());
        assert!(validate_alias_not_reserved("Latest").is_err());
        assert!(validate_alias_not_reserved("v12").is_err());
        assert!(validate_alias_not_reserved("v").is_ok());
        assert!(validate_alias_not_reserved("version1").is_ok());
    }

    #[test]
    fn stages() {
        assert_eq!(canonical_stage("production").unwrap(), "Production");
        assert_eq!(
            canonical_stage("prod").unwrap_err().message,
            "Invalid Model Version stage: prod. Value must be one of None, Staging, Production, Archived."
        );
    }

    #[test]
    fn models_uris() {
        assert_eq!(
            parse_models_uri("models:/m-abc"),
            Some(ModelsUri::LoggedModel("m-abc".into()))
        );
        assert_eq!(
            parse_models_uri("models:/name/3"),
            Some(ModelsUri::Version {
                name: "name".into(),
                version: 3
            })
        );
        assert_eq!(
            parse_models_uri("models:/name@champ"),
            Some(ModelsUri::Alias {
                name: "name".into(),
                alias: "champ".into()
            })
        );
        assert_eq!(
            parse_models_uri("models:/name/Production"),
            Some(ModelsUri::Stage {
                name: "name".into(),
                stage: "Production".into()
            })
        );
        assert_eq!(
            parse_models_uri("models:/name/LATEST"),
            Some(ModelsUri::Latest {
                name: "name".into()
            })
        );
        assert_eq!(parse_models_uri("models:/a/b/c"), None);
        assert_eq!(parse_models_uri("models://host/x"), None);
    }

    #[test]
    fn relative_paths_are_refused() {
        for source in [
            "mlflow-artifacts://host:5000/../../../etc",
            "http://host/api/2.0/mlflow-artifacts/artifacts/../../x",
            "s3:/bucket/models/path/../../other",
            "mlflow-artifacts://host:5000/..%2f..%2fx",
            "s3://bucket",
            "s3://bucket/a/./b",
            "s3://bucket/a%00",
        ] {
            assert!(validate_no_relative_paths(source).is_err(), "{source}");
        }
        for source in [
            "s3://bucket/a/b",
            "runs:/abc/model",
            "models:/m-1",
            "s3://b//a/",
        ] {
            assert!(validate_no_relative_paths(source).is_ok(), "{source}");
        }
    }

    #[test]
    fn uris() {
        assert!(is_local_uri("/tmp/x"));
        assert!(is_local_uri("file:///tmp/x"));
        assert!(!is_local_uri("file://remote/tmp/x"));
        assert!(!is_local_uri("s3://b/x"));
        assert!(local_path_within(
            "/art/1/run/artifacts/model",
            "/art/1/run/artifacts"
        ));
        assert!(!local_path_within(
            "/art/1/run/artifacts/../../x",
            "/art/1/run/artifacts"
        ));
        assert!(!local_path_within(
            "/art/1/run/artifactsx",
            "/art/1/run/artifacts"
        ));
        assert!(is_mlflow_artifact_source(
            "http://h:5000/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts"
        ));
        assert!(uri_within_root(
            "mlflow-artifacts:/1/abc/artifacts/model",
            "mlflow-artifacts:/1/abc/artifacts"
        ));
        assert!(!uri_within_root(
            "mlflow-artifacts:/1/other/artifacts/model",
            "mlflow-artifacts:/1/abc/artifacts"
        ));
    }

    #[test]
    fn storage_locations_as_mlflow_validates_them() {
        let roots = vec![
            "mlflow-artifacts:/".to_owned(),
            "s3://bucket/root".to_owned(),
        ];
        let refused = [
            "mlflow-artifacts:/x#/../../etc",
            "file:///tmp;/../../etc",
            "http:///#/../../etc/",
            "s3://bucket/x?a=..%2f",
            "s3://bucket/x?a=%252e%252e",
            "http://169.254.169.254/latest",
            "https://internal.example/x",
            "mlflow-artifacts://internal:8080/x",
            "ftp://files.internal/x",
            "runs:/abc/model",
        ];
        for location in refused {
            assert!(
                validate_storage_location(location, "artifact_location", &roots).is_err(),
                "{location}"
            );
        }
        let long = format!("s3://bucket/{}", "x".repeat(2048));
        assert!(validate_storage_location(&long, "artifact_location", &roots).is_err());
        for location in [
            "mlflow-artifacts:/team",
            "s3://bucket/root/x",
            "/data/mlruns",
            "gs://b/p?x=1",
        ] {
            assert!(
                validate_storage_location(location, "artifact_location", &roots).is_ok(),
                "{location}"
            );
        }
    }

    #[test]
    fn host_addressed_sources() {
        let none: Vec<String> = Vec::new();
        assert_eq!(
            rejected_host_scheme("http://example.com/m", &none).as_deref(),
            Some("http")
        );
        assert_eq!(
            rejected_host_scheme("mlflow-artifacts://h:5000/1/m", &none).as_deref(),
            Some("mlflow-artifacts")
        );
        assert_eq!(rejected_host_scheme("mlflow-artifacts:/1/m", &none), None);
        assert_eq!(rejected_host_scheme("s3://bucket/m", &none), None);
        assert_eq!(rejected_host_scheme("models:/m-1", &none), None);
        let roots = vec!["https://store.example.com:8443/root".to_owned()];
        assert_eq!(
            rejected_host_scheme("https://STORE.example.com:8443/root/m", &roots),
            None
        );
        assert!(rejected_host_scheme("https://store.example.com/root/m", &roots).is_some());
    }

    #[test]
    fn model_versions_tag_is_python_json() {
        let value = serde_json::json!([{"name": "é m", "version": 2}]);
        assert_eq!(
            python_json(&value),
            r#"[{"name": "\u00e9 m", "version": 2}]"#
        );
    }
}
