//! Registry webhooks: the [`WebhookStore`] trait, the [`WebhookService`] that validates the `/webhooks`
//! requests as MLflow 3.17 does, and the two seams the server fills in: [`UrlGuard`] (may the server
//! connect to this URL? it resolves host names, which core does not) and [`RegistryEvents`] (deliver an
//! event, in the background).
//!
//! Secrets are stored as Fernet tokens under the configured key, as MLflow stores them, and never
//! answered. Deleting a webhook is a soft delete (`deleted_timestamp`).

use crate::error::{Error, Result};
use crate::fernet::FernetKey;
use crate::ids::{decode_page_token, encode_page_token, now_millis};
use async_trait::async_trait;
use ferroflow_proto::tracking::Empty;
use ferroflow_proto::webhooks::{
    CreateWebhook, ListWebhooks, ListWebhooksResponse, TestWebhook, UpdateWebhook, Webhook,
    WebhookEventMessage, WebhookResponse,
};
use std::sync::Arc;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEntity {
    RegisteredModel,
    ModelVersion,
    ModelVersionTag,
    ModelVersionAlias,
    Prompt,
    PromptVersion,
    PromptTag,
    PromptVersionTag,
    PromptAlias,
    BudgetPolicy,
}

/// What happened to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookAction {
    Created,
    Updated,
    Deleted,
    Set,
    Exceeded,
}

const ENTITIES: [(WebhookEntity, &str, i64); 10] = [
    (WebhookEntity::RegisteredModel, "registered_model", 1),
    (WebhookEntity::ModelVersion, "model_version", 2),
    (WebhookEntity::ModelVersionTag, "model_version_tag", 3),
    (WebhookEntity::ModelVersionAlias, "model_version_alias", 4),
    (WebhookEntity::Prompt, "prompt", 5),
    (WebhookEntity::PromptVersion, "prompt_version", 6),
    (WebhookEntity::PromptTag, "prompt_tag", 7),
    (WebhookEntity::PromptVersionTag, "prompt_version_tag", 8),
    (WebhookEntity::PromptAlias, "prompt_alias", 9),
    (WebhookEntity::BudgetPolicy, "budget_policy", 10),
];

const ACTIONS: [(WebhookAction, &str, i64); 5] = [
    (WebhookAction::Created, "created", 1),
    (WebhookAction::Updated, "updated", 2),
    (WebhookAction::Deleted, "deleted", 3),
    (WebhookAction::Set, "set", 4),
    (WebhookAction::Exceeded, "exceeded", 5),
];

impl WebhookEntity {
    /// The value MLflow stores and delivers (`model_version`).
    pub fn value(self) -> &'static str {
        ENTITIES
            .iter()
            .find(|(entity, _, _)| *entity == self)
            .map_or("", |(_, value, _)| value)
    }

    /// Reads a stored value, a proto enum name (`MODEL_VERSION`) or its number.
    pub fn parse(text: &str) -> Option<Self> {
        ENTITIES
            .iter()
            .find(|(_, value, number)| {
                text == *value
                    || text.eq_ignore_ascii_case(value)
                    || text.parse::<i64>().ok() == Some(*number)
            })
            .map(|(entity, _, _)| *entity)
    }

    /// The actions MLflow allows with this entity.
    pub fn valid_actions(self) -> &'static [WebhookAction] {
        match self {
            WebhookEntity::RegisteredModel
            | WebhookEntity::ModelVersion
            | WebhookEntity::Prompt
            | WebhookEntity::PromptVersion => &[WebhookAction::Created],
            WebhookEntity::ModelVersionTag
            | WebhookEntity::PromptTag
            | WebhookEntity::PromptVersionTag => &[WebhookAction::Deleted, WebhookAction::Set],
            WebhookEntity::ModelVersionAlias | WebhookEntity::PromptAlias => {
                &[WebhookAction::Created, WebhookAction::Deleted]
            }
            WebhookEntity::BudgetPolicy => &[WebhookAction::Exceeded],
        }
    }
}

impl WebhookAction {
    pub fn value(self) -> &'static str {
        ACTIONS
            .iter()
            .find(|(action, _, _)| *action == self)
            .map_or("", |(_, value, _)| value)
    }

    pub fn parse(text: &str) -> Option<Self> {
        ACTIONS
            .iter()
            .find(|(_, value, number)| {
                text.eq_ignore_ascii_case(value) || text.parse::<i64>().ok() == Some(*number)
            })
            .map(|(action, _, _)| *action)
    }
}

