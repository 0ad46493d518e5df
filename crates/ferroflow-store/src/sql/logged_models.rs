//! `LoggedModelStore` on SQLite, and the rows of `logged_model_metrics` that run metrics carrying a
//! `model_id` add (called from the tracking store's metric writer, inside its transaction).

use super::{placeholders, SqliteStore};
use crate::logged_model_search;
use async_trait::async_trait;
use ferroflow_core::logged_models::{
    duplicate_key_error, LoggedModelPage, LoggedModelQuery, LoggedModelStore, NewLoggedModel,
};
use ferroflow_core::{Error, Result};
use ferroflow_proto::logged_models::{
    LoggedModel, LoggedModelData, LoggedModelInfo, LoggedModelParameter, LoggedModelStatus,
    LoggedModelTag,
};
use ferroflow_proto::tracking::Metric;
use ferroflow_proto::ErrorCode;
use sea_query::SqliteQueryBuilder;
use sea_query_binder::SqlxBinder;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use std::collections::HashMap;

/// SQLite binds at most 32766 values; load models in chunks well below that.
const CHUNK: usize = 500;

const MODEL_COLUMNS: &str =
    "model_id, experiment_id, name, artifact_location, creation_timestamp_ms, \
     last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id, status_message";

/// Maps a database failure to the client-facing error: busy or unreachable is retryable.
fn db_error(error: sqlx::Error) -> Error {
    match &error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            Error::unavailable(error)
        }
        _ => Error::internal(error),
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.is_unique_violation())
}

/// The experiment id column is an integer; the service passes the id of an existing experiment.
fn experiment_id_number(experiment_id: &str) -> Result<i64> {
    experiment_id
        .parse::<i64>()
        .map_err(|_| Error::not_found(format!("No Experiment with id={experiment_id} exists")))
}

/// A query with one bound value per id, for `IN (?, ...)` lists made by `placeholders`.
fn bind_ids<'query>(
    sql: &'query str,
    ids: &'query [String],
) -> sqlx::query::Query<'query, Sqlite, sqlx::sqlite::SqliteArguments<'query>> {
    let mut query = sqlx::query(sql);
    for id in ids {
        query = query.bind(id.as_str());
    }
    query
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|text| !text.is_empty())
}

fn info_from_row(row: &SqliteRow) -> Result<LoggedModelInfo> {
    let experiment_id: i64 = row.try_get("experiment_id").map_err(db_error)?;
    let status: i64 = row.try_get("status").map_err(db_error)?;
    Ok(LoggedModelInfo {
        model_id: row.try_get("model_id").map_err(db_error)?,
        experiment_id: experiment_id.to_string(),
        name: row.try_get("name").map_err(db_error)?,
        creation_timestamp_ms: row.try_get("creation_timestamp_ms").map_err(db_error)?,
        last_updated_timestamp_ms: row.try_get("last_updated_timestamp_ms").map_err(db_error)?,
        artifact_uri: row.try_get("artifact_location").map_err(db_error)?,
        status: LoggedModelStatus::from_number(status).unwrap_or(LoggedModelStatus::Unspecified),
        creator_id: None,
        model_type: row.try_get("model_type").map_err(db_error)?,
        source_run_id: row.try_get("source_run_id").map_err(db_error)?,
        status_message: row.try_get("status_message").map_err(db_error)?,
        tags: Vec::new(),
        registrations: Vec::new(),
    })
}

fn metric_from_row(row: &SqliteRow) -> Result<Metric> {
    let value: Option<f64> = row.try_get("metric_value").map_err(db_error)?;
    Ok(Metric {
        key: row.try_get("metric_name").map_err(db_error)?,
        value: value.unwrap_or(f64::NAN),
        timestamp: row.try_get("metric_timestamp_ms").map_err(db_error)?,
        step: row.try_get("metric_step").map_err(db_error)?,
        dataset_name: non_empty(row.try_get("dataset_name").map_err(db_error)?),
        dataset_digest: non_empty(row.try_get("dataset_digest").map_err(db_error)?),
        model_id: Some(row.try_get("model_id").map_err(db_error)?),
        run_id: non_empty(row.try_get("run_id").map_err(db_error)?),
    })
}

