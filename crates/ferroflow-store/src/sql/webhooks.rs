//! `WebhookStore` on SQLite, PostgreSQL and MySQL in MLflow 3.17's `webhooks` and `webhook_events`
//! tables. The secret column holds what the service gives (a Fernet token); deletes are soft
//! (`deleted_timestamp`).

use super::connection::{db_error, query, Pools, Row};
use super::{placeholders, SqlStore};
use crate::search::Dialect;
use async_trait::async_trait;
use ferroflow_core::webhooks::{
    WebhookAction, WebhookChanges, WebhookEntity, WebhookEvent, WebhookPage, WebhookRecord,
    WebhookStore,
};
use ferroflow_core::Result;
use std::collections::HashMap;

const COLUMNS: &str = "webhook_id, name, description, url, status, secret, creation_timestamp, \
                       last_updated_timestamp";

fn record_from_row(row: &Row) -> Result<WebhookRecord> {
    Ok(WebhookRecord {
        webhook_id: row.get("webhook_id")?,
        name: row.get("name")?,
        description: row.get("description")?,
        url: row.get("url")?,
        events: Vec::new(),
        status: row.get("status")?,
        secret_token: row.get("secret")?,
        creation_timestamp: row.get::<Option<i64>>("creation_timestamp")?.unwrap_or(0),
        last_updated_timestamp: row
            .get::<Option<i64>>("last_updated_timestamp")?
            .unwrap_or(0),
    })
}

/// Fills in each webhook's events, in the order MLflow reads them back.
async fn load_events(pools: &Pools, records: &mut [WebhookRecord]) -> Result<()> {
    let order = match pools.dialect() {
        Dialect::Sqlite => "rowid",
        Dialect::Postgres => "ctid",
        Dialect::MySql => "webhook_id, entity, action",
    };
    let ids: Vec<String> = records
        .iter()
        .map(|record| record.webhook_id.clone())
        .collect();
    let mut events: HashMap<String, Vec<WebhookEvent>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT webhook_id, entity, action FROM webhook_events WHERE webhook_id IN ({}) ORDER BY {order}",
            placeholders(chunk.len())
        );
        for row in pools
            .fetch_all(query(sql).bind_each(chunk.iter().map(String::as_str)))
            .await
            .map_err(db_error)?
        {
            let entity: String = row.get("entity")?;
            let action: String = row.get("action")?;
            // Rows another version of MLflow may add for events this one does not know are skipped.
            if let (Some(entity), Some(action)) =
                (WebhookEntity::parse(&entity), WebhookAction::parse(&action))
            {
                if let Ok(event) = WebhookEvent::new(entity, action) {
                    events
                        .entry(row.get("webhook_id")?)
                        .or_default()
                        .push(event);
                }
            }
        }
    }
    for record in records {
        record.events = events.remove(&record.webhook_id).unwrap_or_default();
    }
    Ok(())
}

