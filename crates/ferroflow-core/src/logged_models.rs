//! MLflow 3 logged models: the [`LoggedModelStore`] trait and the [`LoggedModelService`] that validates
//! each `/logged-models` request as MLflow does, decides ids and times, and drives the store.
//!
//! A logged model belongs to an experiment; its artifacts live under
//! `<experiment artifact_location>/models/<model_id>/artifacts`. It starts `LOGGED_MODEL_PENDING` and the
//! client finalizes it to READY or UPLOAD_FAILED once its files are uploaded. Deleting one is a soft
//! delete: searches and plain gets stop seeing it, while finalize, tags and params still reach it (as in
//! MLflow).
//!
//! Search pages use MLflow's logged-model page token, which unlike the run search token also carries the
//! search it belongs to: base64 of Python's `json.dumps` of `{"experiment_ids", "filter_string",
//! "order_by", "offset"}`. A token is refused when the search it is replayed with differs.

use crate::error::{Error, Result};
use crate::ids::{now_millis, random_run_name};
use crate::logged_model_filter::{self, python_repr, Comparison, OrderBy};
use crate::model::LifecycleStage;
use crate::store::TrackingStore;
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ferroflow_proto::logged_models::{
    CreateLoggedModel, FinalizeLoggedModel, GetLoggedModel, LogLoggedModelParams, LoggedModel,
    LoggedModelParameter, LoggedModelResponse, LoggedModelStatus, LoggedModelTag,
    SearchLoggedModels, SearchLoggedModelsResponse, SetLoggedModelTags, StatusInput,
};
use ferroflow_proto::tracking::{Empty, KeyValueInput};
use ferroflow_proto::ErrorCode;
use std::sync::Arc;

/// MLflow's default page size of a logged model search.
pub const DEFAULT_SEARCH_LOGGED_MODELS_MAX_RESULTS: usize = 50;

/// Characters MLflow refuses in a logged model name, in the order its message lists them.
const BAD_NAME_CHARACTERS: [char; 6] = ['/', ':', '.', '%', '"', '\''];

/// A new logged model with everything decided.
#[derive(Debug, Clone)]
pub struct NewLoggedModel {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub creation_timestamp_ms: i64,
    /// `""` when the client sent none, as MLflow stores it.
    pub model_type: String,
    /// `""` when the client sent none, as MLflow stores it.
    pub source_run_id: String,
    pub params: Vec<LoggedModelParameter>,
    pub tags: Vec<LoggedModelTag>,
}

/// A dataset that scopes the metric filters of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetFilter {
    pub name: String,
    /// `None` matches only metric rows *without* a digest (`dataset_digest IS NULL`), not any digest:
    /// MLflow's handler always passes the key, so its store compares the column to `None`.
    pub digest: Option<String>,
}

/// A search over logged models, already parsed.
#[derive(Debug, Clone)]
pub struct LoggedModelQuery {
    pub experiment_ids: Vec<i64>,
    pub filter: Vec<Comparison>,
    pub datasets: Vec<DatasetFilter>,
    pub order_by: Vec<OrderBy>,
    pub max_results: usize,
    pub offset: usize,
}

/// One page of a search: the models, and whether more follow.
#[derive(Debug, Clone)]
pub struct LoggedModelPage {
    pub models: Vec<LoggedModel>,
    pub has_more: bool,
}

