//! Logged model messages (MLflow 3, service.proto): `LoggedModel` and the requests and responses of the
//! `/logged-models` endpoints, with MLflow's JSON names.
//!
//! As everywhere in this crate, responses omit unset optional fields and empty lists, enums are written by
//! name and int64 as JSON numbers. A field MLflow sets to `""` (a logged model's `model_type` and
//! `source_run_id` when the client sent none) is `Some("")` and is written.

use crate::lenient;
use crate::tracking::{KeyValueInput, Metric};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// `LoggedModelStatus`: where a logged model is in its upload. Stored as its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoggedModelStatus {
    Unspecified,
    Pending,
    Ready,
    UploadFailed,
}

impl LoggedModelStatus {
    /// The enum name, as MLflow writes it in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            LoggedModelStatus::Unspecified => "LOGGED_MODEL_STATUS_UNSPECIFIED",
            LoggedModelStatus::Pending => "LOGGED_MODEL_PENDING",
            LoggedModelStatus::Ready => "LOGGED_MODEL_READY",
            LoggedModelStatus::UploadFailed => "LOGGED_MODEL_UPLOAD_FAILED",
        }
    }

    /// The enum number, as the `logged_models.status` column holds it.
    pub fn number(self) -> i64 {
        match self {
            LoggedModelStatus::Unspecified => 0,
            LoggedModelStatus::Pending => 1,
            LoggedModelStatus::Ready => 2,
            LoggedModelStatus::UploadFailed => 3,
        }
    }

    /// The status of an enum number; `None` for a number MLflow does not know.
    pub fn from_number(number: i64) -> Option<Self> {
        match number {
            0 => Some(LoggedModelStatus::Unspecified),
            1 => Some(LoggedModelStatus::Pending),
            2 => Some(LoggedModelStatus::Ready),
            3 => Some(LoggedModelStatus::UploadFailed),
            _ => None,
        }
    }

    /// The status of an enum name; `None` for a name MLflow does not know.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "LOGGED_MODEL_STATUS_UNSPECIFIED" => Some(LoggedModelStatus::Unspecified),
            "LOGGED_MODEL_PENDING" => Some(LoggedModelStatus::Pending),
            "LOGGED_MODEL_READY" => Some(LoggedModelStatus::Ready),
            "LOGGED_MODEL_UPLOAD_FAILED" => Some(LoggedModelStatus::UploadFailed),
            _ => None,
        }
    }
}

impl Serialize for LoggedModelStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedModelTag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedModelParameter {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// A registered model version made from a logged model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModelRegistrationInfo {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModelInfo {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp_ms: Option<i64>,
    pub artifact_uri: String,
    pub status: LoggedModelStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<LoggedModelTag>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registrations: Vec<LoggedModelRegistrationInfo>,
}

/// A logged model's params and the metrics linked to it; each metric carries its `model_id` and `run_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoggedModelData {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<LoggedModelParameter>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModel {
    pub info: LoggedModelInfo,
    pub data: LoggedModelData,
}

// ---------------------------------------------------------------------------------------------------------
// Requests. As in `tracking`, every field is optional on the wire and the service reports a missing one.
// The `{model_id}` of a route is a path parameter; some messages repeat it in the body.
// ---------------------------------------------------------------------------------------------------------

/// A `status` as the client may send it: the enum name, its number, or the number as a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusInput {
    Name(String),
    Number(i64),
}

/// Deserializes an optional enum field that may be a name, a number or a decimal string.
pub fn opt_status<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<StatusInput>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Integer(i64),
        Text(String),
    }
    match Option::<Raw>::deserialize(deserializer) {
        Ok(None) => Ok(None),
        Ok(Some(Raw::Text(text))) if text.is_empty() => Ok(None),
        Ok(Some(Raw::Text(text))) => Ok(Some(match text.trim().parse::<i64>() {
            Ok(number) => StatusInput::Number(number),
            Err(_) => StatusInput::Name(text),
        })),
        Ok(Some(Raw::Integer(number))) => Ok(Some(StatusInput::Number(number))),
        Err(_) => Err(de::Error::custom("Value was of type 'number' or 'bool'")),
    }
}

/// A repeated field that is `Some` whenever the field is present and not null, even as an empty list.
fn present_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    struct List(#[serde(deserialize_with = "lenient::one_or_many")] Vec<String>);
    Ok(Option::<List>::deserialize(deserializer)?.map(|list| list.0))
}

#[derive(Debug, Default, Deserialize)]
pub struct CreateLoggedModel {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub experiment_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(default)]
    pub source_run_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub params: Vec<KeyValueInput>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub tags: Vec<KeyValueInput>,
}

/// `GET /logged-models/{model_id}`: the query may ask for a deleted model too. MLflow reads the raw
/// query value and takes anything but `true` (any case) as false.
#[derive(Debug, Default, Deserialize)]
pub struct GetLoggedModel {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub allow_deleted: Option<String>,
}