/// A valid (entity, action) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WebhookEvent {
    pub entity: WebhookEntity,
    pub action: WebhookAction,
}

impl WebhookEvent {
    /// The pair, when MLflow allows it; its message otherwise.
    pub fn new(entity: WebhookEntity, action: WebhookAction) -> Result<Self> {
        if !entity.valid_actions().contains(&action) {
            let mut valid: Vec<&str> = entity
                .valid_actions()
                .iter()
                .map(|action| action.value())
                .collect();
            valid.sort_unstable();
            let listed: Vec<String> = valid.iter().map(|value| format!("'{value}'")).collect();
            return Err(Error::invalid_parameter(format!(
                "Invalid action '{}' for entity '{}'. Valid actions are: [{}]",
                action.value(),
                entity.value(),
                listed.join(", ")
            )));
        }
        Ok(Self { entity, action })
    }

    fn from_message(message: &WebhookEventMessage) -> Result<Self> {
        let entity_text = message.entity.as_deref().unwrap_or("");
        let action_text = message.action.as_deref().unwrap_or("");
        let entity = WebhookEntity::parse(entity_text).ok_or_else(|| {
            Error::invalid_parameter(format!("Invalid webhook entity: '{entity_text}'"))
        })?;
        let action = WebhookAction::parse(action_text).ok_or_else(|| {
            Error::invalid_parameter(format!("Invalid webhook action: '{action_text}'"))
        })?;
        Self::new(entity, action)
    }

    fn to_message(self) -> WebhookEventMessage {
        WebhookEventMessage {
            entity: Some(self.entity.value().to_uppercase()),
            action: Some(self.action.value().to_uppercase()),
        }
    }
}

/// A webhook as stored: the secret is its Fernet token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub webhook_id: String,
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    /// `ACTIVE` or `DISABLED`.
    pub status: String,
    pub secret_token: Option<String>,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
}

/// The fields an update changes; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<WebhookEvent>>,
    pub status: Option<String>,
    pub secret_token: Option<String>,
    pub now: i64,
}

/// One page of webhooks.
#[derive(Debug, Clone)]
pub struct WebhookPage {
    pub webhooks: Vec<WebhookRecord>,
    pub has_more: bool,
}

/// Webhooks and their events in MLflow's `webhooks` and `webhook_events` tables.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Creates the webhook and its events in one transaction.
    async fn create_webhook(&self, webhook: WebhookRecord) -> Result<()>;
    /// The webhook unless missing or deleted.
    async fn get_webhook(&self, webhook_id: &str) -> Result<Option<WebhookRecord>>;
    /// Live webhooks, newest first.
    async fn list_webhooks(&self, max_results: usize, offset: usize) -> Result<WebhookPage>;
    /// Live webhooks subscribed to the event, newest first.
    async fn list_webhooks_by_event(&self, event: WebhookEvent) -> Result<Vec<WebhookRecord>>;
    /// Applies the changes in one transaction; `None` when missing or deleted.
    async fn update_webhook(
        &self,
        webhook_id: &str,
        changes: WebhookChanges,
    ) -> Result<Option<WebhookRecord>>;
    /// Marks the webhook deleted; false when missing or deleted already.
    async fn delete_webhook(&self, webhook_id: &str, now: i64) -> Result<bool>;
}

/// Decides whether the server may send to a URL: its scheme is allowed and, unless the operator allows
/// private targets, its host resolves only to public addresses.
#[async_trait]
pub trait UrlGuard: Send + Sync + 'static {
    async fn check(&self, url: &str) -> Result<()>;
}

/// Where and how to deliver one event.
#[derive(Debug, Clone)]
pub struct DeliveryTarget {
    pub url: String,
    pub secret: Option<String>,
}

/// Sends webhook events. `emit` must return at once: delivery happens in the background.
pub trait RegistryEvents: Send + Sync + 'static {
    fn emit(&self, event: WebhookEvent, payload: serde_json::Value);
}

/// Discards events (a server without webhook delivery, and tests).
pub struct NoEvents;

impl RegistryEvents for NoEvents {
    fn emit(&self, _event: WebhookEvent, _payload: serde_json::Value) {}
}

