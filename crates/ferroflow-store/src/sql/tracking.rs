//! `TrackingStore` on SQL, for every dialect.

use super::connection::{db_error, is_unique_violation, query, Query, Row, Transaction};
use super::{append_to_uri, placeholders, SqlStore};
use crate::search::{self, Dialect};
use async_trait::async_trait;
use ferroflow_core::ids::{encode_history_token, encode_page_token, HistoryCursor, HistoryKey};
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
use std::collections::{BTreeMap, HashMap};

/// The tag that mirrors a run's name.
const RUN_NAME_TAG: &str = "mlflow.runName";
/// SQLite binds at most 32766 values and PostgreSQL 65535; hydrate in chunks well below that.
const CHUNK: usize = 500;
/// Infinite metrics are stored as the largest finite doubles, as MLflow does (SQL has no infinity).
const STORED_MAX: f64 = f64::MAX;

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

fn experiment_from_row(row: &Row) -> Result<Experiment> {
    let experiment_id: i64 = row.get("experiment_id")?;
    Ok(Experiment {
        experiment_id: experiment_id.to_string(),
        name: row.get("name")?,
        artifact_location: row
            .get::<Option<String>>("artifact_location")?
            .unwrap_or_default(),
        lifecycle_stage: row
            .get::<Option<String>>("lifecycle_stage")?
            .unwrap_or_else(|| "active".to_owned()),
        last_update_time: row.get("last_update_time")?,
        creation_time: row.get("creation_time")?,
        tags: Vec::new(),
        workspace: row.get("workspace")?,
    })
}

fn run_info_from_row(row: &Row) -> Result<RunInfo> {
    let run_id: String = row.get("run_uuid")?;
    let experiment_id: Option<i64> = row.get("experiment_id")?;
    Ok(RunInfo {
        run_uuid: run_id.clone(),
        run_id,
        run_name: row.get::<Option<String>>("name")?.unwrap_or_default(),
        experiment_id: experiment_id.map(|id| id.to_string()).unwrap_or_default(),
        user_id: row.get::<Option<String>>("user_id")?.unwrap_or_default(),
        status: row
            .get::<Option<String>>("status")?
            .unwrap_or_else(|| "RUNNING".to_owned()),
        start_time: row.get("start_time")?,
        end_time: row.get("end_time")?,
        artifact_uri: row
            .get::<Option<String>>("artifact_uri")?
            .unwrap_or_default(),
        lifecycle_stage: row
            .get::<Option<String>>("lifecycle_stage")?
            .unwrap_or_else(|| "active".to_owned()),
    })
}

pub(super) fn metric_from_row(row: &Row, with_run_id: bool) -> Result<Metric> {
    let value: f64 = row.get("value")?;
    let is_nan: bool = row.get("is_nan")?;
    Ok(Metric {
        key: row.get("key")?,
        value: stored_metric_value(value, is_nan),
        timestamp: row.get::<Option<i64>>("timestamp")?.unwrap_or(0),
        step: row.get("step")?,
        dataset_name: None,
        dataset_digest: None,
        model_id: None,
        run_id: if with_run_id {
            Some(row.get("run_uuid")?)
        } else {
            None
        },
    })
}

const RUN_COLUMNS: &str =
    "run_uuid, name, experiment_id, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage";
const EXPERIMENT_COLUMNS: &str =
    "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace";
pub(super) const METRIC_COLUMNS: &str = "\"key\", value, timestamp, step, is_nan, run_uuid";

