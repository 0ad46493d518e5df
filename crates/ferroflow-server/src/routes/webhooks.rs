//! The registry webhook endpoints (`/webhooks`): CRUD through the `WebhookService`, and the test
//! delivery, which sends the event's example payload at once and answers how the receiver replied.

use crate::error::{ApiError, ApiResult};
use crate::extract::MlflowRequest;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::routing::{get, post, MethodRouter};
use axum::Json;
use ferroflow_proto::tracking::Empty;
use ferroflow_proto::webhooks::{
    CreateWebhook, ListWebhooks, ListWebhooksResponse, TestWebhook, TestWebhookResponse,
    UpdateWebhook, WebhookResponse,
};

/// The webhook routes, relative to `/api/2.0/mlflow` (and `/ajax-api/2.0/mlflow`).
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/webhooks", post(create_webhook).get(list_webhooks)),
        (
            "/webhooks/{webhook_id}",
            get(get_webhook)
                .patch(update_webhook)
                .delete(delete_webhook),
        ),
        ("/webhooks/{webhook_id}/test", post(test_webhook)),
    ]
}

/// The `{webhook_id}` of the path; a segment that is not UTF-8 answers MLflow's error JSON.
struct WebhookId(String);

impl<S: Send + Sync> FromRequestParts<S> for WebhookId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(webhook_id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                ApiError::invalid_parameter(format!("Invalid path parameter: {rejection}"))
            })?;
        Ok(Self(webhook_id))
    }
}

async fn create_webhook(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<CreateWebhook>,
) -> ApiResult<Json<WebhookResponse>> {
    Ok(Json(state.webhooks.create_webhook(request).await?))
}

async fn list_webhooks(
    State(state): State<AppState>,
    MlflowRequest(request): MlflowRequest<ListWebhooks>,
) -> ApiResult<Json<ListWebhooksResponse>> {
    Ok(Json(state.webhooks.list_webhooks(request).await?))
}

async fn get_webhook(
    State(state): State<AppState>,
    WebhookId(webhook_id): WebhookId,
) -> ApiResult<Json<WebhookResponse>> {
    Ok(Json(state.webhooks.get_webhook(&webhook_id).await?))
}

async fn update_webhook(
    State(state): State<AppState>,
    WebhookId(webhook_id): WebhookId,
    MlflowRequest(request): MlflowRequest<UpdateWebhook>,
) -> ApiResult<Json<WebhookResponse>> {
    Ok(Json(
        state.webhooks.update_webhook(&webhook_id, request).await?,
    ))
}

async fn delete_webhook(
    State(state): State<AppState>,
    WebhookId(webhook_id): WebhookId,
) -> ApiResult<Json<Empty>> {
    Ok(Json(state.webhooks.delete_webhook(&webhook_id).await?))
}

async fn test_webhook(
    State(state): State<AppState>,
    WebhookId(webhook_id): WebhookId,
    MlflowRequest(request): MlflowRequest<TestWebhook>,
) -> ApiResult<Json<TestWebhookResponse>> {
    let (target, event) = state.webhooks.test_target(&webhook_id, request).await?;
    Ok(Json(TestWebhookResponse {
        result: state.webhook_deliverer.test(&target, event).await,
    }))
}
