//! Model registry messages (model_registry.proto): `RegisteredModel`, `ModelVersion`, their tags and
//! aliases, and the requests and responses of the `/registered-models` and `/model-versions` endpoints,
//! with MLflow's JSON names.
//!
//! As everywhere in this crate, responses omit unset optional fields and empty lists, and int64 are JSON
//! numbers. A model version's `version` is a string on the wire (an integer in the table). Fields MLflow
//! stores as `""` when the client sent none (a version's `description`, `run_id`, `run_link`) are
//! `Some("")` and are written.

use crate::lenient;
use crate::tracking::KeyValueInput;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredModelTag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersionTag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// An alias of a registered model and the version it points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisteredModelAlias {
    pub alias: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<ModelVersionTag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_link: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

impl ModelVersion {
    /// The version as the integer the table holds; 0 for a version that is no integer (none is stored).
    pub fn version_number(&self) -> i64 {
        self.version.parse().unwrap_or(0)
    }

    /// The value of a tag, if the version has it.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|tag| tag.key == key)
            .map(|tag| tag.value.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisteredModel {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The latest version of each stage.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latest_versions: Vec<ModelVersion>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<RegisteredModelTag>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<RegisteredModelAlias>,
}

impl RegisteredModel {
    /// The value of a tag, if the model has it.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|tag| tag.key == key)
            .map(|tag| tag.value.as_str())
    }
}

// ---------------------------------------------------------------------------------------------------------
// Requests. Every field is optional on the wire; the service reports a missing one with MLflow's message.
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct CreateRegisteredModel {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub tags: Vec<KeyValueInput>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub deployment_job_id: Option<String>,
}

/// get, delete: only the name.
#[derive(Debug, Default, Deserialize)]
pub struct RegisteredModelName {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RenameRegisteredModel {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub new_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct UpdateRegisteredModel {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub deployment_job_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchRegisteredModels {
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub max_results: Option<i64>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub order_by: Vec<String>,
    #[serde(default)]
    pub page_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct GetLatestVersions {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub stages: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SetRegisteredModelTag {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteRegisteredModelTag {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
}

/// set (with `version`), get and delete of an alias.
#[derive(Debug, Default, Deserialize)]
pub struct RegisteredModelAliasRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CreateModelVersion {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub tags: Vec<KeyValueInput>,
    #[serde(default)]
    pub run_link: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub model_id: Option<String>,
}

/// get, delete and get-download-uri: a name and a version.
#[derive(Debug, Default, Deserialize)]
pub struct ModelVersionKey {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct UpdateModelVersion {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TransitionModelVersionStage {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub version: Option<String>,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub archive_existing_versions: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchModelVersions {
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub max_results: Option<i64>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub order_by: Vec<String>,
    #[serde(default)]
    pub page_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SetModelVersionTag {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub version: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteModelVersionTag {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub version: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------
// Responses.
// ---------------------------------------------------------------------------------------------------------

/// The answer of create, get, rename and update of a registered model.
#[derive(Debug, Serialize)]
pub struct RegisteredModelResponse {
    pub registered_model: RegisteredModel,
}

#[derive(Debug, Default, Serialize)]
pub struct SearchRegisteredModelsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registered_models: Vec<RegisteredModel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// The answer of create, get, update, transition-stage and alias lookup of a model version.
#[derive(Debug, Serialize)]
pub struct ModelVersionResponse {
    pub model_version: ModelVersion,
}

/// The answer of get-latest-versions and search of model versions.
#[derive(Debug, Default, Serialize)]
pub struct ModelVersionsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_versions: Vec<ModelVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ModelVersionDownloadUriResponse {
    pub artifact_uri: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_version_serializes_like_mlflow() {
        let version = ModelVersion {
            name: "m".into(),
            version: "1".into(),
            creation_timestamp: Some(5),
            last_updated_timestamp: Some(5),
            user_id: None,
            current_stage: Some("None".into()),
            description: Some(String::new()),
            source: Some("models:/m-1".into()),
            run_id: Some(String::new()),
            status: Some("READY".into()),
            status_message: None,
            tags: Vec::new(),
            run_link: Some(String::new()),
            aliases: vec!["champion".into()],
        };
        assert_eq!(
            serde_json::to_string(&version).unwrap(),
            r#"{"name":"m","version":"1","creation_timestamp":5,"last_updated_timestamp":5,"current_stage":"None","description":"","source":"models:/m-1","run_id":"","status":"READY","run_link":"","aliases":["champion"]}"#
        );
        assert_eq!(version.version_number(), 1);
    }

    #[test]
    fn requests_accept_numbers_for_versions() {
        let request: ModelVersionKey =
            serde_json::from_str(r#"{"name": "m", "version": 3}"#).unwrap();
        assert_eq!(request.version.as_deref(), Some("3"));
        let request: GetLatestVersions =
            serde_json::from_str(r#"{"name": "m", "stages": "Production"}"#).unwrap();
        assert_eq!(request.stages, vec!["Production"]);
    }
}
