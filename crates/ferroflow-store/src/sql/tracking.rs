//! `TrackingStore` on SQLite.

use super::{append_to_uri, placeholders, SqliteStore};
use crate::search;
use async_trait::async_trait;
use ferroflow_core::ids::encode_page_token;
use ferroflow_core::model::{
    Batch, DatasetSummary, ExperimentQuery, LifecycleStage, NewExperiment, NewRun, Page, RunInfo,
    RunInputsWrite, RunQuery, RunUpdate,
};
use ferroflow_core::store::TrackingStore;
use ferroflow_core::{Error, Result};
use ferroflow_proto::tracking::{
    Dataset, DatasetInput, Experiment, ExperimentTag, InputTag, Metric, ModelInput, ModelOutput,
    Param, Run, RunData, RunInputs, RunOutputs, RunTag,
};
use sea_query::SqliteQueryBuilder;
use sea_query_binder::SqlxBinder;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use std::collections::HashMap;

/// The tag that mirrors a run's name.
const RUN_NAME_TAG: &str = "mlflow.runName";
/// SQLite binds at most 32766 values; hydrate in chunks well below that.
const CHUNK: usize = 500;
/// Infinite metrics are stored as the largest finite doubles, as MLflow does (SQL has no infinity).
const STORED_MAX: f64 = f64::MAX;

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

fn experiment_id_number(experiment_id: &str) -> Result<i64> {
    experiment_id
        .parse::<i64>()
        .map_err(|_| Error::not_found(format!("No Experiment with id={experiment_id} exists")))
}

/// A metric as stored: NaN becomes (0, is_nan), infinities the largest finite doubles.
fn sanitize_metric_value(value: f64) -> (f64, bool) {
    if value.is_nan() {
        (0.0, true)
    } else if value.is_infinite() {
        (if value > 0.0 { STORED_MAX } else { -STORED_MAX }, false)
    } else {
        (value, false)
    }
}

fn stored_metric_value(value: f64, is_nan: bool) -> f64 {
    if is_nan {
        f64::NAN
    } else {
        value
    }
}

fn experiment_from_row(row: &SqliteRow) -> Result<Experiment> {
    let experiment_id: i64 = row.try_get("experiment_id").map_err(db_error)?;
    Ok(Experiment {
        experiment_id: experiment_id.to_string(),
        name: row.try_get("name").map_err(db_error)?,
        artifact_location: row
            .try_get::<Option<String>, _>("artifact_location")
            .map_err(db_error)?
            .unwrap_or_default(),
        lifecycle_stage: row
            .try_get::<Option<String>, _>("lifecycle_stage")
            .map_err(db_error)?
            .unwrap_or_else(|| "active".to_owned()),
        last_update_time: row.try_get("last_update_time").map_err(db_error)?,
        creation_time: row.try_get("creation_time").map_err(db_error)?,
        tags: Vec::new(),
        workspace: row.try_get("workspace").map_err(db_error)?,
    })
}

fn run_info_from_row(row: &SqliteRow) -> Result<RunInfo> {
    let run_id: String = row.try_get("run_uuid").map_err(db_error)?;
    let experiment_id: Option<i64> = row.try_get("experiment_id").map_err(db_error)?;
    Ok(RunInfo {
        run_uuid: run_id.clone(),
        run_id,
        run_name: row
            .try_get::<Option<String>, _>("name")
            .map_err(db_error)?
            .unwrap_or_default(),
        experiment_id: experiment_id.map(|id| id.to_string()).unwrap_or_default(),
        user_id: row
            .try_get::<Option<String>, _>("user_id")
            .map_err(db_error)?
            .unwrap_or_default(),
        status: row
            .try_get::<Option<String>, _>("status")
            .map_err(db_error)?
            .unwrap_or_else(|| "RUNNING".to_owned()),
        start_time: row.try_get("start_time").map_err(db_error)?,
        end_time: row.try_get("end_time").map_err(db_error)?,
        artifact_uri: row
            .try_get::<Option<String>, _>("artifact_uri")
            .map_err(db_error)?
            .unwrap_or_default(),
        lifecycle_stage: row
            .try_get::<Option<String>, _>("lifecycle_stage")
            .map_err(db_error)?
            .unwrap_or_else(|| "active".to_owned()),
    })
}