impl SqlStore {
    async fn live_webhook(&self, webhook_id: &str) -> Result<Option<WebhookRecord>> {
        let row = self
            .pools
            .fetch_optional(
                query(format!(
                    "SELECT {COLUMNS} FROM webhooks WHERE webhook_id = ? AND deleted_timestamp IS NULL"
                ))
                .bind(webhook_id),
            )
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut records = vec![record_from_row(&row)?];
        load_events(&self.pools, &mut records).await?;
        Ok(records.pop())
    }
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn create_webhook(&self, webhook: WebhookRecord) -> Result<()> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        transaction
            .execute(
                query(
                    "INSERT INTO webhooks (webhook_id, name, description, url, status, secret, \
                     creation_timestamp, last_updated_timestamp, deleted_timestamp, workspace) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 'default')",
                )
                .bind(webhook.webhook_id.as_str())
                .bind(webhook.name.as_str())
                .bind(webhook.description.as_deref())
                .bind(webhook.url.as_str())
                .bind(webhook.status.as_str())
                .bind(webhook.secret_token.as_deref())
                .bind(webhook.creation_timestamp)
                .bind(webhook.last_updated_timestamp),
            )
            .await
            .map_err(db_error)?;
        for event in &webhook.events {
            transaction
                .execute(
                    query(
                        "INSERT INTO webhook_events (webhook_id, entity, action) VALUES (?, ?, ?)",
                    )
                    .bind(webhook.webhook_id.as_str())
                    .bind(event.entity.value())
                    .bind(event.action.value()),
                )
                .await
                .map_err(db_error)?;
        }
        transaction.commit().await.map_err(db_error)
    }

    async fn get_webhook(&self, webhook_id: &str) -> Result<Option<WebhookRecord>> {
        self.live_webhook(webhook_id).await
    }

    async fn list_webhooks(&self, max_results: usize, offset: usize) -> Result<WebhookPage> {
        let limit = i64::try_from(max_results).unwrap_or(i64::MAX - 1) + 1;
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = self
            .pools
            .fetch_all(
                query(format!(
                    "SELECT {COLUMNS} FROM webhooks WHERE deleted_timestamp IS NULL \
                     ORDER BY creation_timestamp DESC, webhook_id LIMIT ? OFFSET ?"
                ))
                .bind(limit)
                .bind(offset),
            )
            .await
            .map_err(db_error)?;
        let has_more = rows.len() > max_results;
        let mut webhooks = rows
            .iter()
            .take(max_results)
            .map(record_from_row)
            .collect::<Result<Vec<_>>>()?;
        load_events(&self.pools, &mut webhooks).await?;
        Ok(WebhookPage { webhooks, has_more })
    }

    async fn list_webhooks_by_event(&self, event: WebhookEvent) -> Result<Vec<WebhookRecord>> {
        let rows = self
            .pools
            .fetch_all(
                query(format!(
                    "SELECT {COLUMNS} FROM webhooks WHERE deleted_timestamp IS NULL AND webhook_id IN \
                     (SELECT webhook_id FROM webhook_events WHERE entity = ? AND action = ?) \
                     ORDER BY creation_timestamp DESC, webhook_id"
                ))
                .bind(event.entity.value())
                .bind(event.action.value()),
            )
            .await
            .map_err(db_error)?;
        let mut webhooks = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>>>()?;
        load_events(&self.pools, &mut webhooks).await?;
        Ok(webhooks)
    }

    async fn update_webhook(
        &self,
        webhook_id: &str,
        changes: WebhookChanges,
    ) -> Result<Option<WebhookRecord>> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let updated = transaction
            .execute(
                query(
                    "UPDATE webhooks SET name = COALESCE(?, name), description = COALESCE(?, description), \
                     url = COALESCE(?, url), status = COALESCE(?, status), secret = COALESCE(?, secret), \
                     last_updated_timestamp = ? WHERE webhook_id = ? AND deleted_timestamp IS NULL",
                )
                .bind(changes.name.as_deref())
                .bind(changes.description.as_deref())
                .bind(changes.url.as_deref())
                .bind(changes.status.as_deref())
                .bind(changes.secret_token.as_deref())
                .bind(changes.now)
                .bind(webhook_id),
            )
            .await
            .map_err(db_error)?;
        if updated.rows_affected == 0 {
            return Ok(None);
        }
        if let Some(events) = &changes.events {
            transaction
                .execute(query("DELETE FROM webhook_events WHERE webhook_id = ?").bind(webhook_id))
                .await
                .map_err(db_error)?;
            for event in events {
                transaction
                    .execute(
                        query(
                            "INSERT INTO webhook_events (webhook_id, entity, action) VALUES (?, ?, ?)",
                        )
                        .bind(webhook_id)
                        .bind(event.entity.value())
                        .bind(event.action.value()),
                    )
                    .await
                    .map_err(db_error)?;
            }
        }
        transaction.commit().await.map_err(db_error)?;
        self.live_webhook(webhook_id).await
    }

    async fn delete_webhook(&self, webhook_id: &str, now: i64) -> Result<bool> {
        let updated = self
            .pools
            .execute(
                query(
                    "UPDATE webhooks SET deleted_timestamp = ?, last_updated_timestamp = ? \
                     WHERE webhook_id = ? AND deleted_timestamp IS NULL",
                )
                .bind(now)
                .bind(now)
                .bind(webhook_id),
            )
            .await
            .map_err(db_error)?;
        Ok(updated.rows_affected > 0)
    }
}