/// `PATCH /logged-models/{model_id}`: MLflow finalizes the model named in the body.
#[derive(Debug, Default, Deserialize)]
pub struct FinalizeLoggedModel {
    #[serde(default)]
    pub model_id: Option<String>,
    #[serde(default, deserialize_with = "opt_status")]
    pub status: Option<StatusInput>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SetLoggedModelTags {
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub tags: Vec<KeyValueInput>,
}

/// `POST /logged-models/{model_id}/params`: `model_id` is required in the body as well.
#[derive(Debug, Default, Deserialize)]
pub struct LogLoggedModelParams {
    #[serde(default)]
    pub model_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub params: Vec<KeyValueInput>,
}

/// A dataset that scopes the metric filters of a search.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchLoggedModelsDataset {
    #[serde(default)]
    pub dataset_name: Option<String>,
    #[serde(default)]
    pub dataset_digest: Option<String>,
}

/// One `order_by` item of a search. `ascending` defaults to true.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchLoggedModelsOrderBy {
    #[serde(default)]
    pub field_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub ascending: Option<bool>,
    #[serde(default)]
    pub dataset_name: Option<String>,
    #[serde(default)]
    pub dataset_digest: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchLoggedModels {
    /// `None` when the field is absent: MLflow requires the field, but accepts an empty list.
    #[serde(default, deserialize_with = "present_list")]
    pub experiment_ids: Option<Vec<String>>,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub datasets: Vec<SearchLoggedModelsDataset>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub max_results: Option<i64>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub order_by: Vec<SearchLoggedModelsOrderBy>,
    #[serde(default)]
    pub page_token: Option<String>,
}

/// `GET /logged-models/{model_id}/artifacts/directories`.
#[derive(Debug, Default, Deserialize)]
pub struct ListLoggedModelArtifacts {
    #[serde(default)]
    pub artifact_directory_path: Option<String>,
    #[serde(default)]
    pub page_token: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------
// Responses.
// ---------------------------------------------------------------------------------------------------------

/// The answer of create, get and finalize.
#[derive(Debug, Serialize)]
pub struct LoggedModelResponse {
    pub model: LoggedModel,
}

#[derive(Debug, Default, Serialize)]
pub struct SearchLoggedModelsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<LoggedModel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> LoggedModel {
        LoggedModel {
            info: LoggedModelInfo {
                model_id: "m-1".into(),
                experiment_id: "1".into(),
                name: "model".into(),
                creation_timestamp_ms: Some(5),
                last_updated_timestamp_ms: Some(6),
                artifact_uri: "mlflow-artifacts:/1/models/m-1/artifacts".into(),
                status: LoggedModelStatus::Pending,
                creator_id: None,
                model_type: Some(String::new()),
                source_run_id: None,
                status_message: None,
                tags: Vec::new(),
                registrations: Vec::new(),
            },
            data: LoggedModelData::default(),
        }
    }

    #[test]
    fn model_serializes_like_mlflow() {
        assert_eq!(
            serde_json::to_string(&model()).unwrap(),
            r#"{"info":{"model_id":"m-1","experiment_id":"1","name":"model","creation_timestamp_ms":5,"last_updated_timestamp_ms":6,"artifact_uri":"mlflow-artifacts:/1/models/m-1/artifacts","status":"LOGGED_MODEL_PENDING","model_type":""},"data":{}}"#
        );
    }

    #[test]
    fn status_names_and_numbers_round_trip() {
        for number in 0..4 {
            let status = LoggedModelStatus::from_number(number).unwrap();
            assert_eq!(status.number(), number);
            assert_eq!(LoggedModelStatus::from_name(status.as_str()), Some(status));
        }
        assert_eq!(LoggedModelStatus::from_number(4), None);
    }

    #[test]
    fn status_input_accepts_names_and_numbers() {
        let parse = |json: &str| {
            serde_json::from_str::<FinalizeLoggedModel>(json)
                .unwrap()
                .status
        };
        assert_eq!(
            parse(r#"{"status":"LOGGED_MODEL_READY"}"#),
            Some(StatusInput::Name("LOGGED_MODEL_READY".into()))
        );
        assert_eq!(parse(r#"{"status":3}"#), Some(StatusInput::Number(3)));
        assert_eq!(parse(r#"{"status":"2"}"#), Some(StatusInput::Number(2)));
        assert_eq!(parse(r#"{"status":""}"#), None);
        assert_eq!(parse(r#"{}"#), None);
    }

    #[test]
    fn experiment_ids_distinguish_absent_from_empty() {
        let parse = |json: &str| {
            serde_json::from_str::<SearchLoggedModels>(json)
                .unwrap()
                .experiment_ids
        };
        assert_eq!(parse(r#"{}"#), None);
        assert_eq!(parse(r#"{"experiment_ids": null}"#), None);
        assert_eq!(parse(r#"{"experiment_ids": []}"#), Some(vec![]));
        assert_eq!(
            parse(r#"{"experiment_ids": ["1"]}"#),
            Some(vec!["1".to_owned()])
        );
        assert_eq!(
            parse(r#"{"experiment_ids": "1"}"#),
            Some(vec!["1".to_owned()])
        );
    }
}