fn metric_from_row(row: &SqliteRow, with_run_id: bool) -> Result<Metric> {
    let value: f64 = row.try_get("value").map_err(db_error)?;
    let is_nan: bool = row.try_get("is_nan").map_err(db_error)?;
    Ok(Metric {
        key: row.try_get("key").map_err(db_error)?,
        value: stored_metric_value(value, is_nan),
        timestamp: row
            .try_get::<Option<i64>, _>("timestamp")
            .map_err(db_error)?
            .unwrap_or(0),
        step: row.try_get("step").map_err(db_error)?,
        dataset_name: None,
        dataset_digest: None,
        model_id: None,
        run_id: if with_run_id {
            Some(row.try_get("run_uuid").map_err(db_error)?)
        } else {
            None
        },
    })
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

const RUN_COLUMNS: &str =
    "run_uuid, name, experiment_id, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage";
const EXPERIMENT_COLUMNS: &str =
    "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace";

impl SqliteStore {
    async fn experiments_by_ids(&self, ids: &[i64]) -> Result<Vec<Experiment>> {
        let mut by_id: HashMap<String, Experiment> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE experiment_id IN ({})",
                placeholders(chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.readers).await.map_err(db_error)? {
                let experiment = experiment_from_row(&row)?;
                by_id.insert(experiment.experiment_id.clone(), experiment);
            }
            let sql = format!(
                "SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN ({}) ORDER BY key",
                placeholders(chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.readers).await.map_err(db_error)? {
                let experiment_id: i64 = row.try_get("experiment_id").map_err(db_error)?;
                if let Some(experiment) = by_id.get_mut(&experiment_id.to_string()) {
                    experiment.tags.push(ExperimentTag {
                        key: row.try_get("key").map_err(db_error)?,
                        value: row
                            .try_get::<Option<String>, _>("value")
                            .map_err(db_error)?
                            .unwrap_or_default(),
                    });
                }
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| by_id.remove(&id.to_string()))
            .collect())
    }

    async fn experiment_where(&self, column: &str, value: &str) -> Result<Option<Experiment>> {
        let sql = format!("SELECT experiment_id FROM experiments WHERE {column} = ?");
        let id: Option<i64> = sqlx::query_scalar(&sql)
            .bind(value)
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?;
        match id {
            None => Ok(None),
            Some(id) => Ok(self.experiments_by_ids(&[id]).await?.into_iter().next()),
        }
    }

    /// Loads whole runs by id, in the order given.
    async fn runs_by_ids(&self, run_ids: &[String]) -> Result<Vec<Run>> {
        let mut by_id: HashMap<String, Run> = HashMap::with_capacity(run_ids.len());
        for chunk in run_ids.chunks(CHUNK) {
            let marks = placeholders(chunk.len());
            let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_uuid IN ({marks})");
            let rows = bind_ids(&sql, chunk)
                .fetch_all(&self.readers)
                .await
                .map_err(db_error)?;
            for row in rows {
                let info = run_info_from_row(&row)?;
                by_id.insert(
                    info.run_id.clone(),
                    Run {
                        info,
                        data: RunData::default(),
                        inputs: RunInputs::default(),
                        outputs: Some(RunOutputs::default()),
                    },
                );
            }
            let sql = format!(
                "SELECT key, value, timestamp, step, is_nan, run_uuid FROM latest_metrics \
                 WHERE run_uuid IN ({marks}) ORDER BY key"
            );
            let rows = bind_ids(&sql, chunk)
                .fetch_all(&self.readers)
                .await
                .map_err(db_error)?;
            for row in rows {
                let run_id: String = row.try_get("run_uuid").map_err(db_error)?;
                if let Some(run) = by_id.get_mut(&run_id) {
                    run.data.metrics.push(metric_from_row(&row, false)?);
                }
            }
            let sql = format!(
                "SELECT key, value, run_uuid FROM params WHERE run_uuid IN ({marks}) ORDER BY key"
            );
            let rows = bind_ids(&sql, chunk)
                .fetch_all(&self.readers)
                .await
                .map_err(db_error)?;
            for row in rows {
                let run_id: String = row.try_get("run_uuid").map_err(db_error)?;
                if let Some(run) = by_id.get_mut(&run_id) {
                    run.data.params.push(Param {
                        key: row.try_get("key").map_err(db_error)?,
                        value: row.try_get("value").map_err(db_error)?,
                    });
                }
            }
            let sql = format!(
                "SELECT key, value, run_uuid FROM tags WHERE run_uuid IN ({marks}) ORDER BY key"
            );
            let rows = bind_ids(&sql, chunk)
                .fetch_all(&self.readers)
                .await
                .map_err(db_error)?;
            for row in rows {
                let run_id: String = row.try_get("run_uuid").map_err(db_error)?;
                if let Some(run) = by_id.get_mut(&run_id) {
                    run.data.tags.push(RunTag {
                        key: row.try_get("key").map_err(db_error)?,
                        value: row
                            .try_get::<Option<String>, _>("value")
                            .map_err(db_error)?
                            .unwrap_or_default(),
                    });
                }
            }
            self.load_inputs_and_outputs(chunk, &marks, &mut by_id)
                .await?;
        }
        Ok(run_ids
            .iter()
            .filter_map(|run_id| by_id.remove(run_id))
            .collect())
    }

    async fn load_inputs_and_outputs(
        &self,
        chunk: &[String],
        marks: &str,
        by_id: &mut HashMap<String, Run>,
    ) -> Result<()> {
        let sql = format!(
            "SELECT inputs.input_uuid, inputs.destination_id AS run_uuid, datasets.name, datasets.digest, \
             datasets.dataset_source_type, datasets.dataset_source, datasets.dataset_schema, \
             datasets.dataset_profile \
             FROM inputs JOIN datasets ON datasets.dataset_uuid = inputs.source_id \
             WHERE inputs.source_type = 'DATASET' AND inputs.destination_type = 'RUN' \
             AND inputs.destination_id IN ({marks}) ORDER BY datasets.name, datasets.digest"
        );
        let mut query = sqlx::query(&sql);
        for run_id in chunk {
            query = query.bind(run_id);
        }
        let rows = query.fetch_all(&self.readers).await.map_err(db_error)?;
        let mut input_positions: HashMap<String, (String, usize)> = HashMap::new();
        for row in rows {
            let run_id: String = row.try_get("run_uuid").map_err(db_error)?;
            let input_uuid: String = row.try_get("input_uuid").map_err(db_error)?;
            if let Some(run) = by_id.get_mut(&run_id) {
                run.inputs.dataset_inputs.push(DatasetInput {
                    tags: Vec::new(),
                    dataset: Dataset {
                        name: row.try_get("name").map_err(db_error)?,
                        digest: row.try_get("digest").map_err(db_error)?,
                        source_type: row.try_get("dataset_source_type").map_err(db_error)?,
                        source: row.try_get("dataset_source").map_err(db_error)?,
                        schema: row.try_get("dataset_schema").map_err(db_error)?,
                        profile: row.try_get("dataset_profile").map_err(db_error)?,
                    },
                });
                input_positions.insert(input_uuid, (run_id, run.inputs.dataset_inputs.len() - 1));
            }
        }
        if !input_positions.is_empty() {
            let input_ids: Vec<&String> = input_positions.keys().collect();
            for input_chunk in input_ids.chunks(CHUNK) {
                let sql = format!(
                    "SELECT input_uuid, name, value FROM input_tags WHERE input_uuid IN ({}) ORDER BY name",
                    placeholders(input_chunk.len())
                );
                let mut query = sqlx::query(&sql);
                for input_uuid in input_chunk {
                    query = query.bind(input_uuid.as_str());
                }
                for row in query.fetch_all(&self.readers).await.map_err(db_error)? {
                    let input_uuid: String = row.try_get("input_uuid").map_err(db_error)?;
                    if let Some((run_id, position)) = input_positions.get(&input_uuid) {
                        if let Some(input) = by_id
                            .get_mut(run_id)
                            .and_then(|run| run.inputs.dataset_inputs.get_mut(*position))
                        {
                            input.tags.push(InputTag {
                                key: row.try_get("name").map_err(db_error)?,
                                value: row.try_get("value").map_err(db_error)?,
                            });
                        }
                    }
                }
            }
        }
        let sql = format!(
            "SELECT source_type, source_id, destination_id, step FROM inputs \
             WHERE source_type IN ('RUN_INPUT', 'RUN_OUTPUT') AND source_id IN ({marks})"
        );
        let mut query = sqlx::query(&sql);
        for run_id in chunk {
            query = query.bind(run_id);
        }
        for row in query.fetch_all(&self.readers).await.map_err(db_error)? {
            let run_id: String = row.try_get("source_id").map_err(db_error)?;
            let source_type: String = row.try_get("source_type").map_err(db_error)?;
            let model_id: String = row.try_get("destination_id").map_err(db_error)?;
            if let Some(run) = by_id.get_mut(&run_id) {
                if source_type == "RUN_INPUT" {
                    run.inputs.model_inputs.push(ModelInput { model_id });
                } else {
                    run.outputs
                        .get_or_insert_with(RunOutputs::default)
                        .model_outputs
                        .push(ModelOutput {
                            model_id,
                            step: Some(row.try_get("step").map_err(db_error)?),
                        });
                }
            }
        }
        Ok(())
    }
}

/// Writes metrics, keeping `latest_metrics` at the row with the greatest (step, timestamp, value), and
/// links those that name a logged model to it (`logged_model_metrics`).
async fn write_metrics(
    transaction: &mut Transaction<'_, Sqlite>,
    run_id: &str,
    metrics: &[Metric],
) -> Result<()> {
    super::logged_models::write_logged_model_metrics(transaction, run_id, metrics).await?;
    let mut latest: HashMap<&str, (i64, i64, f64, bool)> = HashMap::new();
    for metric in metrics {
        let (value, is_nan) = sanitize_metric_value(metric.value);
        sqlx::query(
            "INSERT OR IGNORE INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&metric.key)
        .bind(value)
        .bind(metric.timestamp)
        .bind(run_id)
        .bind(metric.step)
        .bind(is_nan)
        .execute(&mut **transaction)
        .await
        .map_err(db_error)?;
        let candidate = (metric.step, metric.timestamp, value, is_nan);
        latest
            .entry(metric.key.as_str())
            .and_modify(|current| {
                if is_newer(candidate, *current) {
                    *current = candidate;
                }
            })
            .or_insert(candidate);
    }
    for (key, (step, timestamp, value, is_nan)) in latest {
        let existing = sqlx::query(
            "SELECT step, timestamp, value FROM latest_metrics WHERE run_uuid = ? AND key = ?",
        )
        .bind(run_id)
        .bind(key)
        .fetch_optional(&mut **transaction)
        .await
        .map_err(db_error)?;
        let replace = match existing {
            None => true,
            Some(row) => {
                let current_step: i64 = row.try_get("step").map_err(db_error)?;
                let current_timestamp: Option<i64> = row.try_get("timestamp").map_err(db_error)?;
                let current_value: f64 = row.try_get("value").map_err(db_error)?;
                is_newer(
                    (step, timestamp, value, is_nan),
                    (
                        current_step,
                        current_timestamp.unwrap_or(0),
                        current_value,
                        false,
                    ),
                )
            }
        };
        if replace {
            sqlx::query(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp, \
                 step = excluded.step, is_nan = excluded.is_nan",
            )
            .bind(key)
            .bind(value)
            .bind(timestamp)
            .bind(step)
            .bind(is_nan)
            .bind(run_id)
            .execute(&mut **transaction)
            .await
            .map_err(db_error)?;
        }
    }
    Ok(())
}

/// MLflow's order for the latest metric: (step, timestamp, value), compared on stored values.
fn is_newer(candidate: (i64, i64, f64, bool), current: (i64, i64, f64, bool)) -> bool {
    (candidate.0, candidate.1) > (current.0, current.1)
        || ((candidate.0, candidate.1) == (current.0, current.1) && candidate.2 > current.2)
}

async fn write_params(
    transaction: &mut Transaction<'_, Sqlite>,
    run_id: &str,
    params: &[Param],
) -> Result<()> {
    for param in params {
        let existing: Option<String> =
            sqlx::query_scalar("SELECT value FROM params WHERE run_uuid = ? AND key = ?")
                .bind(run_id)
                .bind(&param.key)
                .fetch_optional(&mut **transaction)
                .await
                .map_err(db_error)?;
        match existing {
            Some(old_value) if old_value != param.value => {
                return Err(Error::invalid_parameter(format!(
                    "Changing param values is not allowed. Param with key='{}' was already logged with \
                     value='{}' for run ID='{}'. Attempted logging new value '{}'.",
                    param.key, old_value, run_id, param.value
                )));
            }
            Some(_) => {}
            None => {
                sqlx::query("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)")
                    .bind(&param.key)
                    .bind(&param.value)
                    .bind(run_id)
                    .execute(&mut **transaction)
                    .await
                    .map_err(db_error)?;
            }
        }
    }
    Ok(())
}

async fn write_tags(
    transaction: &mut Transaction<'_, Sqlite>,
    run_id: &str,
    tags: &[RunTag],
) -> Result<()> {
    for tag in tags {
        sqlx::query(
            "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?) \
             ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value",
        )
        .bind(&tag.key)
        .bind(&tag.value)
        .bind(run_id)
        .execute(&mut **transaction)
        .await
        .map_err(db_error)?;
        if tag.key == RUN_NAME_TAG {
            sqlx::query("UPDATE runs SET name = ? WHERE run_uuid = ?")
                .bind(&tag.value)
                .bind(run_id)
                .execute(&mut **transaction)
                .await
                .map_err(db_error)?;
        }
    }
    Ok(())
}

fn next_token(offset: usize, max_results: usize, fetched: usize) -> Option<String> {
    (fetched > max_results).then(|| encode_page_token(offset + max_results))
}

#[async_trait]
impl TrackingStore for SqliteStore {
    async fn create_experiment(&self, experiment: NewExperiment) -> Result<String> {
        let mut transaction = self.writer.begin().await.map_err(db_error)?;
        let inserted = sqlx::query(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace) \
             VALUES (?, ?, 'active', ?, ?, 'default')",
        )
        .bind(&experiment.name)
        .bind(&experiment.artifact_location)
        .bind(experiment.creation_time)
        .bind(experiment.creation_time)
        .execute(&mut *transaction)
        .await;
        let experiment_id = match inserted {
            Ok(result) => result.last_insert_rowid(),
            Err(error) if is_unique_violation(&error) => {
                return Err(Error::already_exists(format!(
                    "Experiment(name={}) already exists. Error: UNIQUE constraint failed: experiments.workspace, experiments.name",
                    experiment.name
                )));
            }
            Err(error) => return Err(db_error(error)),
        };
        if experiment.artifact_location.is_none() {
            let root = if experiment.default_artifact_root.is_empty() {
                self.default_artifact_root.as_str()
            } else {
                experiment.default_artifact_root.as_str()
            };
            sqlx::query("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?")
                .bind(append_to_uri(root, &experiment_id.to_string()))
                .bind(experiment_id)
                .execute(&mut *transaction)
                .await
                .map_err(db_error)?;
        }
        for tag in &experiment.tags {
            sqlx::query(
                "INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, ?) \
                 ON CONFLICT (key, experiment_id) DO UPDATE SET value = excluded.value",
            )
            .bind(&tag.key)
            .bind(&tag.value)
            .bind(experiment_id)
            .execute(&mut *transaction)
            .await
            .map_err(db_error)?;
        }
        transaction.commit().await.map_err(db_error)?;
        Ok(experiment_id.to_string())
    }

    async fn get_experiment(&self, experiment_id: &str) -> Result<Option<Experiment>> {
        let Ok(id) = experiment_id.parse::<i64>() else {
            return Ok(None);
        };
        Ok(self.experiments_by_ids(&[id]).await?.into_iter().next())
    }

    async fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>> {
        self.experiment_where("name", name).await
    }

    async fn rename_experiment(&self, experiment_id: &str, new_name: &str, now: i64) -> Result<()> {
        let id = experiment_id_number(experiment_id)?;
        let result = sqlx::query(
            "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
        )
        .bind(new_name)
        .bind(now)
        .bind(id)
        .execute(&self.writer)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Err(Error::already_exists(format!(
                "Experiment(name={new_name}) already exists."
            ))),
            Err(error) => Err(db_error(error)),
        }
    }

    async fn set_experiment_lifecycle(
        &self,
        experiment_id: &str,
        stage: LifecycleStage,
        now: i64,
    ) -> Result<()> {
        let id = experiment_id_number(experiment_id)?;
        let mut transaction = self.writer.begin().await.map_err(db_error)?;
        sqlx::query("UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?")
            .bind(stage.as_str())
            .bind(now)
            .bind(id)
            .execute(&mut *transaction)
            .await
            .map_err(db_error)?;
        let deleted_time = match stage {
            LifecycleStage::Deleted => Some(now),
            LifecycleStage::Active => None,
        };
        sqlx::query(
            "UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE experiment_id = ?",
        )
        .bind(stage.as_str())
        .bind(deleted_time)
        .bind(id)
        .execute(&mut *transaction)
        .await
        .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)
    }

    async fn set_experiment_tag(&self, experiment_id: &str, tag: ExperimentTag) -> Result<()> {
        let id = experiment_id_number(experiment_id)?;
        sqlx::query(
            "INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, ?) \
             ON CONFLICT (key, experiment_id) DO UPDATE SET value = excluded.value",
        )
        .bind(&tag.key)
        .bind(&tag.value)
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn delete_experiment_tag(&self, experiment_id: &str, key: &str) -> Result<bool> {
        let id = experiment_id_number(experiment_id)?;
        let result = sqlx::query("DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?")
            .bind(id)
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn search_experiments(&self, query: ExperimentQuery) -> Result<Page<Experiment>> {
        let statement = search::experiment_search_statement(&query)?;
        let (sql, values) = statement.build_sqlx(SqliteQueryBuilder);
        let ids: Vec<i64> = sqlx::query_scalar_with(&sql, values)
            .fetch_all(&self.readers)
            .await
            .map_err(db_error)?;
        let next_page_token = next_token(query.offset, query.max_results, ids.len());
        let page_ids: Vec<i64> = ids.into_iter().take(query.max_results).collect();
        Ok(Page {
            items: self.experiments_by_ids(&page_ids).await?,
            next_page_token,
        })
    }

    async fn create_run(&self, run: NewRun) -> Result<()> {
        let experiment_id = experiment_id_number(&run.experiment_id)?;
        let mut transaction = self.writer.begin().await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, \
             start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time) \
             VALUES (?, ?, 'UNKNOWN', '', '', ?, 'RUNNING', ?, NULL, '', 'active', ?, ?, NULL)",
        )
        .bind(&run.run_id)
        .bind(&run.run_name)
        .bind(&run.user_id)
        .bind(run.start_time)
        .bind(&run.artifact_uri)
        .bind(experiment_id)
        .execute(&mut *transaction)
        .await
        .map_err(db_error)?;
        write_tags(&mut transaction, &run.run_id, &run.tags).await?;
        transaction.commit().await.map_err(db_error)
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<Run>> {
        Ok(self
            .runs_by_ids(&[run_id.to_owned()])
            .await?
            .into_iter()
            .next())
    }

    async fn get_run_info(&self, run_id: &str) -> Result<Option<RunInfo>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_uuid = ?");
        let row = sqlx::query(&sql)
            .bind(run_id)
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?;
        row.as_ref().map(run_info_from_row).transpose()
    }

    async fn update_run(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo> {
        let mut transaction = self.writer.begin().await.map_err(db_error)?;
        if let Some(status) = update.status {
            sqlx::query("UPDATE runs SET status = ? WHERE run_uuid = ?")
                .bind(status.as_str())
                .bind(run_id)
                .execute(&mut *transaction)
                .await
                .map_err(db_error)?;
        }
        if let Some(end_time) = update.end_time {
            sqlx::query("UPDATE runs SET end_time = ? WHERE run_uuid = ?")
                .bind(end_time)
                .bind(run_id)
                .execute(&mut *transaction)
                .await
                .map_err(db_error)?;
        }
        if let Some(run_name) = &update.run_name {
            write_tags(
                &mut transaction,
                run_id,
                &[ferroflow_core::store::run_tag(RUN_NAME_TAG, run_name)],
            )
            .await?;
        }
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_uuid = ?");
        let row = sqlx::query(&sql)
            .bind(run_id)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(db_error)?;
        let info = match row {
            Some(row) => run_info_from_row(&row)?,
            None => return Err(Error::not_found(format!("Run with id={run_id} not found"))),
        };
        transaction.commit().await.map_err(db_error)?;
        Ok(info)
    }

    async fn set_run_lifecycle(&self, run_id: &str, stage: LifecycleStage, now: i64) -> Result<()> {
        let deleted_time = match stage {
            LifecycleStage::Deleted => Some(now),
            LifecycleStage::Active => None,
        };
        sqlx::query("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?")
            .bind(stage.as_str())
            .bind(deleted_time)
            .bind(run_id)
            .execute(&self.writer)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn log_batch(&self, run_id: &str, batch: Batch) -> Result<()> {
        let mut transaction = self.writer.begin().await.map_err(db_error)?;
        // Params first: a conflicting value aborts the whole batch before anything else is written.
        write_params(&mut transaction, run_id, &batch.params).await?;
        write_metrics(&mut transaction, run_id, &batch.metrics).await?;
        write_tags(&mut transaction, run_id, &batch.tags).await?;
        transaction.commit().await.map_err(db_error)
    }

    async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<bool> {
        let result = sqlx::query("DELETE FROM tags WHERE run_uuid = ? AND key = ?")
            .bind(run_id)
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn search_runs(&self, query: RunQuery) -> Result<Page<Run>> {
        let statement = search::run_search_statement(&query)?;
        let (sql, values) = statement.build_sqlx(SqliteQueryBuilder);
        let ids: Vec<String> = sqlx::query_scalar_with(&sql, values)
            .fetch_all(&self.readers)
            .await
            .map_err(db_error)?;
        let next_page_token = next_token(query.offset, query.max_results, ids.len());
        let page_ids: Vec<String> = ids.into_iter().take(query.max_results).collect();
        Ok(Page {
            items: self.runs_by_ids(&page_ids).await?,
            next_page_token,
        })
    }

    async fn get_metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: Option<usize>,
        offset: usize,
    ) -> Result<Page<Metric>> {
        let limit = max_results
            .map(|max| i64::try_from(max).unwrap_or(i64::MAX).saturating_add(1))
            .unwrap_or(-1);
        let rows = sqlx::query(
            "SELECT key, value, timestamp, step, is_nan, run_uuid FROM metrics WHERE run_uuid = ? AND key = ? \
             ORDER BY timestamp, step, value LIMIT ? OFFSET ?",
        )
        .bind(run_id)
        .bind(key)
        .bind(limit)
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        let mut metrics = rows
            .iter()
            .map(|row| metric_from_row(row, false))
            .collect::<Result<Vec<_>>>()?;
        let next_page_token = match max_results {
            Some(max) if metrics.len() > max => {
                metrics.truncate(max);
                Some(encode_page_token(offset + max))
            }
            _ => None,
        };
        Ok(Page {
            items: metrics,
            next_page_token,
        })
    }

    async fn get_metric_history_bulk(
        &self,
        run_ids: &[String],
        key: &str,
        max_results: usize,
    ) -> Result<Vec<Metric>> {
        let mut sorted_run_ids: Vec<&String> = run_ids.iter().collect();
        sorted_run_ids.sort();
        let mut metrics = Vec::new();
        for run_id in sorted_run_ids {
            let rows = sqlx::query(
                "SELECT key, value, timestamp, step, is_nan, run_uuid FROM metrics WHERE run_uuid = ? AND key = ? \
                 ORDER BY timestamp, step, value LIMIT ?",
            )
            .bind(run_id)
            .bind(key)
            .bind(i64::try_from(max_results).unwrap_or(i64::MAX))
            .fetch_all(&self.readers)
            .await
            .map_err(db_error)?;
            for row in &rows {
                metrics.push(metric_from_row(row, true)?);
            }
        }
        Ok(metrics)
    }

    async fn get_metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        key: &str,
        steps: Option<(i64, i64)>,
        max_results: usize,
    ) -> Result<Vec<Metric>> {
        let (start_step, end_step) = steps.unwrap_or((i64::MIN, i64::MAX));
        let buckets = i64::try_from(max_results.max(1)).unwrap_or(i64::MAX);
        let mut metrics = Vec::new();
        for run_id in run_ids {
            // Rows are split into `max_results` even buckets in SQL and the first row of each is kept, so at
            // most `max_results` rows per run leave the database however long the history is.
            let rows = sqlx::query(
                "SELECT key, value, timestamp, step, is_nan, run_uuid FROM ( \
                   SELECT *, ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY step, timestamp, value, is_nan) AS rank_in_bucket \
                   FROM (SELECT key, value, timestamp, step, is_nan, run_uuid, \
                         NTILE(?) OVER (ORDER BY step, timestamp, value, is_nan) AS bucket \
                         FROM metrics WHERE run_uuid = ? AND key = ? AND step >= ? AND step <= ?)) \
                 WHERE rank_in_bucket = 1 ORDER BY step, timestamp, value, is_nan",
            )
            .bind(buckets)
            .bind(run_id)
            .bind(key)
            .bind(start_step)
            .bind(end_step)
            .fetch_all(&self.readers)
            .await
            .map_err(db_error)?;
            let mut sampled = rows
                .iter()
                .map(|row| metric_from_row(row, true))
                .collect::<Result<Vec<_>>>()?;
            // The buckets keep the first point; the last point of the range is kept too.
            let last_row = sqlx::query(
                "SELECT key, value, timestamp, step, is_nan, run_uuid FROM metrics \
                 WHERE run_uuid = ? AND key = ? AND step >= ? AND step <= ? \
                 ORDER BY step DESC, timestamp DESC, value DESC, is_nan DESC LIMIT 1",
            )
            .bind(run_id)
            .bind(key)
            .bind(start_step)
            .bind(end_step)
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?;
            if let Some(row) = last_row {
                let last = metric_from_row(&row, true)?;
                let same_point = |metric: &Metric| {
                    metric.step == last.step
                        && metric.timestamp == last.timestamp
                        && (metric.value == last.value
                            || (metric.value.is_nan() && last.value.is_nan()))
                };
                if !sampled.last().is_some_and(same_point) {
                    if sampled.len() >= max_results {
                        sampled.pop();
                    }
                    sampled.push(last);
                }
            }
            metrics.extend(sampled);
        }
        Ok(metrics)
    }

    async fn log_inputs(
        &self,
        run_id: &str,
        experiment_id: &str,
        inputs: RunInputsWrite,
    ) -> Result<()> {
        let experiment_id = experiment_id_number(experiment_id)?;
        let mut transaction = self.writer.begin().await.map_err(db_error)?;
        let mut seen: Vec<(String, String)> = Vec::new();
        for input in &inputs.datasets {
            let identity = (input.dataset.name.clone(), input.dataset.digest.clone());
            if seen.contains(&identity) {
                continue;
            }
            seen.push(identity);
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?",
            )
            .bind(experiment_id)
            .bind(&input.dataset.name)
            .bind(&input.dataset.digest)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(db_error)?;
            let dataset_uuid = match existing {
                Some(dataset_uuid) => dataset_uuid,
                None => {
                    let dataset_uuid = ferroflow_core::ids::new_run_id();
                    sqlx::query(
                        "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, \
                         dataset_source, dataset_schema, dataset_profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&dataset_uuid)
                    .bind(experiment_id)
                    .bind(&input.dataset.name)
                    .bind(&input.dataset.digest)
                    .bind(&input.dataset.source_type)
                    .bind(&input.dataset.source)
                    .bind(&input.dataset.schema)
                    .bind(&input.dataset.profile)
                    .execute(&mut *transaction)
                    .await
                    .map_err(db_error)?;
                    dataset_uuid
                }
            };
            let already_linked: Option<String> = sqlx::query_scalar(
                "SELECT input_uuid FROM inputs WHERE source_type = 'DATASET' AND source_id = ? \
                 AND destination_type = 'RUN' AND destination_id = ?",
            )
            .bind(&dataset_uuid)
            .bind(run_id)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(db_error)?;
            if already_linked.is_some() {
                continue;
            }
            let input_uuid = ferroflow_core::ids::new_run_id();
            sqlx::query(
                "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) \
                 VALUES (?, 'DATASET', ?, 'RUN', ?, 0)",
            )
            .bind(&input_uuid)
            .bind(&dataset_uuid)
            .bind(run_id)
            .execute(&mut *transaction)
            .await
            .map_err(db_error)?;
            for tag in &input.tags {
                sqlx::query(
                    "INSERT OR REPLACE INTO input_tags (input_uuid, name, value) VALUES (?, ?, ?)",
                )
                .bind(&input_uuid)
                .bind(&tag.key)
                .bind(&tag.value)
                .execute(&mut *transaction)
                .await
                .map_err(db_error)?;
            }
        }
        for model_id in &inputs.model_ids {
            sqlx::query(
                "INSERT OR REPLACE INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) \
                 VALUES (?, 'RUN_INPUT', ?, 'MODEL_INPUT', ?, 0)",
            )
            .bind(ferroflow_core::ids::new_run_id())
            .bind(run_id)
            .bind(model_id)
            .execute(&mut *transaction)
            .await
            .map_err(db_error)?;
        }
        transaction.commit().await.map_err(db_error)
    }

    async fn log_outputs(&self, run_id: &str, outputs: Vec<ModelOutput>) -> Result<()> {
        let mut transaction = self.writer.begin().await.map_err(db_error)?;
        for output in &outputs {
            sqlx::query(
                "INSERT OR REPLACE INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) \
                 VALUES (?, 'RUN_OUTPUT', ?, 'MODEL_OUTPUT', ?, ?)",
            )
            .bind(ferroflow_core::ids::new_run_id())
            .bind(run_id)
            .bind(&output.model_id)
            .bind(output.step.unwrap_or(0))
            .execute(&mut *transaction)
            .await
            .map_err(db_error)?;
        }
        transaction.commit().await.map_err(db_error)
    }

    async fn search_datasets(&self, experiment_ids: &[String]) -> Result<Vec<DatasetSummary>> {
        let ids: Vec<i64> = experiment_ids
            .iter()
            .filter_map(|id| id.parse::<i64>().ok())
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT DISTINCT datasets.experiment_id, datasets.name, datasets.digest, input_tags.value AS context \
             FROM datasets JOIN inputs ON inputs.source_id = datasets.dataset_uuid AND inputs.source_type = 'DATASET' \
             LEFT JOIN input_tags ON input_tags.input_uuid = inputs.input_uuid AND input_tags.name = 'mlflow.data.context' \
             WHERE datasets.experiment_id IN ({}) ORDER BY datasets.experiment_id, datasets.name, datasets.digest LIMIT 1000",
            placeholders(ids.len())
        );
        let mut query = sqlx::query(&sql);
        for id in &ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.readers).await.map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let experiment_id: i64 = row.try_get("experiment_id").map_err(db_error)?;
                Ok(DatasetSummary {
                    experiment_id: experiment_id.to_string(),
                    name: row.try_get("name").map_err(db_error)?,
                    digest: row.try_get("digest").map_err(db_error)?,
                    context: row.try_get("context").map_err(db_error)?,
                })
            })
            .collect()
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}