/// Logged models, their params, tags and linked metrics. The metric rows themselves are written by
/// `TrackingStore::log_batch` for metrics that carry a `model_id`.
#[async_trait]
pub trait LoggedModelStore: Send + Sync + 'static {
    /// Creates the model with its params and tags in one transaction. Two params or two tags with the
    /// same key give BAD_REQUEST and nothing is written.
    async fn create_logged_model(&self, model: NewLoggedModel) -> Result<LoggedModel>;
    /// The model with its tags, params and metrics; `None` when missing, or deleted and not allowed.
    async fn get_logged_model(
        &self,
        model_id: &str,
        allow_deleted: bool,
    ) -> Result<Option<LoggedModel>>;
    /// Whether the model exists, deleted or not.
    async fn logged_model_exists(&self, model_id: &str) -> Result<bool>;
    /// Sets the status and `last_updated_timestamp_ms`; `None` when there is no such model.
    async fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
        now: i64,
    ) -> Result<Option<LoggedModel>>;
    /// Marks the model deleted; false when there is no such model.
    async fn delete_logged_model(&self, model_id: &str, now: i64) -> Result<bool>;
    /// Upserts the tags (keys are distinct); false when there is no such model.
    async fn set_logged_model_tags(
        &self,
        model_id: &str,
        tags: Vec<LoggedModelTag>,
    ) -> Result<bool>;
    /// Returns false when the model has no such tag.
    async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<bool>;
    /// Adds params in one transaction; a key the model already has (or two equal keys) gives
    /// BAD_REQUEST and nothing is written. False when there is no such model.
    async fn log_logged_model_params(
        &self,
        model_id: &str,
        params: Vec<LoggedModelParameter>,
    ) -> Result<bool>;
    /// One page of active models of the experiments matching the query, in its order.
    async fn search_logged_models(&self, query: LoggedModelQuery) -> Result<LoggedModelPage>;
}

#[derive(Clone)]
pub struct LoggedModelService {
    store: Arc<dyn LoggedModelStore>,
    tracking: Arc<dyn TrackingStore>,
}

fn required(value: Option<String>, name: &str) -> Result<String> {
    match value {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(Error::missing_parameter(name)),
    }
}

fn model_not_found(model_id: &str) -> Error {
    Error::not_found(format!("Logged model with ID '{model_id}' not found."))
}

/// A new logged model id: `m-` and 32 lowercase hex characters.
pub fn new_logged_model_id() -> String {
    format!("m-{}", uuid::Uuid::new_v4().simple())
}

/// MLflow's `_validate_logged_model_name`: no `/ : . % " '` and not empty.
pub fn validate_logged_model_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(BAD_NAME_CHARACTERS) {
        let listed: Vec<String> = BAD_NAME_CHARACTERS
            .iter()
            .map(|character| python_repr(&character.to_string()))
            .collect();
        return Err(Error::invalid_parameter(format!(
            "Invalid model name ({}) provided. Model name must be a non-empty string and cannot contain \
             the following characters: ({})",
            python_repr(name),
            listed.join(", ")
        )));
    }
    Ok(())
}

/// Keys and values as MLflow reads them: an absent key or value is `""`.
fn key_values(inputs: Vec<KeyValueInput>) -> Vec<(String, String)> {
    inputs
        .into_iter()
        .map(|input| {
            (
                input.key.unwrap_or_default(),
                input.value.unwrap_or_default(),
            )
        })
        .collect()
}

fn params_of(inputs: Vec<KeyValueInput>) -> Vec<LoggedModelParameter> {
    key_values(inputs)
        .into_iter()
        .map(|(key, value)| LoggedModelParameter { key, value })
        .collect()
}

fn tags_of(inputs: Vec<KeyValueInput>) -> Vec<LoggedModelTag> {
    key_values(inputs)
        .into_iter()
        .map(|(key, value)| LoggedModelTag { key, value })
        .collect()
}

/// The status of a finalize request. Unknown names and numbers become UNSPECIFIED, as protobuf's JSON
/// reader (which MLflow runs with `ignore_unknown_fields`) leaves the field at its default.
fn status_of(input: StatusInput) -> LoggedModelStatus {
    match input {
        StatusInput::Name(name) => {
            LoggedModelStatus::from_name(&name).unwrap_or(LoggedModelStatus::Unspecified)
        }
        StatusInput::Number(number) => {
            LoggedModelStatus::from_number(number).unwrap_or(LoggedModelStatus::Unspecified)
        }
    }
}

impl LoggedModelService {
    pub fn new(store: Arc<dyn LoggedModelStore>, tracking: Arc<dyn TrackingStore>) -> Self {
        Self { store, tracking }
    }