impl SqlStore {
    async fn experiments_by_ids(&self, ids: &[i64]) -> Result<Vec<Experiment>> {
        let mut by_id: HashMap<String, Experiment> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let marks = placeholders(chunk.len());
            let sql = format!(
                "SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE experiment_id IN ({marks})"
            );
            for row in self
                .pools
                .fetch_all(query(sql).bind_each(chunk.iter().copied()))
                .await
                .map_err(db_error)?
            {
                let experiment = experiment_from_row(&row)?;
                by_id.insert(experiment.experiment_id.clone(), experiment);
            }
            let sql = format!(
                "SELECT experiment_id, \"key\", value FROM experiment_tags WHERE experiment_id IN ({marks}) \
                 ORDER BY \"key\""
            );
            for row in self
                .pools
                .fetch_all(query(sql).bind_each(chunk.iter().copied()))
                .await
                .map_err(db_error)?
            {
                let experiment_id: i64 = row.get("experiment_id")?;
                if let Some(experiment) = by_id.get_mut(&experiment_id.to_string()) {
                    experiment.tags.push(ExperimentTag {
                        key: row.get("key")?,
                        value: row.get::<Option<String>>("value")?.unwrap_or_default(),
                    });
                }
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| by_id.remove(&id.to_string()))
            .collect())
    }

    /// Loads whole runs by id, in the order given.
    async fn runs_by_ids(&self, run_ids: &[String]) -> Result<Vec<Run>> {
        let mut by_id: HashMap<String, Run> = HashMap::with_capacity(run_ids.len());
        for chunk in run_ids.chunks(CHUNK) {
            let marks = placeholders(chunk.len());
            let ids = || chunk.iter().map(String::as_str);
            let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_uuid IN ({marks})");
            for row in self
                .pools
                .fetch_all(query(sql).bind_each(ids()))
                .await
                .map_err(db_error)?
            {
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
                "SELECT {METRIC_COLUMNS} FROM latest_metrics WHERE run_uuid IN ({marks}) ORDER BY \"key\""
            );
            for row in self
                .pools
                .fetch_all(query(sql).bind_each(ids()))
                .await
                .map_err(db_error)?
            {
                let run_id: String = row.get("run_uuid")?;
                if let Some(run) = by_id.get_mut(&run_id) {
                    run.data.metrics.push(metric_from_row(&row, false)?);
                }
            }
            let sql = format!(
                "SELECT \"key\", value, run_uuid FROM params WHERE run_uuid IN ({marks}) ORDER BY \"key\""
            );
            for row in self
                .pools
                .fetch_all(query(sql).bind_each(ids()))
                .await
                .map_err(db_error)?
            {
                let run_id: String = row.get("run_uuid")?;
                if let Some(run) = by_id.get_mut(&run_id) {
                    run.data.params.push(Param {
                        key: row.get("key")?,
                        value: row.get("value")?,
                    });
                }
            }
            let sql = format!(
                "SELECT \"key\", value, run_uuid FROM tags WHERE run_uuid IN ({marks}) ORDER BY \"key\""
            );
            for row in self
                .pools
                .fetch_all(query(sql).bind_each(ids()))
                .await
                .map_err(db_error)?
            {
                let run_id: String = row.get("run_uuid")?;
                if let Some(run) = by_id.get_mut(&run_id) {
                    run.data.tags.push(RunTag {
                        key: row.get("key")?,
                        value: row.get::<Option<String>>("value")?.unwrap_or_default(),
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
        let rows = self
            .pools
            .fetch_all(query(sql).bind_each(chunk.iter().map(String::as_str)))
            .await
            .map_err(db_error)?;
        let mut input_positions: HashMap<String, (String, usize)> = HashMap::new();
        for row in rows {
            let run_id: String = row.get("run_uuid")?;
            let input_uuid: String = row.get("input_uuid")?;
            if let Some(run) = by_id.get_mut(&run_id) {
                run.inputs.dataset_inputs.push(DatasetInput {
                    tags: Vec::new(),
                    dataset: Dataset {
                        name: row.get("name")?,
                        digest: row.get("digest")?,
                        source_type: row.get("dataset_source_type")?,
                        source: row.get("dataset_source")?,
                        schema: row.get("dataset_schema")?,
                        profile: row.get("dataset_profile")?,
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
                let statement = query(sql).bind_each(input_chunk.iter().map(|id| id.as_str()));
                for row in self.pools.fetch_all(statement).await.map_err(db_error)? {
                    let input_uuid: String = row.get("input_uuid")?;
                    if let Some((run_id, position)) = input_positions.get(&input_uuid) {
                        if let Some(input) = by_id
                            .get_mut(run_id)
                            .and_then(|run| run.inputs.dataset_inputs.get_mut(*position))
                        {
                            input.tags.push(InputTag {
                                key: row.get("name")?,
                                value: row.get("value")?,
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
        let statement = query(sql).bind_each(chunk.iter().map(String::as_str));
        for row in self.pools.fetch_all(statement).await.map_err(db_error)? {
            let run_id: String = row.get("source_id")?;
            let source_type: String = row.get("source_type")?;
            let model_id: String = row.get("destination_id")?;
            if let Some(run) = by_id.get_mut(&run_id) {
                if source_type == "RUN_INPUT" {
                    run.inputs.model_inputs.push(ModelInput { model_id });
                } else {
                    run.outputs
                        .get_or_insert_with(RunOutputs::default)
                        .model_outputs
                        .push(ModelOutput {
                            model_id,
                            step: Some(row.get("step")?),
                        });
                }
            }
        }
        Ok(())
    }
}

/// `INSERT ... VALUES (...)` followed by what keeps the existing row on a key conflict.
fn insert_ignoring_duplicates(dialect: Dialect, insert: &str, first_key_column: &str) -> String {
    match dialect {
        Dialect::Sqlite | Dialect::Postgres => format!("{insert} ON CONFLICT DO NOTHING"),
        Dialect::MySql => {
            format!("{insert} ON DUPLICATE KEY UPDATE {first_key_column} = {first_key_column}")
        }
    }
}

/// `INSERT ... VALUES (...)` followed by what replaces `updated` columns of the row with the same `key`.
fn upsert(dialect: Dialect, insert: &str, key: &[&str], updated: &[&str]) -> String {
    let assignments: Vec<String> = updated
        .iter()
        .map(|column| match dialect {
            Dialect::Sqlite | Dialect::Postgres => format!("{column} = excluded.{column}"),
            Dialect::MySql => format!("{column} = VALUES({column})"),
        })
        .collect();
    match dialect {
        Dialect::Sqlite | Dialect::Postgres => format!(
            "{insert} ON CONFLICT ({}) DO UPDATE SET {}",
            key.join(", "),
            assignments.join(", ")
        ),
        Dialect::MySql => format!(
            "{insert} ON DUPLICATE KEY UPDATE {}",
            assignments.join(", ")
        ),
    }
}

/// `SELECT ... FOR UPDATE` where the database has row locks (SQLite has one writer and no such clause).
fn for_update(dialect: Dialect, select: &str) -> String {
    match dialect {
        Dialect::Sqlite => select.to_owned(),
        Dialect::Postgres | Dialect::MySql => format!("{select} FOR UPDATE"),
    }
}

/// `(?, ?, ?), (?, ?, ?)`: the VALUES rows of a multi-row INSERT of `rows` rows of `columns` values.
fn value_rows(columns: usize, rows: usize) -> String {
    let row = format!("({})", placeholders(columns));
    let mut text = String::with_capacity(rows * (row.len() + 2));
    for index in 0..rows {
        if index > 0 {
            text.push_str(", ");
        }
        text.push_str(&row);
    }
    text
}

/// Writes metrics, keeping `latest_metrics` at the row with the greatest (step, timestamp, value), and
/// links those that name a logged model to it (`logged_model_metrics`). Rows go in multi-row INSERTs of
/// [`CHUNK`] rows, so a batch of 1000 metrics costs a handful of statements, not a thousand.
async fn write_metrics(
    transaction: &mut Transaction,
    run_id: &str,
    metrics: &[Metric],
) -> Result<()> {
    super::logged_models::write_logged_model_metrics(transaction, run_id, metrics).await?;
    let dialect = transaction.dialect();
    let mut latest: BTreeMap<&str, LatestKey> = BTreeMap::new();
    for chunk in metrics.chunks(CHUNK) {
        let insert = insert_ignoring_duplicates(
            dialect,
            &format!(
                "INSERT INTO metrics (\"key\", value, timestamp, run_uuid, step, is_nan) VALUES {}",
                value_rows(6, chunk.len())
            ),
            "run_uuid",
        );
        let mut statement = query(insert);
        for metric in chunk {
            let (value, is_nan) = sanitize_metric_value(metric.value);
            statement = statement
                .bind(metric.key.as_str())
                .bind(value)
                .bind(metric.timestamp)
                .bind(run_id)
                .bind(metric.step)
                .bind(is_nan);
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
        transaction.execute(statement).await.map_err(db_error)?;
    }
    // Keys in a fixed (sorted) order, so concurrent writers of one run lock rows in the same order.
    let latest: Vec<(&str, LatestKey)> = latest.into_iter().collect();
    for chunk in latest.chunks(CHUNK) {
        write_latest_metrics(transaction, run_id, chunk).await?;
    }
    Ok(())
}

/// Replaces each `latest_metrics` row whose candidate is newer (MLflow's order: step, timestamp, value)
/// and inserts the missing ones. SQLite and PostgreSQL do it in one conditional upsert, which PostgreSQL
/// evaluates under the row lock. MySQL's `ON DUPLICATE KEY UPDATE` assigns columns one after another (a
/// condition on them would see half-updated rows), so there the rows are inserted if missing, read
/// `FOR UPDATE`, and the older ones updated.
async fn write_latest_metrics(
    transaction: &mut Transaction,
    run_id: &str,
    latest: &[(&str, LatestKey)],
) -> Result<()> {
    let dialect = transaction.dialect();
    let rows = value_rows(6, latest.len());
    let bind_rows = |mut statement: Query| {
        for (key, (step, timestamp, value, is_nan)) in latest {
            statement = statement
                .bind(*key)
                .bind(*value)
                .bind(*timestamp)
                .bind(*step)
                .bind(*is_nan)
                .bind(run_id);
        }
        statement
    };
    let insert =
        format!("INSERT INTO latest_metrics (\"key\", value, timestamp, step, is_nan, run_uuid) VALUES {rows}");
    match dialect {
        Dialect::Sqlite | Dialect::Postgres => {
            let upsert = format!(
                "{insert} ON CONFLICT (\"key\", run_uuid) DO UPDATE SET value = excluded.value, \
                 timestamp = excluded.timestamp, step = excluded.step, is_nan = excluded.is_nan \
                 WHERE (excluded.step, excluded.timestamp, excluded.value) > \
                 (latest_metrics.step, COALESCE(latest_metrics.timestamp, 0), latest_metrics.value)"
            );
            transaction
                .execute(bind_rows(query(upsert)))
                .await
                .map_err(db_error)?;
        }
        Dialect::MySql => {
            let insert_missing = insert_ignoring_duplicates(dialect, &insert, "run_uuid");
            transaction
                .execute(bind_rows(query(insert_missing)))
                .await
                .map_err(db_error)?;
            let select = for_update(
                dialect,
                &format!(
                    "SELECT \"key\", step, timestamp, value FROM latest_metrics \
                     WHERE run_uuid = ? AND \"key\" IN ({})",
                    placeholders(latest.len())
                ),
            );
            let current_rows = transaction
                .fetch_all(
                    query(select)
                        .bind(run_id)
                        .bind_each(latest.iter().map(|(key, _)| *key)),
                )
                .await
                .map_err(db_error)?;
            let mut current = HashMap::with_capacity(current_rows.len());
            for row in &current_rows {
                let key: String = row.get("key")?;
                let timestamp: Option<i64> = row.get("timestamp")?;
                current.insert(
                    key,
                    (
                        row.get::<i64>("step")?,
                        timestamp.unwrap_or(0),
                        row.get::<f64>("value")?,
                        false,
                    ),
                );
            }
            for (key, candidate) in latest {
                // A row just inserted is the candidate itself, which is not newer than itself.
                let replace = current
                    .get(*key)
                    .is_none_or(|stored| is_newer(*candidate, *stored));
                if !replace {
                    continue;
                }
                let (step, timestamp, value, is_nan) = *candidate;
                transaction
                    .execute(
                        query(
                            "UPDATE latest_metrics SET value = ?, timestamp = ?, step = ?, is_nan = ? \
                             WHERE run_uuid = ? AND \"key\" = ?",
                        )
                        .bind(value)
                        .bind(timestamp)
                        .bind(step)
                        .bind(is_nan)
                        .bind(run_id)
                        .bind(*key),
                    )
                    .await
                    .map_err(db_error)?;
            }
        }
    }
    Ok(())
}

/// A metric's place in MLflow's "latest" order: step, timestamp, stored value (and is_nan, not compared).
type LatestKey = (i64, i64, f64, bool);

/// MLflow's order for the latest metric: (step, timestamp, value), compared on stored values.
fn is_newer(candidate: LatestKey, current: LatestKey) -> bool {
    (candidate.0, candidate.1) > (current.0, current.1)
        || ((candidate.0, candidate.1) == (current.0, current.1) && candidate.2 > current.2)
}

/// Adds params that are new; a param already logged with another value aborts the whole batch. The insert
/// keeps an existing row, so concurrent writers of the same key cannot fail on the primary key; the stored
/// values are then read back in one statement and compared.
async fn write_params(transaction: &mut Transaction, run_id: &str, params: &[Param]) -> Result<()> {
    for chunk in params.chunks(CHUNK) {
        let insert = insert_ignoring_duplicates(
            transaction.dialect(),
            &format!(
                "INSERT INTO params (\"key\", value, run_uuid) VALUES {}",
                value_rows(3, chunk.len())
            ),
            "run_uuid",
        );
        let mut statement = query(insert);
        for param in chunk {
            statement = statement
                .bind(param.key.as_str())
                .bind(param.value.as_str())
                .bind(run_id);
        }
        transaction.execute(statement).await.map_err(db_error)?;
        let select = format!(
            "SELECT \"key\", value FROM params WHERE run_uuid = ? AND \"key\" IN ({})",
            placeholders(chunk.len())
        );
        let stored_rows = transaction
            .fetch_all(
                query(select)
                    .bind(run_id)
                    .bind_each(chunk.iter().map(|param| param.key.as_str())),
            )
            .await
            .map_err(db_error)?;
        let mut stored = HashMap::with_capacity(stored_rows.len());
        for row in &stored_rows {
            stored.insert(row.get::<String>("key")?, row.get::<String>("value")?);
        }
        for param in chunk {
            match stored.get(&param.key) {
                Some(old_value) if *old_value != param.value => {
                    return Err(Error::invalid_parameter(format!(
                        "Changing param values is not allowed. Param with key='{}' was already logged \
                         with value='{}' for run ID='{}'. Attempted logging new value '{}'.",
                        param.key, old_value, run_id, param.value
                    )));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Sets tags in multi-row upserts; of two tags with one key in a batch the later wins, as on MLflow. With
/// `rename`, an `mlflow.runName` tag also renames the run (a new run already has its name).
async fn write_tags(
    transaction: &mut Transaction,
    run_id: &str,
    tags: &[RunTag],
    rename: bool,
) -> Result<()> {
    let last_index: HashMap<&str, usize> = tags
        .iter()
        .enumerate()
        .map(|(index, tag)| (tag.key.as_str(), index))
        .collect();
    let last_by_key: Vec<&RunTag> = tags
        .iter()
        .enumerate()
        .filter(|(index, tag)| last_index.get(tag.key.as_str()) == Some(index))
        .map(|(_, tag)| tag)
        .collect();
    for chunk in last_by_key.chunks(CHUNK) {
        let sql = upsert(
            transaction.dialect(),
            &format!(
                "INSERT INTO tags (\"key\", value, run_uuid) VALUES {}",
                value_rows(3, chunk.len())
            ),
            &["\"key\"", "run_uuid"],
            &["value"],
        );
        let mut statement = query(sql);
        for tag in chunk {
            statement = statement
                .bind(tag.key.as_str())
                .bind(tag.value.as_str())
                .bind(run_id);
        }
        transaction.execute(statement).await.map_err(db_error)?;
    }
    let name = last_by_key.iter().find(|tag| tag.key == RUN_NAME_TAG);
    if let Some(name) = name.filter(|_| rename) {
        transaction
            .execute(
                query("UPDATE runs SET name = ? WHERE run_uuid = ?")
                    .bind(name.value.as_str())
                    .bind(run_id),
            )
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

fn experiment_tag_upsert(dialect: Dialect) -> String {
    upsert(
        dialect,
        "INSERT INTO experiment_tags (\"key\", value, experiment_id) VALUES (?, ?, ?)",
        &["\"key\"", "experiment_id"],
        &["value"],
    )
}

fn next_token(offset: usize, max_results: usize, fetched: usize) -> Option<String> {
    (fetched > max_results).then(|| encode_page_token(offset + max_results))
}

/// A count or offset as a bound integer.
fn bound(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

#[async_trait]
impl TrackingStore for SqlStore {
    async fn create_experiment(&self, experiment: NewExperiment) -> Result<String> {
        let dialect = self.dialect();
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let insert =
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, \
                      last_update_time, workspace) VALUES (?, ?, 'active', ?, ?, 'default')";
        let statement = |sql: String| {
            query(sql)
                .bind(experiment.name.as_str())
                .bind(experiment.artifact_location.clone())
                .bind(experiment.creation_time)
                .bind(experiment.creation_time)
        };
        let inserted = match dialect {
            Dialect::Postgres => transaction
                .fetch_optional(statement(format!("{insert} RETURNING experiment_id")))
                .await
                .map(|row| (row, None)),
            Dialect::Sqlite | Dialect::MySql => transaction
                .execute(statement(insert.to_owned()))
                .await
                .map(|done| (None, done.last_insert_id)),
        };
        let experiment_id = match inserted {
            Ok((Some(row), _)) => row.get::<i64>("experiment_id")?,
            Ok((None, Some(id))) => id,
            Ok((None, None)) => {
                return Err(Error::internal(std::io::Error::other(
                    "the database gave no id to the new experiment",
                )))
            }
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
            transaction
                .execute(
                    query("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?")
                        .bind(append_to_uri(root, &experiment_id.to_string()))
                        .bind(experiment_id),
                )
                .await
                .map_err(db_error)?;
        }
        let upsert_tag = experiment_tag_upsert(dialect);
        for tag in &experiment.tags {
            transaction
                .execute(
                    query(upsert_tag.clone())
                        .bind(tag.key.as_str())
                        .bind(tag.value.as_str())
                        .bind(experiment_id),
                )
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
        let row = self
            .pools
            .fetch_optional(
                query("SELECT experiment_id FROM experiments WHERE name = ?").bind(name),
            )
            .await
            .map_err(db_error)?;
        match row {
            None => Ok(None),
            Some(row) => {
                let id: i64 = row.get("experiment_id")?;
                Ok(self.experiments_by_ids(&[id]).await?.into_iter().next())
            }
        }
    }

    async fn rename_experiment(&self, experiment_id: &str, new_name: &str, now: i64) -> Result<()> {
        let id = experiment_id_number(experiment_id)?;
        let result = self
            .pools
            .execute(
                query(
                    "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
                )
                .bind(new_name)
                .bind(now)
                .bind(id),
            )
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
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        transaction
            .execute(
                query(
                    "UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?",
                )
                .bind(stage.as_str())
                .bind(now)
                .bind(id),
            )
            .await
            .map_err(db_error)?;
        let deleted_time = match stage {
            LifecycleStage::Deleted => Some(now),
            LifecycleStage::Active => None,
        };
        transaction
            .execute(
                query(
                    "UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE experiment_id = ?",
                )
                .bind(stage.as_str())
                .bind(deleted_time)
                .bind(id),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)
    }

    async fn set_experiment_tag(&self, experiment_id: &str, tag: ExperimentTag) -> Result<()> {
        let id = experiment_id_number(experiment_id)?;
        self.pools
            .execute(
                query(experiment_tag_upsert(self.dialect()))
                    .bind(tag.key)
                    .bind(tag.value)
                    .bind(id),
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn delete_experiment_tag(&self, experiment_id: &str, key: &str) -> Result<bool> {
        let id = experiment_id_number(experiment_id)?;
        let done = self
            .pools
            .execute(
                query("DELETE FROM experiment_tags WHERE experiment_id = ? AND \"key\" = ?")
                    .bind(id)
                    .bind(key),
            )
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected > 0)
    }

    async fn search_experiments(
        &self,
        experiment_query: ExperimentQuery,
    ) -> Result<Page<Experiment>> {
        let dialect = self.dialect();
        let statement = search::experiment_search_statement_for(&experiment_query, dialect)?;
        let rows = self
            .pools
            .fetch_all(Query::built(&statement, dialect))
            .await
            .map_err(db_error)?;
        let ids = rows
            .iter()
            .map(|row| row.get::<i64>("experiment_id"))
            .collect::<Result<Vec<i64>>>()?;
        let next_page_token = next_token(
            experiment_query.offset,
            experiment_query.max_results,
            ids.len(),
        );
        let page_ids: Vec<i64> = ids.into_iter().take(experiment_query.max_results).collect();
        Ok(Page {
            items: self.experiments_by_ids(&page_ids).await?,
            next_page_token,
        })
    }

    async fn create_run(&self, run: NewRun) -> Result<()> {
        let experiment_id = experiment_id_number(&run.experiment_id)?;
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        transaction
            .execute(
                query(
                    "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, \
                     start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time) \
                     VALUES (?, ?, 'UNKNOWN', '', '', ?, 'RUNNING', ?, NULL, '', 'active', ?, ?, NULL)",
                )
                .bind(run.run_id.as_str())
                .bind(run.run_name.as_str())
                .bind(run.user_id.as_str())
                .bind(run.start_time)
                .bind(run.artifact_uri.as_str())
                .bind(experiment_id),
            )
            .await
            .map_err(db_error)?;
        write_tags(&mut transaction, &run.run_id, &run.tags, false).await?;
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
        let row = self
            .pools
            .fetch_optional(query(sql).bind(run_id))
            .await
            .map_err(db_error)?;
        row.as_ref().map(run_info_from_row).transpose()
    }

    async fn update_run(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        if let Some(status) = update.status {
            transaction
                .execute(
                    query("UPDATE runs SET status = ? WHERE run_uuid = ?")
                        .bind(status.as_str())
                        .bind(run_id),
                )
                .await
                .map_err(db_error)?;
        }
        if let Some(end_time) = update.end_time {
            transaction
                .execute(
                    query("UPDATE runs SET end_time = ? WHERE run_uuid = ?")
                        .bind(end_time)
                        .bind(run_id),
                )
                .await
                .map_err(db_error)?;
        }
        if let Some(run_name) = &update.run_name {
            write_tags(
                &mut transaction,
                run_id,
                &[ferroflow_core::store::run_tag(RUN_NAME_TAG, run_name)],
                true,
            )
            .await?;
        }
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_uuid = ?");
        let row = transaction
            .fetch_optional(query(sql).bind(run_id))
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
        self.pools
            .execute(
                query("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?")
                    .bind(stage.as_str())
                    .bind(deleted_time)
                    .bind(run_id),
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn log_batch(&self, run_id: &str, batch: Batch) -> Result<()> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        // Params first: a conflicting value aborts the whole batch before anything else is written.
        write_params(&mut transaction, run_id, &batch.params).await?;
        write_metrics(&mut transaction, run_id, &batch.metrics).await?;
        write_tags(&mut transaction, run_id, &batch.tags, true).await?;
        transaction.commit().await.map_err(db_error)
    }

    async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<bool> {
        let done = self
            .pools
            .execute(
                query("DELETE FROM tags WHERE run_uuid = ? AND \"key\" = ?")
                    .bind(run_id)
                    .bind(key),
            )
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected > 0)
    }

    async fn search_runs(&self, run_query: RunQuery) -> Result<Page<Run>> {
        let dialect = self.dialect();
        let statement = search::run_search_statement_for(&run_query, dialect)?;
        let rows = self
            .pools
            .fetch_all(Query::built(&statement, dialect))
            .await
            .map_err(db_error)?;
        let ids = rows
            .iter()
            .map(|row| row.get::<String>("run_uuid"))
            .collect::<Result<Vec<String>>>()?;
        let next_page_token = next_token(run_query.offset, run_query.max_results, ids.len());
        let page_ids: Vec<String> = ids.into_iter().take(run_query.max_results).collect();
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
        cursor: HistoryCursor,
    ) -> Result<Page<Metric>> {
        let limit = max_results
            .map(|max| bound(max).saturating_add(1))
            .unwrap_or(i64::MAX);
        // A token of ours seeks past the last point returned (an index range, whatever the page number);
        // MLflow's offset-only token skips rows. is_nan ends the order so that every point has one place.
        let seek = if cursor.after.is_some() {
            " AND (timestamp, step, value, is_nan) > (?, ?, ?, ?)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {METRIC_COLUMNS} FROM metrics WHERE run_uuid = ? AND \"key\" = ?{seek} \
             ORDER BY timestamp, step, value, is_nan LIMIT ? OFFSET ?"
        );
        let mut statement = query(sql).bind(run_id).bind(key);
        let mut offset = cursor.offset;
        if let Some(after) = cursor.after {
            statement = statement
                .bind(after.timestamp)
                .bind(after.step)
                .bind(after.value)
                .bind(after.is_nan);
            offset = 0;
        }
        let rows = self
            .pools
            .fetch_all(statement.bind(limit).bind(bound(offset)))
            .await
            .map_err(db_error)?;
        let mut metrics = rows
            .iter()
            .map(|row| metric_from_row(row, false))
            .collect::<Result<Vec<_>>>()?;
        let next_page_token = match max_results {
            Some(max) if metrics.len() > max => {
                metrics.truncate(max);
                let after = metrics.last().map(|last| {
                    let (value, is_nan) = sanitize_metric_value(last.value);
                    HistoryKey {
                        timestamp: last.timestamp,
                        step: last.step,
                        value,
                        is_nan,
                    }
                });
                Some(encode_history_token(&HistoryCursor {
                    offset: cursor.offset + max,
                    after,
                }))
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
        let sql = format!(
            "SELECT {METRIC_COLUMNS} FROM metrics WHERE run_uuid = ? AND \"key\" = ? \
             ORDER BY timestamp, step, value LIMIT ?"
        );
        let mut metrics = Vec::new();
        for run_id in sorted_run_ids {
            let rows = self
                .pools
                .fetch_all(
                    query(sql.clone())
                        .bind(run_id.as_str())
                        .bind(key)
                        .bind(bound(max_results)),
                )
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
        // MLflow's NTILE sample, found by position without sorting the history (`metric_sampling.rs`).
        let range = steps.unwrap_or((i64::MIN, i64::MAX));
        let mut metrics = Vec::new();
        for run_id in run_ids {
            metrics.extend(
                self.sample_metric_history(run_id, key, range, max_results)
                    .await?,
            );
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
        let dialect = self.dialect();
        let insert_dataset = insert_ignoring_duplicates(
            dialect,
            "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, \
             dataset_source, dataset_schema, dataset_profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            "experiment_id",
        );
        let insert_link = insert_ignoring_duplicates(
            dialect,
            "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) \
             VALUES (?, 'DATASET', ?, 'RUN', ?, 0)",
            "source_id",
        );
        let upsert_input_tag = upsert(
            dialect,
            "INSERT INTO input_tags (input_uuid, name, value) VALUES (?, ?, ?)",
            &["input_uuid", "name"],
            &["value"],
        );
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let mut seen: Vec<(String, String)> = Vec::new();
        for input in &inputs.datasets {
            let identity = (input.dataset.name.clone(), input.dataset.digest.clone());
            if seen.contains(&identity) {
                continue;
            }
            seen.push(identity);
            // Insert-if-missing, then read back whichever row is there (ours or a concurrent writer's).
            transaction
                .execute(
                    query(insert_dataset.clone())
                        .bind(ferroflow_core::ids::new_run_id())
                        .bind(experiment_id)
                        .bind(input.dataset.name.as_str())
                        .bind(input.dataset.digest.as_str())
                        .bind(input.dataset.source_type.as_str())
                        .bind(input.dataset.source.as_str())
                        .bind(input.dataset.schema.clone())
                        .bind(input.dataset.profile.clone()),
                )
                .await
                .map_err(db_error)?;
            let row = transaction
                .fetch_optional(
                    query(
                        "SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?",
                    )
                    .bind(experiment_id)
                    .bind(input.dataset.name.as_str())
                    .bind(input.dataset.digest.as_str()),
                )
                .await
                .map_err(db_error)?;
            let Some(row) = row else {
                return Err(Error::internal(std::io::Error::other(
                    "the dataset just written is missing",
                )));
            };
            let dataset_uuid: String = row.get("dataset_uuid")?;
            let input_uuid = ferroflow_core::ids::new_run_id();
            transaction
                .execute(
                    query(insert_link.clone())
                        .bind(input_uuid.as_str())
                        .bind(dataset_uuid.as_str())
                        .bind(run_id),
                )
                .await
                .map_err(db_error)?;
            let linked = transaction
                .fetch_optional(
                    query(
                        "SELECT input_uuid FROM inputs WHERE source_type = 'DATASET' AND source_id = ? \
                         AND destination_type = 'RUN' AND destination_id = ?",
                    )
                    .bind(dataset_uuid.as_str())
                    .bind(run_id),
                )
                .await
                .map_err(db_error)?;
            let linked_uuid: Option<String> =
                linked.map(|row| row.get("input_uuid")).transpose()?;
            if linked_uuid.as_deref() != Some(input_uuid.as_str()) {
                // The run already had this dataset: its tags stay as they were.
                continue;
            }
            for tag in &input.tags {
                transaction
                    .execute(
                        query(upsert_input_tag.clone())
                            .bind(input_uuid.as_str())
                            .bind(tag.key.as_str())
                            .bind(tag.value.as_str()),
                    )
                    .await
                    .map_err(db_error)?;
            }
        }
        let upsert_model_input = upsert(
            dialect,
            "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) \
             VALUES (?, 'RUN_INPUT', ?, 'MODEL_INPUT', ?, 0)",
            &["source_type", "source_id", "destination_type", "destination_id"],
            &["input_uuid", "step"],
        );
        for model_id in &inputs.model_ids {
            transaction
                .execute(
                    query(upsert_model_input.clone())
                        .bind(ferroflow_core::ids::new_run_id())
                        .bind(run_id)
                        .bind(model_id.as_str()),
                )
                .await
                .map_err(db_error)?;
        }
        transaction.commit().await.map_err(db_error)
    }

    async fn log_outputs(&self, run_id: &str, outputs: Vec<ModelOutput>) -> Result<()> {
        let upsert_output = upsert(
            self.dialect(),
            "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) \
             VALUES (?, 'RUN_OUTPUT', ?, 'MODEL_OUTPUT', ?, ?)",
            &["source_type", "source_id", "destination_type", "destination_id"],
            &["input_uuid", "step"],
        );
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        for output in &outputs {
            transaction
                .execute(
                    query(upsert_output.clone())
                        .bind(ferroflow_core::ids::new_run_id())
                        .bind(run_id)
                        .bind(output.model_id.as_str())
                        .bind(output.step.unwrap_or(0)),
                )
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
        let rows = self
            .pools
            .fetch_all(query(sql).bind_each(ids.iter().copied()))
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let experiment_id: i64 = row.get("experiment_id")?;
                Ok(DatasetSummary {
                    experiment_id: experiment_id.to_string(),
                    name: row.get("name")?,
                    digest: row.get("digest")?,
                    context: row.get("context")?,
                })
            })
            .collect()
    }

    async fn ping(&self) -> Result<()> {
        self.pools
            .fetch_optional(query("SELECT 1 AS one"))
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn close(&self) {
        self.pools.close().await;
    }
}
