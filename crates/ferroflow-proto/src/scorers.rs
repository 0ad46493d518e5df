//! Registered scorer messages (`Scorer` and the `/scorers` requests of service.proto), with MLflow's
//! JSON names. A scorer's `experiment_id` is an int32 in the proto, so it travels as a JSON number; the
//! online scoring configs are plain JSON in MLflow (no proto), with a string `experiment_id`.

use crate::lenient;
use serde::{Deserialize, Deserializer, Serialize};

/// One version of a registered scorer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scorer {
    pub experiment_id: i64,
    pub scorer_name: String,
    pub scorer_version: i64,
    /// The scorer as the client's `json.dumps(scorer.model_dump())`.
    pub serialized_scorer: String,
    pub creation_time: i64,
    pub scorer_id: String,
}

/// A repeated field whose presence matters (`experiment_ids` of `ListScorers`): absent is `None`.
fn present_many<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    lenient::one_or_many(deserializer).map(Some)
}

#[derive(Debug, Default, Deserialize)]
pub struct RegisterScorer {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub experiment_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub serialized_scorer: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisterScorerResponse {
    pub version: i64,
    pub scorer_id: String,
    /// A string here, unlike `Scorer.experiment_id`.
    pub experiment_id: String,
    pub name: String,
    pub serialized_scorer: String,
    pub creation_time: i64,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListScorers {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub experiment_id: Option<String>,
    #[serde(default, deserialize_with = "present_many")]
    pub experiment_ids: Option<Vec<String>>,
}

/// `GET /scorers/versions`.
#[derive(Debug, Default, Deserialize)]
pub struct ListScorerVersions {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub experiment_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// The answer of `list` and `versions`.
#[derive(Debug, Clone, Serialize)]
pub struct ScorersResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scorers: Vec<Scorer>,
}

/// `GET /scorers/get` and `DELETE /scorers/delete`: no `version` means the latest (get) or all (delete).
#[derive(Debug, Default, Deserialize)]
pub struct ScorerVersionRequest {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub experiment_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub version: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GetScorerResponse {
    pub scorer: Scorer,
}

/// `GET /scorers/online-configs?scorer_ids=…` (repeated).
#[derive(Debug, Default, Deserialize)]
pub struct GetOnlineScoringConfigs {
    #[serde(default, deserialize_with = "present_many")]
    pub scorer_ids: Option<Vec<String>>,
}

/// One row of `online_scoring_configs`, as MLflow's `OnlineScoringConfig.to_dict()` writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OnlineScoringConfig {
    pub online_scoring_config_id: String,
    pub scorer_id: String,
    #[serde(serialize_with = "lenient::ser_f64")]
    pub sample_rate: f64,
    pub experiment_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_string: Option<String>,
}

/// Always carries `configs`, empty or not, as MLflow's handler does.
#[derive(Debug, Clone, Serialize)]
pub struct OnlineScoringConfigsResponse {
    pub configs: Vec<OnlineScoringConfig>,
}
