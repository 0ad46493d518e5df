//! `LoggedModelStore` on SQLite, and the rows of `logged_model_metrics` that run metrics carrying a
//! `model_id` add (called from the tracking store's metric writer, inside its transaction).

use super::connection::{db_error, is_unique_violation, query, Pools, Query, Row, Transaction};
use super::{placeholders, SqlStore};
use crate::logged_model_search;
use crate::search::Dialect;
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
use std::collections::HashMap;

/// Load models in chunks well below the databases' limits on bound values.
const CHUNK: usize = 500;

const MODEL_COLUMNS: &str =
    "model_id, experiment_id, name, artifact_location, creation_timestamp_ms, \
     last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id, status_message";

/// The experiment id column is an integer; the service passes the id of an existing experiment.
fn experiment_id_number(experiment_id: &str) -> Result<i64> {
    experiment_id
        .parse::<i64>()
        .map_err(|_| Error::not_found(format!("No Experiment with id={experiment_id} exists")))
}

/// A query with one bound value per id, for `IN (?, ...)` lists made by `placeholders`.
fn with_ids(sql: String, ids: &[String]) -> Query {
    query(sql).bind_each(ids.iter().map(String::as_str))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|text| !text.is_empty())
}

fn info_from_row(row: &Row) -> Result<LoggedModelInfo> {
    let experiment_id: i64 = row.get("experiment_id")?;
    let status: i64 = row.get("status")?;
    Ok(LoggedModelInfo {
        model_id: row.get("model_id")?,
        experiment_id: experiment_id.to_string(),
        name: row.get("name")?,
        creation_timestamp_ms: row.get("creation_timestamp_ms")?,
        last_updated_timestamp_ms: row.get("last_updated_timestamp_ms")?,
        artifact_uri: row.get("artifact_location")?,
        status: LoggedModelStatus::from_number(status).unwrap_or(LoggedModelStatus::Unspecified),
        creator_id: None,
        model_type: row.get("model_type")?,
        source_run_id: row.get("source_run_id")?,
        status_message: row.get("status_message")?,
        tags: Vec::new(),
        registrations: Vec::new(),
    })
}