#[derive(Clone)]
pub struct WebhookService {
    store: Arc<dyn WebhookStore>,
    guard: Arc<dyn UrlGuard>,
    key: FernetKey,
}

fn required(value: Option<String>, name: &str) -> Result<String> {
    match value {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(Error::missing_parameter(name)),
    }
}

fn webhook_not_found(webhook_id: &str) -> Error {
    Error::not_found(format!("Webhook with ID {webhook_id} not found."))
}

/// MLflow's `_validate_webhook_name`: starts and ends with a letter or digit, at most 63 characters of
/// letters, digits, `.`, `_` and `-`.
pub fn validate_webhook_name(name: &str) -> Result<()> {
    let characters: Vec<char> = name.chars().collect();
    let edge = |character: Option<&char>| character.is_some_and(|c| c.is_ascii_alphanumeric());
    let valid = !characters.is_empty()
        && characters.len() <= 63
        && edge(characters.first())
        && edge(characters.last())
        && characters
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        return Err(Error::invalid_parameter(format!(
            "Webhook name '{name}' is invalid. It must start and end with a letter or digit, be less than \
             63 characters long, and contain only letters, digits, dots (.), underscores (_), and hyphens \
             (-)."
        )));
    }
    Ok(())
}

fn parse_status(status: &str) -> Result<String> {
    match status {
        "ACTIVE" | "1" => Ok("ACTIVE".to_owned()),
        "DISABLED" | "2" => Ok("DISABLED".to_owned()),
        other => Err(Error::invalid_parameter(format!(
            "Invalid webhook status: '{other}'"
        ))),
    }
}