/// Which lifecycle stages a load includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stages {
    All,
    /// `lifecycle_stage != 'deleted'`, as MLflow filters (so a NULL stage is left out too).
    NotDeleted,
}

/// Loads the models with these ids, with tags (by key), params (by key) and metrics (in the order they
/// were logged), in the order of `ids`. Missing ids, and deleted ones unless asked for, are skipped.
async fn logged_models_by_ids(
    pool: &SqlitePool,
    ids: &[String],
    stages: Stages,
) -> Result<Vec<LoggedModel>> {
    let mut models: HashMap<String, LoggedModel> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let marks = placeholders(chunk.len());
        let stage_condition = match stages {
            Stages::All => "",
            Stages::NotDeleted => " AND lifecycle_stage != 'deleted'",
        };
        let sql = format!(
            "SELECT {MODEL_COLUMNS} FROM logged_models WHERE model_id IN ({marks}){stage_condition}"
        );
        for row in bind_ids(&sql, chunk)
            .fetch_all(pool)
            .await
            .map_err(db_error)?
        {
            let info = info_from_row(&row)?;
            models.insert(
                info.model_id.clone(),
                LoggedModel {
                    info,
                    data: LoggedModelData::default(),
                },
            );
        }
        let sql = format!(
            "SELECT model_id, tag_key, tag_value FROM logged_model_tags WHERE model_id IN ({marks}) \
             ORDER BY model_id, tag_key"
        );
        for row in bind_ids(&sql, chunk)
            .fetch_all(pool)
            .await
            .map_err(db_error)?
        {
            let model_id: String = row.try_get("model_id").map_err(db_error)?;
            if let Some(model) = models.get_mut(&model_id) {
                model.info.tags.push(LoggedModelTag {
                    key: row.try_get("tag_key").map_err(db_error)?,
                    value: row.try_get("tag_value").map_err(db_error)?,
                });
            }
        }
        let sql = format!(
            "SELECT model_id, param_key, param_value FROM logged_model_params WHERE model_id IN ({marks}) \
             ORDER BY model_id, param_key"
        );
        for row in bind_ids(&sql, chunk)
            .fetch_all(pool)
            .await
            .map_err(db_error)?
        {
            let model_id: String = row.try_get("model_id").map_err(db_error)?;
            if let Some(model) = models.get_mut(&model_id) {
                model.data.params.push(LoggedModelParameter {
                    key: row.try_get("param_key").map_err(db_error)?,
                    value: row.try_get("param_value").map_err(db_error)?,
                });
            }
        }
        let sql = format!(
            "SELECT model_id, metric_name, metric_timestamp_ms, metric_step, metric_value, run_id, \
             dataset_name, dataset_digest FROM logged_model_metrics WHERE model_id IN ({marks}) ORDER BY rowid"
        );
        for row in bind_ids(&sql, chunk)
            .fetch_all(pool)
            .await
            .map_err(db_error)?
        {
            let metric = metric_from_row(&row)?;
            if let Some(model) = metric
                .model_id
                .as_ref()
                .and_then(|model_id| models.get_mut(model_id))
            {
                model.data.metrics.push(metric);
            }
        }
    }
    Ok(ids.iter().filter_map(|id| models.remove(id)).collect())
}

/// The experiment of a model, read in the transaction; `None` when there is no such model.
async fn model_experiment_id(
    transaction: &mut Transaction<'_, Sqlite>,
    model_id: &str,
) -> Result<Option<i64>> {
    sqlx::query_scalar("SELECT experiment_id FROM logged_models WHERE model_id = ?")
        .bind(model_id)
        .fetch_optional(&mut **transaction)
        .await
        .map_err(db_error)
}