fn metric_from_row(row: &Row) -> Result<Metric> {
    let value: Option<f64> = row.get("metric_value")?;
    Ok(Metric {
        key: row.get("metric_name")?,
        value: value.unwrap_or(f64::NAN),
        timestamp: row.get("metric_timestamp_ms")?,
        step: row.get("metric_step")?,
        dataset_name: non_empty(row.get("dataset_name")?),
        dataset_digest: non_empty(row.get("dataset_digest")?),
        model_id: Some(row.get("model_id")?),
        run_id: non_empty(row.get("run_id")?),
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
/// were logged, as MLflow reads them back: insertion order on SQLite and PostgreSQL, primary key order
/// on MySQL, whose tables are clustered by it), in the order of `ids`. Missing ids, and deleted ones
/// unless asked for, are skipped.
async fn logged_models_by_ids(
    pools: &Pools,
    ids: &[String],
    stages: Stages,
) -> Result<Vec<LoggedModel>> {
    let metric_order = match pools.dialect() {
        Dialect::Sqlite => "rowid",
        Dialect::Postgres => "ctid",
        Dialect::MySql => "model_id, metric_name, metric_timestamp_ms, metric_step, run_id",
    };
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
        for row in pools
            .fetch_all(with_ids(sql, chunk))
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
        for row in pools
            .fetch_all(with_ids(sql, chunk))
            .await
            .map_err(db_error)?
        {
            let model_id: String = row.get("model_id")?;
            if let Some(model) = models.get_mut(&model_id) {
                model.info.tags.push(LoggedModelTag {
                    key: row.get("tag_key")?,
                    value: row.get("tag_value")?,
                });
            }
        }
        let sql = format!(
            "SELECT model_id, param_key, param_value FROM logged_model_params WHERE model_id IN ({marks}) \
             ORDER BY model_id, param_key"
        );
        for row in pools
            .fetch_all(with_ids(sql, chunk))
            .await
            .map_err(db_error)?
        {
            let model_id: String = row.get("model_id")?;
            if let Some(model) = models.get_mut(&model_id) {
                model.data.params.push(LoggedModelParameter {
                    key: row.get("param_key")?,
                    value: row.get("param_value")?,
                });
            }
        }
        let sql = format!(
            "SELECT model_id, metric_name, metric_timestamp_ms, metric_step, metric_value, run_id, \
             dataset_name, dataset_digest FROM logged_model_metrics WHERE model_id IN ({marks}) \
             ORDER BY {metric_order}"
        );
        for row in pools
            .fetch_all(with_ids(sql, chunk))
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
async fn model_experiment_id(transaction: &mut Transaction, model_id: &str) -> Result<Option<i64>> {
    let row = transaction
        .fetch_optional(
            query("SELECT experiment_id FROM logged_models WHERE model_id = ?").bind(model_id),
        )
        .await
        .map_err(db_error)?;
    row.map(|row| row.get::<i64>("experiment_id")).transpose()
}

async fn insert_params(
    transaction: &mut Transaction,
    model_id: &str,
    experiment_id: i64,
    params: &[LoggedModelParameter],
) -> Result<()> {
    for param in params {
        transaction
            .execute(
                query(
                    "INSERT INTO logged_model_params (model_id, experiment_id, param_key, param_value) \
                     VALUES (?, ?, ?, ?)",
                )
                .bind(model_id)
                .bind(experiment_id)
                .bind(param.key.as_str())
                .bind(param.value.as_str()),
            )
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
    transaction: &mut Transaction,
    run_id: &str,
    metrics: &[Metric],
) -> Result<()> {
    let select = "INSERT INTO logged_model_metrics (model_id, metric_name, metric_timestamp_ms, metric_step, \
                  metric_value, experiment_id, run_id, dataset_uuid, dataset_name, dataset_digest) \
                  SELECT ?, ?, ?, ?, ?, runs.experiment_id, runs.run_uuid, NULL, ?, ? FROM runs WHERE runs.run_uuid = ?";
    let insert = match transaction.dialect() {
        Dialect::Sqlite | Dialect::Postgres => format!("{select} ON CONFLICT DO NOTHING"),
        Dialect::MySql => format!(
            "{select} ON DUPLICATE KEY UPDATE logged_model_metrics.model_id = logged_model_metrics.model_id"
        ),
    };
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
        transaction
            .execute(
                query(insert.clone())
                    .bind(model_id)
                    .bind(metric.key.as_str())
                    .bind(metric.timestamp)
                    .bind(metric.step)
                    .bind(value)
                    .bind(
                        metric
                            .dataset_name
                            .as_deref()
                            .filter(|name| !name.is_empty()),
                    )
                    .bind(
                        metric
                            .dataset_digest
                            .as_deref()
                            .filter(|digest| !digest.is_empty()),
                    )
                    .bind(run_id),
            )
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

impl SqlStore {
    /// The model, deleted or not.
    async fn logged_model(&self, model_id: &str) -> Result<Option<LoggedModel>> {
        self.get_logged_model(model_id, true).await
    }
}

#[async_trait]
impl LoggedModelStore for SqlStore {
    async fn create_logged_model(&self, model: NewLoggedModel) -> Result<LoggedModel> {
        let experiment_id = experiment_id_number(&model.experiment_id)?;
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        transaction
            .execute(
                query(
                    "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, \
                     creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage, model_type, \
                     source_run_id) VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
                )
                .bind(model.model_id.as_str())
                .bind(experiment_id)
                .bind(model.name.as_str())
                .bind(model.artifact_location.as_str())
                .bind(model.creation_timestamp_ms)
                .bind(model.creation_timestamp_ms)
                .bind(LoggedModelStatus::Pending.number())
                .bind(model.model_type.as_str())
                .bind(model.source_run_id.as_str()),
            )
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
            transaction
                .execute(
                    query(
                        "INSERT INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value) \
                         VALUES (?, ?, ?, ?)",
                    )
                    .bind(model.model_id.as_str())
                    .bind(experiment_id)
                    .bind(tag.key.as_str())
                    .bind(tag.value.as_str()),
                )
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
        Ok(logged_models_by_ids(&self.pools, &ids, stages)
            .await?
            .into_iter()
            .next())
    }

    async fn logged_model_exists(&self, model_id: &str) -> Result<bool> {
        let found = self
            .pools
            .fetch_optional(
                query("SELECT model_id FROM logged_models WHERE model_id = ?").bind(model_id),
            )
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
        let updated = self
            .pools
            .execute(
                query(
                    "UPDATE logged_models SET status = ?, last_updated_timestamp_ms = ? WHERE model_id = ?",
                )
                .bind(status.number())
                .bind(now)
                .bind(model_id),
            )
            .await
            .map_err(db_error)?;
        if updated.rows_affected == 0 {
            return Ok(None);
        }
        self.logged_model(model_id).await
    }

    async fn delete_logged_model(&self, model_id: &str, now: i64) -> Result<bool> {
        let updated = self
            .pools
            .execute(
                query(
                    "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = ? \
                     WHERE model_id = ?",
                )
                .bind(now)
                .bind(model_id),
            )
            .await
            .map_err(db_error)?;
        Ok(updated.rows_affected > 0)
    }

    async fn set_logged_model_tags(
        &self,
        model_id: &str,
        tags: Vec<LoggedModelTag>,
    ) -> Result<bool> {
        let upsert = match self.dialect() {
            Dialect::Sqlite | Dialect::Postgres => {
                "INSERT INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (model_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value"
            }
            Dialect::MySql => {
                "INSERT INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value) \
                 VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE tag_value = VALUES(tag_value)"
            }
        };
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let Some(experiment_id) = model_experiment_id(&mut transaction, model_id).await? else {
            return Ok(false);
        };
        for tag in &tags {
            transaction
                .execute(
                    query(upsert)
                        .bind(model_id)
                        .bind(experiment_id)
                        .bind(tag.key.as_str())
                        .bind(tag.value.as_str()),
                )
                .await
                .map_err(db_error)?;
        }
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<bool> {
        let deleted = self
            .pools
            .execute(
                query("DELETE FROM logged_model_tags WHERE model_id = ? AND tag_key = ?")
                    .bind(model_id)
                    .bind(key),
            )
            .await
            .map_err(db_error)?;
        Ok(deleted.rows_affected > 0)
    }

    async fn log_logged_model_params(
        &self,
        model_id: &str,
        params: Vec<LoggedModelParameter>,
    ) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let Some(experiment_id) = model_experiment_id(&mut transaction, model_id).await? else {
            return Ok(false);
        };
        insert_params(&mut transaction, model_id, experiment_id, &params).await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn search_logged_models(&self, model_query: LoggedModelQuery) -> Result<LoggedModelPage> {
        let dialect = self.dialect();
        let statement =
            logged_model_search::logged_model_search_statement_for(&model_query, dialect);
        let rows = self
            .pools
            .fetch_all(Query::built(&statement, dialect))
            .await
            .map_err(db_error)?;
        let ids = rows
            .iter()
            .map(|row| row.get::<String>("model_id"))
            .collect::<Result<Vec<String>>>()?;
        let has_more = ids.len() > model_query.max_results;
        let page_ids: Vec<String> = ids.into_iter().take(model_query.max_results).collect();
        Ok(LoggedModelPage {
            models: logged_models_by_ids(&self.pools, &page_ids, Stages::All).await?,
            has_more,
        })
    }
}
