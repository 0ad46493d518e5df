//! Webhook messages (webhooks.proto): `Webhook`, its events and the requests and responses of the
//! `/webhooks` endpoints, with MLflow's JSON names. Enums are written by name (`MODEL_VERSION`,
//! `CREATED`, `ACTIVE`); a webhook's secret is accepted but never written back.

use crate::lenient;
use serde::{Deserialize, Serialize};

/// One event a webhook subscribes to, as the wire carries it: enum names (or numbers, read leniently).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEventMessage {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub entity: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub action: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    pub webhook_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub url: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<WebhookEventMessage>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookTestResult {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CreateWebhook {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub events: Vec<WebhookEventMessage>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub status: Option<String>,
}

/// `PATCH /webhooks/{webhook_id}`: absent fields are left as they are.
#[derive(Debug, Default, Deserialize)]
pub struct UpdateWebhook {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub events: Vec<WebhookEventMessage>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListWebhooks {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub max_results: Option<i64>,
    #[serde(default)]
    pub page_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TestWebhook {
    #[serde(default)]
    pub event: Option<WebhookEventMessage>,
}

#[derive(Debug, Serialize)]
pub struct WebhookResponse {
    pub webhook: Webhook,
}

#[derive(Debug, Default, Serialize)]
pub struct ListWebhooksResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TestWebhookResponse {
    pub result: WebhookTestResult,
}
