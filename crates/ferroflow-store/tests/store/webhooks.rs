//! The webhook store suite: create with events, get, list (newest first, paged), list by event, update
//! (events replaced), and soft delete.

use crate::backends::{Backend, TestDatabase};
use ferroflow_core::webhooks::{
    WebhookAction, WebhookChanges, WebhookEntity, WebhookEvent, WebhookRecord, WebhookStore,
};

fn event(entity: WebhookEntity, action: WebhookAction) -> WebhookEvent {
    WebhookEvent::new(entity, action).unwrap()
}

fn record(webhook_id: &str, created: i64, events: Vec<WebhookEvent>) -> WebhookRecord {
    WebhookRecord {
        webhook_id: webhook_id.into(),
        name: format!("hook-{webhook_id}"),
        description: None,
        url: "https://hooks.example.com/in".into(),
        events,
        status: "ACTIVE".into(),
        secret_token: Some("token".into()),
        creation_timestamp: created,
        last_updated_timestamp: created,
    }
}

async fn webhook_lifecycle(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = database.open().await.unwrap();
    let created = event(WebhookEntity::ModelVersion, WebhookAction::Created);
    let alias = event(WebhookEntity::ModelVersionAlias, WebhookAction::Deleted);
    store
        .create_webhook(record("a", 1, vec![created, alias]))
        .await
        .unwrap();
    store
        .create_webhook(record("b", 2, vec![alias]))
        .await
        .unwrap();
    store
        .create_webhook(record("c", 3, vec![created]))
        .await
        .unwrap();

    let got = store.get_webhook("a").await.unwrap().unwrap();
    assert_eq!(got, record("a", 1, vec![created, alias]));
    assert!(store.get_webhook("zz").await.unwrap().is_none());

    let page = store.list_webhooks(2, 0).await.unwrap();
    let ids: Vec<&str> = page
        .webhooks
        .iter()
        .map(|w| w.webhook_id.as_str())
        .collect();
    assert_eq!(ids, ["c", "b"]);
    assert!(page.has_more);
    let page = store.list_webhooks(2, 2).await.unwrap();
    assert_eq!(page.webhooks.len(), 1);
    assert!(!page.has_more);

    let subscribed = store.list_webhooks_by_event(created).await.unwrap();
    let ids: Vec<&str> = subscribed.iter().map(|w| w.webhook_id.as_str()).collect();
    assert_eq!(ids, ["c", "a"]);

    let updated = store
        .update_webhook(
            "a",
            WebhookChanges {
                name: Some("renamed".into()),
                description: Some("d".into()),
                events: Some(vec![alias]),
                status: Some("DISABLED".into()),
                now: 9,
                ..WebhookChanges::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.name, "renamed");
    assert_eq!(updated.description.as_deref(), Some("d"));
    assert_eq!(updated.events, vec![alias]);
    assert_eq!(updated.status, "DISABLED");
    assert_eq!(updated.secret_token.as_deref(), Some("token"));
    assert_eq!(updated.last_updated_timestamp, 9);
    let subscribed = store.list_webhooks_by_event(created).await.unwrap();
    assert_eq!(subscribed.len(), 1);

    assert!(store.delete_webhook("a", 10).await.unwrap());
    assert!(!store.delete_webhook("a", 11).await.unwrap());
    assert!(store.get_webhook("a").await.unwrap().is_none());
    assert!(store
        .update_webhook("a", WebhookChanges::default())
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.list_webhooks(10, 0).await.unwrap().webhooks.len(), 2);
}

on_every_backend!(webhook_lifecycle);