    pub fn store(&self) -> &Arc<dyn LoggedModelStore> {
        &self.store
    }

    /// `POST /logged-models`.
    pub async fn create_logged_model(
        &self,
        request: CreateLoggedModel,
    ) -> Result<LoggedModelResponse> {
        let experiment_id = required(request.experiment_id, "experiment_id")?;
        let name = request.name.filter(|name| !name.is_empty());
        if let Some(name) = &name {
            validate_logged_model_name(name)?;
        }
        let experiment = self
            .tracking
            .get_experiment(&experiment_id)
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
        let model_id = new_logged_model_id();
        let artifact_location = format!(
            "{}/models/{model_id}/artifacts",
            experiment.artifact_location.trim_end_matches('/')
        );
        let model = self
            .store
            .create_logged_model(NewLoggedModel {
                model_id,
                experiment_id: experiment.experiment_id,
                name: name.unwrap_or_else(random_run_name),
                artifact_location,
                creation_timestamp_ms: now_millis(),
                model_type: request.model_type.unwrap_or_default(),
                source_run_id: request.source_run_id.unwrap_or_default(),
                params: params_of(request.params),
                tags: tags_of(request.tags),
            })
            .await?;
        Ok(LoggedModelResponse { model })
    }

    /// `GET /logged-models/{model_id}`: a deleted model only with `allow_deleted=true`.
    pub async fn get_logged_model(
        &self,
        model_id: &str,
        request: GetLoggedModel,
    ) -> Result<LoggedModelResponse> {
        let model = self
            .store
            .get_logged_model(
                model_id,
                request
                    .allow_deleted
                    .is_some_and(|allow| allow.eq_ignore_ascii_case("true")),
            )
            .await?
            .ok_or_else(|| model_not_found(model_id))?;
        Ok(LoggedModelResponse { model })
    }

    /// `PATCH /logged-models/{model_id}`. MLflow finalizes the model named in the body and ignores the
    /// path, so ferroflow does too.
    pub async fn finalize_logged_model(
        &self,
        request: FinalizeLoggedModel,
    ) -> Result<LoggedModelResponse> {
        let model_id = required(request.model_id, "model_id")?;
        let status = status_of(
            request
                .status
                .ok_or_else(|| Error::missing_parameter("status"))?,
        );
        let model = self
            .store
            .finalize_logged_model(&model_id, status, now_millis())
            .await?
            .ok_or_else(|| model_not_found(&model_id))?;
        Ok(LoggedModelResponse { model })
    }

    /// `DELETE /logged-models/{model_id}`: a soft delete; deleting a deleted model succeeds.
    pub async fn delete_logged_model(&self, model_id: &str) -> Result<Empty> {
        if !self
            .store
            .delete_logged_model(model_id, now_millis())
            .await?
        {
            return Err(model_not_found(model_id));
        }
        Ok(Empty {})
    }

    /// `PATCH /logged-models/{model_id}/tags`: upserts; of a key given twice the last value wins.
    pub async fn set_logged_model_tags(
        &self,
        model_id: &str,
        request: SetLoggedModelTags,
    ) -> Result<Empty> {
        let mut tags: Vec<LoggedModelTag> = Vec::new();
        for tag in tags_of(request.tags) {
            match tags.iter_mut().find(|existing| existing.key == tag.key) {
                Some(existing) => existing.value = tag.value,
                None => tags.push(tag),
            }
        }
        if !self.store.set_logged_model_tags(model_id, tags).await? {
            return Err(model_not_found(model_id));
        }
        Ok(Empty {})
    }

    /// `DELETE /logged-models/{model_id}/tags/{tag_key}`.
    pub async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<Empty> {
        if !self.store.logged_model_exists(model_id).await? {
            return Err(model_not_found(model_id));
        }
        if !self.store.delete_logged_model_tag(model_id, key).await? {
            return Err(Error::not_found(format!(
                "No tag with key {} found for model with ID {}.",
                python_repr(key),
                python_repr(model_id)
            )));
        }
        Ok(Empty {})
    }