async fn insert_params(
    transaction: &mut Transaction<'_, Sqlite>,
    model_id: &str,
    experiment_id: i64,
    params: &[LoggedModelParameter],
) -> Result<()> {
    for param in params {
        sqlx::query(
            "INSERT INTO logged_model_params (model_id, experiment_id, param_key, param_value) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(model_id)
        .bind(experiment_id)
        .bind(&param.key)
        .bind(&param.value)
        .execute(&mut **transaction)
        .await
        .map_err(|error| {
            if is_unique_violation(&error) {
                duplicate_key_error("param", &param.key, model_id)
            } else {
                db_error(error)
            }
        })?;
    }
    Ok(())
}

/// Stores, for each metric that names a logged model, a `logged_model_metrics` row linking the model, the
/// run (and its experiment) and the metric's dataset, as MLflow's `_log_model_metrics` does. A NaN is
/// stored as 0 and an infinity as the largest finite double, as MLflow stores them. A row already logged
/// with the same model, key, timestamp, step and run is kept. A `model_id` that names no logged model is
/// refused with BAD_REQUEST (MLflow's answer to the foreign key failure).
pub(super) async fn write_logged_model_metrics(
    transaction: &mut Transaction<'_, Sqlite>,
    run_id: &str,
    metrics: &[Metric],
) -> Result<()> {
    let mut known_models: Vec<&str> = Vec::new();
    for metric in metrics {
        let Some(model_id) = metric.model_id.as_deref().filter(|id| !id.is_empty()) else {
            continue;
        };
        if !known_models.contains(&model_id) {
            if model_experiment_id(transaction, model_id).await?.is_none() {
                return Err(Error::new(
                    ErrorCode::BadRequest,
                    format!("Logged model with ID '{model_id}' not found."),
                ));
            }
            known_models.push(model_id);
        }
        let value = if metric.value.is_nan() {
            0.0
        } else if metric.value.is_infinite() {
            if metric.value > 0.0 {
                f64::MAX
            } else {
                f64::MIN
            }
        } else {
            metric.value
        };
        sqlx::query(
            "INSERT INTO logged_model_metrics (model_id, metric_name, metric_timestamp_ms, metric_step, \
             metric_value, experiment_id, run_id, dataset_uuid, dataset_name, dataset_digest) \
             SELECT ?, ?, ?, ?, ?, runs.experiment_id, runs.run_uuid, NULL, ?, ? FROM runs WHERE runs.run_uuid = ? \
             ON CONFLICT DO NOTHING",
        )
        .bind(model_id)
        .bind(&metric.key)
        .bind(metric.timestamp)
        .bind(metric.step)
        .bind(value)
        .bind(metric.dataset_name.as_deref().filter(|name| !name.is_empty()))
        .bind(
            metric
                .dataset_digest
                .as_deref()
                .filter(|digest| !digest.is_empty()),
        )
        .bind(run_id)
        .execute(&mut **transaction)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

impl SqliteStore {
    /// The model, deleted or not.
    async fn logged_model(&self, model_id: &str) -> Result<Option<LoggedModel>> {
        self.get_logged_model(model_id, true).await
    }
}

#[async_trait]
impl LoggedModelStore for SqliteStore {
    async fn create_logged_model(&self, model: NewLoggedModel) -> Result<LoggedModel> {
        let experiment_id = experiment_id_number(&model.experiment_id)?;
        let mut transaction = self.writer.begin().await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, \
             creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage, model_type, \
             source_run_id) VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
        )
        .bind(&model.model_id)
        .bind(experiment_id)
        .bind(&model.name)
        .bind(&model.artifact_location)
        .bind(model.creation_timestamp_ms)
        .bind(model.creation_timestamp_ms)
        .bind(LoggedModelStatus::Pending.number())
        .bind(&model.model_type)
        .bind(&model.source_run_id)
        .execute(&mut *transaction)
        .await
        .map_err(db_error)?;
        insert_params(
            &mut transaction,
            &model.model_id,
            experiment_id,
            &model.params,
        )
        .await?;
        for tag in &model.tags {
            sqlx::query(
                "INSERT INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(&model.model_id)
            .bind(experiment_id)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *transaction)
            .await
            .map_err(|error| {
                if is_unique_violation(&error) {
                    duplicate_key_error("tag", &tag.key, &model.model_id)
                } else {
                    db_error(error)
                }
            })?;
        }
        transaction.commit().await.map_err(db_error)?;
        self.logged_model(&model.model_id)
            .await?
            .ok_or_else(|| Error::internal(std::io::Error::other("created logged model vanished")))
    }

    async fn get_logged_model(
        &self,
        model_id: &str,
        allow_deleted: bool,
    ) -> Result<Option<LoggedModel>> {
        let ids = [model_id.to_owned()];
        let stages = if allow_deleted {
            Stages::All
        } else {
            Stages::NotDeleted
        };
        Ok(logged_models_by_ids(&self.readers, &ids, stages)
            .await?
            .into_iter()
            .next())
    }

    async fn logged_model_exists(&self, model_id: &str) -> Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM logged_models WHERE model_id = ?")
                .bind(model_id)
                .fetch_optional(&self.readers)
                .await
                .map_err(db_error)?;
        Ok(found.is_some())
    }

    async fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
        now: i64,
    ) -> Result<Option<LoggedModel>> {
        let updated = sqlx::query(
            "UPDATE logged_models SET status = ?, last_updated_timestamp_ms = ? WHERE model_id = ?",
        )
        .bind(status.number())
        .bind(now)
        .bind(model_id)
        .execute(&self.writer)
        .await
        .map_err(db_error)?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        self.logged_model(model_id).await
    }

    async fn delete_logged_model(&self, model_id: &str, now: i64) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = ? \
             WHERE model_id = ?",
        )
        .bind(now)
        .bind(model_id)
        .execute(&self.writer)
        .await
        .map_err(db_error)?;
        Ok(updated.rows_affected() > 0)
    }

    async fn set_logged_model_tags(
        &self,
        model_id: &str,
        tags: Vec<LoggedModelTag>,
    ) -> Result<bool> {
        let mut transaction = self.writer.begin().await.map_err(db_error)?;
        let Some(experiment_id) = model_experiment_id(&mut transaction, model_id).await? else {
            return Ok(false);
        };
        for tag in &tags {
            sqlx::query(
                "INSERT INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (model_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
            )
            .bind(model_id)
            .bind(experiment_id)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *transaction)
            .await
            .map_err(db_error)?;
        }
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<bool> {
        let deleted =
            sqlx::query("DELETE FROM logged_model_tags WHERE model_id = ? AND tag_key = ?")
                .bind(model_id)
                .bind(key)
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn log_logged_model_params(
        &self,
        model_id: &str,
        params: Vec<LoggedModelParameter>,
    ) -> Result<bool> {
        let mut transaction = self.writer.begin().await.map_err(db_error)?;
        let Some(experiment_id) = model_experiment_id(&mut transaction, model_id).await? else {
            return Ok(false);
        };
        insert_params(&mut transaction, model_id, experiment_id, &params).await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn search_logged_models(&self, query: LoggedModelQuery) -> Result<LoggedModelPage> {
        let statement = logged_model_search::logged_model_search_statement(&query);
        let (sql, values) = statement.build_sqlx(SqliteQueryBuilder);
        let ids: Vec<String> = sqlx::query_scalar_with(&sql, values)
            .fetch_all(&self.readers)
            .await
            .map_err(db_error)?;
        let has_more = ids.len() > query.max_results;
        let page_ids: Vec<String> = ids.into_iter().take(query.max_results).collect();
        Ok(LoggedModelPage {
            models: logged_models_by_ids(&self.readers, &page_ids, Stages::All).await?,
            has_more,
        })
    }
}