fn parse_events(messages: &[WebhookEventMessage]) -> Result<Vec<WebhookEvent>> {
    if messages.is_empty() {
        return Err(Error::invalid_parameter(
            "Webhook events must be a non-empty list of WebhookEvent objects: [].",
        ));
    }
    let mut events: Vec<WebhookEvent> = Vec::new();
    for message in messages {
        let event = WebhookEvent::from_message(message)?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

fn to_message(record: WebhookRecord) -> Webhook {
    Webhook {
        webhook_id: record.webhook_id,
        name: record.name,
        description: record.description.filter(|text| !text.is_empty()),
        url: record.url,
        events: record
            .events
            .into_iter()
            .map(WebhookEvent::to_message)
            .collect(),
        status: record.status,
        creation_timestamp: Some(record.creation_timestamp),
        last_updated_timestamp: Some(record.last_updated_timestamp),
    }
}

fn now_seconds() -> u64 {
    u64::try_from(now_millis() / 1000).unwrap_or(0)
}

impl WebhookService {
    pub fn new(store: Arc<dyn WebhookStore>, guard: Arc<dyn UrlGuard>, key: FernetKey) -> Self {
        Self { store, guard, key }
    }

    fn seal(&self, secret: Option<String>) -> Result<Option<String>> {
        secret
            .filter(|secret| !secret.is_empty())
            .map(|secret| {
                self.key
                    .encrypt(&secret, now_seconds())
                    .map_err(|error| Error::invalid_parameter(error.to_string()))
            })
            .transpose()
    }

    /// `POST /webhooks`.
    pub async fn create_webhook(&self, request: CreateWebhook) -> Result<WebhookResponse> {
        let name = required(request.name, "name")?;
        let url = required(request.url, "url")?;
        if request.events.is_empty() {
            return Err(Error::missing_parameter("events"));
        }
        validate_webhook_name(&name)?;
        self.guard.check(&url).await?;
        let events = parse_events(&request.events)?;
        let status = match request.status.filter(|status| !status.is_empty()) {
            Some(status) => parse_status(&status)?,
            None => "ACTIVE".to_owned(),
        };
        let now = now_millis();
        let record = WebhookRecord {
            webhook_id: uuid::Uuid::new_v4().to_string(),
            name,
            description: request.description.filter(|text| !text.is_empty()),
            url,
            events,
            status,
            secret_token: self.seal(request.secret)?,
            creation_timestamp: now,
            last_updated_timestamp: now,
        };
        self.store.create_webhook(record.clone()).await?;
        Ok(WebhookResponse {
            webhook: to_message(record),
        })
    }

    /// `GET /webhooks`.
    pub async fn list_webhooks(&self, request: ListWebhooks) -> Result<ListWebhooksResponse> {
        let max_results = match request.max_results {
            None | Some(0) => 100,
            Some(value) if (1..=1000).contains(&value) => value,
            Some(_) => {
                return Err(Error::invalid_parameter(
                    "max_results must be between 1 and 1000.",
                ))
            }
        };
        let max_results =
            usize::try_from(max_results).map_err(|_| Error::invalid_parameter("max_results"))?;
        let offset = decode_page_token(request.page_token.as_deref())?;
        let page = self.store.list_webhooks(max_results, offset).await?;
        Ok(ListWebhooksResponse {
            webhooks: page.webhooks.into_iter().map(to_message).collect(),
            next_page_token: page
                .has_more
                .then(|| encode_page_token(offset + max_results)),
        })
    }

    /// `GET /webhooks/{webhook_id}`.
    pub async fn get_webhook(&self, webhook_id: &str) -> Result<WebhookResponse> {
        let record = self
            .store
            .get_webhook(webhook_id)
            .await?
            .ok_or_else(|| webhook_not_found(webhook_id))?;
        Ok(WebhookResponse {
            webhook: to_message(record),
        })
    }

    /// `PATCH /webhooks/{webhook_id}`.
    pub async fn update_webhook(
        &self,
        webhook_id: &str,
        request: UpdateWebhook,
    ) -> Result<WebhookResponse> {
        let name = request.name.filter(|name| !name.is_empty());
        if let Some(name) = &name {
            validate_webhook_name(name)?;
        }
        let url = request.url.filter(|url| !url.is_empty());
        if let Some(url) = &url {
            self.guard.check(url).await?;
        }
        let events = if request.events.is_empty() {
            None
        } else {
            Some(parse_events(&request.events)?)
        };
        let status = request
            .status
            .filter(|status| !status.is_empty())
            .map(|status| parse_status(&status))
            .transpose()?;
        // An empty secret is stored encrypted too (MLflow does so), which turns signing off.
        let secret_token = request
            .secret
            .map(|secret| {
                self.key
                    .encrypt(&secret, now_seconds())
                    .map_err(|error| Error::invalid_parameter(error.to_string()))
            })
            .transpose()?;
        let record = self
            .store
            .update_webhook(
                webhook_id,
                WebhookChanges {
                    name,
                    description: request.description,
                    url,
                    events,
                    status,
                    secret_token,
                    now: now_millis(),
                },
            )
            .await?
            .ok_or_else(|| webhook_not_found(webhook_id))?;
        Ok(WebhookResponse {
            webhook: to_message(record),
        })
    }

    /// `DELETE /webhooks/{webhook_id}`.
    pub async fn delete_webhook(&self, webhook_id: &str) -> Result<Empty> {
        if !self.store.delete_webhook(webhook_id, now_millis()).await? {
            return Err(webhook_not_found(webhook_id));
        }
        Ok(Empty {})
    }

    /// The target and event of `POST /webhooks/{webhook_id}/test`: the request's event, else the
    /// webhook's first.
    pub async fn test_target(
        &self,
        webhook_id: &str,
        request: TestWebhook,
    ) -> Result<(DeliveryTarget, WebhookEvent)> {
        let record = self
            .store
            .get_webhook(webhook_id)
            .await?
            .ok_or_else(|| webhook_not_found(webhook_id))?;
        let event = match &request.event {
            Some(message) => WebhookEvent::from_message(message)?,
            None => *record
                .events
                .first()
                .ok_or_else(|| Error::invalid_parameter("the webhook has no events"))?,
        };
        Ok((self.target(&record)?, event))
    }

    fn target(&self, record: &WebhookRecord) -> Result<DeliveryTarget> {
        let secret = match record
            .secret_token
            .as_deref()
            .filter(|token| !token.is_empty())
        {
            Some(token) => Some(
                self.key
                    .decrypt(token)
                    .map_err(|error| Error::invalid_state(error.to_string()))?,
            )
            .filter(|secret| !secret.is_empty()),
            None => None,
        };
        Ok(DeliveryTarget {
            url: record.url.clone(),
            secret,
        })
    }

    /// The active webhooks subscribed to the event. A webhook whose secret cannot be decrypted (another
    /// key) is skipped.
    pub async fn targets_for(&self, event: WebhookEvent) -> Result<Vec<DeliveryTarget>> {
        let records = self.store.list_webhooks_by_event(event).await?;
        Ok(records
            .iter()
            .filter(|record| record.status == "ACTIVE")
            .filter_map(|record| self.target(record).ok())
            .collect())
    }
}

/// An example payload of each event, as MLflow's `test` endpoint sends.
pub fn example_payload(event: WebhookEvent) -> serde_json::Value {
    use serde_json::json;
    let tags = json!({"example_key": "example_value"});
    match (event.entity, event.action) {
        (WebhookEntity::RegisteredModel, _) => json!({"name": "example_model", "tags": tags,
            "description": "An example registered model"}),
        (WebhookEntity::ModelVersion, _) => json!({"name": "example_model", "version": "1",
            "source": "models:/123", "run_id": "abcd1234abcd5678", "tags": tags,
            "description": "An example model version"}),
        (WebhookEntity::ModelVersionTag, WebhookAction::Set) => json!({"name": "example_model",
            "version": "1", "key": "example_key", "value": "example_value"}),
        (WebhookEntity::ModelVersionTag, _) => json!({"name": "example_model", "version": "1",
            "key": "example_key"}),
        (WebhookEntity::ModelVersionAlias, WebhookAction::Created) => {
            json!({"name": "example_model",
            "alias": "example_alias", "version": "1"})
        }
        (WebhookEntity::ModelVersionAlias, _) => json!({"name": "example_model",
            "alias": "example_alias"}),
        (WebhookEntity::Prompt, _) => json!({"name": "example_prompt", "tags": tags,
            "description": "An example prompt"}),
        (WebhookEntity::PromptVersion, _) => json!({"name": "example_prompt", "version": "1",
            "template": "Hello {{name}}!", "tags": tags, "description": "An example prompt version"}),
        (WebhookEntity::PromptTag, WebhookAction::Set) => json!({"name": "example_prompt",
            "key": "example_key", "value": "example_value"}),
        (WebhookEntity::PromptTag, _) => json!({"name": "example_prompt", "key": "example_key"}),
        (WebhookEntity::PromptVersionTag, WebhookAction::Set) => json!({"name": "example_prompt",
            "version": "1", "key": "example_key", "value": "example_value"}),
        (WebhookEntity::PromptVersionTag, _) => json!({"name": "example_prompt", "version": "1",
            "key": "example_key"}),
        (WebhookEntity::PromptAlias, WebhookAction::Created) => json!({"name": "example_prompt",
            "alias": "example_alias", "version": "1"}),
        (WebhookEntity::PromptAlias, _) => {
            json!({"name": "example_prompt", "alias": "example_alias"})
        }
        (WebhookEntity::BudgetPolicy, _) => json!({"budget_policy_id": "bp-abc123",
            "budget_unit": "USD", "budget_amount": 100.0, "current_spend": 105.5,
            "duration_unit": "MONTHS", "duration_value": 1, "target_scope": "ENDPOINT",
            "workspace": "default", "target_value": "ep-abc123", "window_start": 1_704_067_200_000_i64}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_follow_mlflow() {
        assert!(WebhookEvent::new(WebhookEntity::ModelVersion, WebhookAction::Created).is_ok());
        assert_eq!(
            WebhookEvent::new(WebhookEntity::ModelVersion, WebhookAction::Set)
                .unwrap_err()
                .message,
            "Invalid action 'set' for entity 'model_version'. Valid actions are: ['created']"
        );
        assert_eq!(
            WebhookEntity::parse("MODEL_VERSION_TAG"),
            Some(WebhookEntity::ModelVersionTag)
        );
        assert_eq!(WebhookEntity::parse("2"), Some(WebhookEntity::ModelVersion));
        assert_eq!(
            WebhookAction::parse("DELETED"),
            Some(WebhookAction::Deleted)
        );
        assert_eq!(WebhookEntity::parse("nope"), None);
    }

    #[test]
    fn names() {
        assert!(validate_webhook_name("my-hook.1").is_ok());
        assert!(validate_webhook_name("-bad").is_err());
        assert!(validate_webhook_name("bad-").is_err());
        assert!(validate_webhook_name(&"a".repeat(64)).is_err());
        assert!(validate_webhook_name("a b").is_err());
    }
}