    /// `POST /logged-models/{model_id}/params`. The body must repeat `model_id`; the path's is used.
    pub async fn log_logged_model_params(
        &self,
        model_id: &str,
        request: LogLoggedModelParams,
    ) -> Result<Empty> {
        required(request.model_id, "model_id")?;
        if !self
            .store
            .log_logged_model_params(model_id, params_of(request.params))
            .await?
        {
            return Err(model_not_found(model_id));
        }
        Ok(Empty {})
    }

    /// `POST /logged-models/search`.
    pub async fn search_logged_models(
        &self,
        request: SearchLoggedModels,
    ) -> Result<SearchLoggedModelsResponse> {
        let requested_ids = request
            .experiment_ids
            .ok_or_else(|| Error::missing_parameter("experiment_ids"))?;
        let mut datasets = Vec::with_capacity(request.datasets.len());
        for dataset in request.datasets {
            let name = dataset
                .dataset_name
                .filter(|name| !name.is_empty())
                .ok_or_else(|| {
                    Error::invalid_parameter(
                        "`dataset_name` in the `datasets` clause must be specified.",
                    )
                })?;
            datasets.push(DatasetFilter {
                name,
                digest: dataset.dataset_digest.filter(|digest| !digest.is_empty()),
            });
        }
        let filter_string = request.filter.filter(|filter| !filter.is_empty());
        let token_order_by: Vec<TokenOrderBy> = request
            .order_by
            .into_iter()
            .map(|item| TokenOrderBy {
                field_name: item.field_name.unwrap_or_default(),
                ascending: item.ascending.unwrap_or(true),
                dataset_name: item.dataset_name.filter(|name| !name.is_empty()),
                dataset_digest: item.dataset_digest.filter(|digest| !digest.is_empty()),
            })
            .collect();
        let offset = match request
            .page_token
            .as_deref()
            .filter(|token| !token.is_empty())
        {
            None => 0,
            Some(token) => PageToken::decode(token)?.validate(
                &requested_ids,
                filter_string.as_deref(),
                &token_order_by,
            )?,
        };
        let max_results = match request.max_results {
            None | Some(0) => DEFAULT_SEARCH_LOGGED_MODELS_MAX_RESULTS,
            Some(value) => usize::try_from(value).map_err(|_| {
                Error::invalid_parameter(format!(
                    "invalid value {value} for parameter 'max_results': it must not be negative"
                ))
            })?,
        };
        let filter = logged_model_filter::parse_filter(filter_string.as_deref().unwrap_or(""))?;
        let order_by = token_order_by
            .iter()
            .map(|item| {
                logged_model_filter::parse_order_by(
                    &item.field_name,
                    item.ascending,
                    item.dataset_name.as_deref(),
                    item.dataset_digest.as_deref(),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let experiment_ids = requested_ids
            .iter()
            .map(|id| {
                id.trim().parse::<i64>().map_err(|_| {
                    Error::invalid_parameter(format!(
                        "Invalid experiment ID '{id}'. Experiment ID must be a valid integer."
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let page = self
            .store
            .search_logged_models(LoggedModelQuery {
                experiment_ids,
                filter,
                datasets,
                order_by,
                max_results,
                offset,
            })
            .await?;
        let next_page_token = page.has_more.then(|| {
            PageToken::encode(
                &requested_ids,
                filter_string.as_deref(),
                &token_order_by,
                offset + max_results,
            )
        });
        Ok(SearchLoggedModelsResponse {
            models: page.models,
            next_page_token,
        })
    }

    /// The artifact location of an active logged model, for the artifact listing.
    pub async fn logged_model_artifact_uri(&self, model_id: &str) -> Result<String> {
        let model = self
            .store
            .get_logged_model(model_id, false)
            .await?
            .ok_or_else(|| model_not_found(model_id))?;
        Ok(model.info.artifact_uri)
    }
}

/// An `order_by` item as MLflow's handler hands it to the store and writes it into page tokens.
#[derive(Debug, Clone, PartialEq)]
struct TokenOrderBy {
    field_name: String,
    ascending: bool,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

impl TokenOrderBy {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "field_name": self.field_name,
            "ascending": self.ascending,
            "dataset_name": self.dataset_name,
            "dataset_digest": self.dataset_digest,
        })
    }

    /// Python's `json.dumps` of the dict, keys in MLflow's order.
    fn python_json(&self) -> String {
        format!(
            "{{\"field_name\": {}, \"ascending\": {}, \"dataset_name\": {}, \"dataset_digest\": {}}}",
            python_json_string(&self.field_name),
            self.ascending,
            python_json_optional(self.dataset_name.as_deref()),
            python_json_optional(self.dataset_digest.as_deref()),
        )
    }

    /// Python's `repr()` of the dict.
    fn python_repr(&self) -> String {
        let optional = |value: Option<&str>| value.map_or_else(|| "None".to_owned(), python_repr);
        format!(
            "{{'field_name': {}, 'ascending': {}, 'dataset_name': {}, 'dataset_digest': {}}}",
            python_repr(&self.field_name),
            if self.ascending { "True" } else { "False" },
            optional(self.dataset_name.as_deref()),
            optional(self.dataset_digest.as_deref()),
        )
    }
}

/// A decoded logged-model page token: MLflow's `SearchLoggedModelsPaginationToken`.
#[derive(Debug)]
struct PageToken {
    experiment_ids: serde_json::Value,
    filter_string: serde_json::Value,
    order_by: serde_json::Value,
    offset: usize,
}

impl PageToken {
    fn encode(
        experiment_ids: &[String],
        filter_string: Option<&str>,
        order_by: &[TokenOrderBy],
        offset: usize,
    ) -> String {
        let ids: Vec<String> = experiment_ids
            .iter()
            .map(|id| python_json_string(id))
            .collect();
        let order_by = if order_by.is_empty() {
            "null".to_owned()
        } else {
            let items: Vec<String> = order_by.iter().map(TokenOrderBy::python_json).collect();
            format!("[{}]", items.join(", "))
        };
        let json = format!(
            "{{\"experiment_ids\": [{}], \"filter_string\": {}, \"order_by\": {}, \"offset\": {}}}",
            ids.join(", "),
            python_json_optional(filter_string),
            order_by,
            offset
        );
        STANDARD.encode(json)
    }

    fn decode(token: &str) -> Result<Self> {
        let invalid = |reason: &str| {
            Error::invalid_parameter(format!("Invalid page token: {token}. {reason}"))
        };
        let bytes = STANDARD
            .decode(token.trim())
            .map_err(|_| invalid("it is not base64"))?;
        let parsed: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|error| invalid(&error.to_string()))?;
        let serde_json::Value::Object(mut fields) = parsed else {
            return Err(invalid("it is not a JSON object"));
        };
        let mut take = |key: &str| fields.remove(key).unwrap_or(serde_json::Value::Null);
        let experiment_ids = take("experiment_ids");
        let filter_string = falsy_to_null(take("filter_string"));
        let order_by = falsy_to_null(take("order_by"));
        let offset = match take("offset") {
            serde_json::Value::Null => 0,
            value => value
                .as_u64()
                .and_then(|offset| usize::try_from(offset).ok())
                .ok_or_else(|| invalid("its offset is not a non-negative integer"))?,
        };
        Ok(Self {
            experiment_ids,
            filter_string,
            order_by,
            offset,
        })
    }

    /// The token's offset, when it was made for this search; MLflow's messages otherwise.
    fn validate(
        self,
        experiment_ids: &[String],
        filter_string: Option<&str>,
        order_by: &[TokenOrderBy],
    ) -> Result<usize> {
        if self.experiment_ids != serde_json::json!(experiment_ids) {
            let expected: Vec<String> = experiment_ids.iter().map(|id| python_repr(id)).collect();
            return Err(Error::invalid_parameter(format!(
                "Experiment IDs in the page token do not match the requested experiment IDs. \
                 Expected: [{}]. Found: {}",
                expected.join(", "),
                python_value_repr(&self.experiment_ids)
            )));
        }
        if self.filter_string != serde_json::json!(filter_string) {
            let found = match &self.filter_string {
                serde_json::Value::String(text) => text.clone(),
                other => python_value_repr(other),
            };
            return Err(Error::invalid_parameter(format!(
                "Filter string in the page token does not match the requested filter string. \
                 Expected: {}. Found: {found}",
                filter_string.unwrap_or("None")
            )));
        }
        let expected_order_by = if order_by.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::Value::Array(order_by.iter().map(TokenOrderBy::to_json).collect())
        };
        if self.order_by != expected_order_by {
            let expected = if order_by.is_empty() {
                "None".to_owned()
            } else {
                let items: Vec<String> = order_by.iter().map(TokenOrderBy::python_repr).collect();
                format!("[{}]", items.join(", "))
            };
            return Err(Error::invalid_parameter(format!(
                "Order by in the page token does not match the requested order by. \
                 Expected: {expected}. Found: {}",
                python_value_repr(&self.order_by)
            )));
        }
        Ok(self.offset)
    }
}

/// Python's `value or None` on a JSON value.
fn falsy_to_null(value: serde_json::Value) -> serde_json::Value {
    let falsy = match &value {
        serde_json::Value::String(text) => text.is_empty(),
        serde_json::Value::Array(items) => items.is_empty(),
        serde_json::Value::Object(fields) => fields.is_empty(),
        serde_json::Value::Bool(flag) => !flag,
        serde_json::Value::Number(number) => number.as_f64() == Some(0.0),
        serde_json::Value::Null => true,
    };
    if falsy {
        serde_json::Value::Null
    } else {
        value
    }
}

/// A JSON string as Python's `json.dumps` writes it (`ensure_ascii`): every character outside printable
/// ASCII is escaped, as `\uXXXX` (surrogate pairs beyond the BMP).
fn python_json_string(text: &str) -> String {
    let mut json = String::with_capacity(text.len() + 2);
    json.push('"');
    for character in text.chars() {
        match character {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            '\n' => json.push_str("\\n"),
            '\r' => json.push_str("\\r"),
            '\t' => json.push_str("\\t"),
            '\u{8}' => json.push_str("\\b"),
            '\u{c}' => json.push_str("\\f"),
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

fn python_json_optional(text: Option<&str>) -> String {
    text.map_or_else(|| "null".to_owned(), python_json_string)
}

/// Python's `repr()` of a decoded JSON value, for messages.
fn python_value_repr(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "None".to_owned(),
        serde_json::Value::Bool(true) => "True".to_owned(),
        serde_json::Value::Bool(false) => "False".to_owned(),
        serde_json::Value::Number(number) => number.to_string(),
        serde_json::Value::String(text) => python_repr(text),
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(python_value_repr).collect();
            format!("[{}]", items.join(", "))
        }
        serde_json::Value::Object(fields) => {
            let items: Vec<String> = fields
                .iter()
                .map(|(key, value)| format!("{}: {}", python_repr(key), python_value_repr(value)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// BAD_REQUEST for a key given twice, or already present, in a logged model's params or tags (MLflow
/// answers this code for the database's integrity error).
pub fn duplicate_key_error(kind: &str, key: &str, model_id: &str) -> Error {
    Error::new(
        ErrorCode::BadRequest,
        format!(
            "{kind} with key {} already exists for logged model {}",
            python_repr(key),
            python_repr(model_id)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(field_name: &str, ascending: bool) -> TokenOrderBy {
        TokenOrderBy {
            field_name: field_name.to_owned(),
            ascending,
            dataset_name: None,
            dataset_digest: None,
        }
    }

    #[test]
    fn page_tokens_match_mlflow() {
        // Made by MLflow 3.17.2's server for `{"experiment_ids": ["1"], "max_results": 2}`.
        assert_eq!(
            PageToken::encode(&["1".to_owned()], None, &[], 2),
            "eyJleHBlcmltZW50X2lkcyI6IFsiMSJdLCAiZmlsdGVyX3N0cmluZyI6IG51bGwsICJvcmRlcl9ieSI6IG51bGwsICJvZmZzZXQiOiAyfQ=="
        );
        let token = PageToken::encode(
            &["1".to_owned(), "2".to_owned()],
            Some("name = 'é\"'"),
            &[order("metrics.acc", false)],
            4,
        );
        let json = String::from_utf8(STANDARD.decode(&token).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"experiment_ids": ["1", "2"], "filter_string": "name = '\u00e9\"'", "order_by": [{"field_name": "metrics.acc", "ascending": false, "dataset_name": null, "dataset_digest": null}], "offset": 4}"#
        );
        let offset = PageToken::decode(&token)
            .unwrap()
            .validate(
                &["1".to_owned(), "2".to_owned()],
                Some("name = 'é\"'"),
                &[order("metrics.acc", false)],
            )
            .unwrap();
        assert_eq!(offset, 4);
    }

    #[test]
    fn page_tokens_of_another_search_are_refused_with_mlflow_messages() {
        let token = PageToken::encode(&["1".to_owned()], None, &[], 2);
        let mismatch = |ids: &[&str], filter: Option<&str>, order_by: &[TokenOrderBy]| {
            let ids: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
            PageToken::decode(&token)
                .unwrap()
                .validate(&ids, filter, order_by)
                .unwrap_err()
                .message
        };
        assert_eq!(
            mismatch(&["2"], None, &[]),
            "Experiment IDs in the page token do not match the requested experiment IDs. Expected: ['2']. \
             Found: ['1']"
        );
        assert_eq!(
            mismatch(&["1"], Some("name = 'x'"), &[]),
            "Filter string in the page token does not match the requested filter string. Expected: \
             name = 'x'. Found: None"
        );
        assert_eq!(
            mismatch(&["1"], None, &[order("name", true)]),
            "Order by in the page token does not match the requested order by. Expected: [{'field_name': \
             'name', 'ascending': True, 'dataset_name': None, 'dataset_digest': None}]. Found: None"
        );
        // The run search token carries only an offset.
        assert!(PageToken::decode("eyJvZmZzZXQiOiAyfQ==")
            .unwrap()
            .validate(&["1".to_owned()], None, &[])
            .is_err());
        assert!(PageToken::decode("garbage").is_err());
        assert!(PageToken::decode("bm90anNvbg==").is_err());
    }

    #[test]
    fn model_names() {
        assert!(validate_logged_model_name("model").is_ok());
        assert!(validate_logged_model_name("my model-1_x").is_ok());
        assert_eq!(
            validate_logged_model_name("a/b").unwrap_err().message,
            "Invalid model name ('a/b') provided. Model name must be a non-empty string and cannot contain \
             the following characters: ('/', ':', '.', '%', '\"', \"'\")"
        );
        for name in ["", "a.b", "a:b", "50%", "it's", "\"q\""] {
            assert!(validate_logged_model_name(name).is_err(), "{name}");
        }
    }

    #[test]
    fn model_ids() {
        let id = new_logged_model_id();
        assert_eq!(id.len(), 34);
        assert!(id.starts_with("m-"));
        assert!(id[2..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn finalize_statuses() {
        assert_eq!(
            status_of(StatusInput::Name("LOGGED_MODEL_READY".into())),
            LoggedModelStatus::Ready
        );
        assert_eq!(
            status_of(StatusInput::Number(3)),
            LoggedModelStatus::UploadFailed
        );
        assert_eq!(
            status_of(StatusInput::Number(7)),
            LoggedModelStatus::Unspecified
        );
        assert_eq!(
            status_of(StatusInput::Name("BOGUS".into())),
            LoggedModelStatus::Unspecified
        );
    }
}
