//! Writes for `ferroflow import`: experiments and runs of a legacy MLflow FileStore (`mlruns/`) saved with
//! their original ids and fields, as MLflow's `mlflow migrate-filestore` saves them.
//!
//! The `TrackingStore` trait creates experiments and runs with new ids and times; an import keeps those of
//! the FileStore, so it has these narrow methods of its own. Each run is one transaction, and every value
//! is bound.

use super::connection::{is_unique_violation, query, Transaction};
use super::SqlStore;
use crate::search::Dialect;
use std::collections::{HashMap, HashSet};

/// An experiment as the FileStore holds it (`<id>/meta.yaml` and `<id>/tags/`).
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyExperiment {
    pub experiment_id: i64,
    pub name: String,
    pub artifact_location: Option<String>,
    /// `active`, or `deleted` for an experiment under `.trash/`.
    pub lifecycle_stage: String,
    pub creation_time: Option<i64>,
    pub last_update_time: Option<i64>,
    pub tags: Vec<(String, String)>,
}

/// A run as the FileStore holds it (`<experiment>/<run>/meta.yaml`, `params/`, `tags/`, `metrics/`).
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyRun {
    pub run_uuid: String,
    pub experiment_id: i64,
    pub name: Option<String>,
    /// One of MLflow's source types (`LOCAL`, `NOTEBOOK`, ...).
    pub source_type: String,
    pub source_name: String,
    pub entry_point_name: String,
    pub user_id: Option<String>,
    /// One of MLflow's run statuses (`RUNNING`, `FINISHED`, ...).
    pub status: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub deleted_time: Option<i64>,
    pub source_version: String,
    pub lifecycle_stage: String,
    pub artifact_uri: Option<String>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub inputs: Vec<LegacyInput>,
}

/// A dataset of an experiment (`<experiment>/datasets/<id>/meta.yaml`). The FileStore keeps no dataset
/// uuid; the caller makes one, used only when the dataset is new.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyDataset {
    pub dataset_uuid: String,
    pub experiment_id: i64,
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    pub schema: Option<String>,
    pub profile: Option<String>,
}

/// An input of a run (`<run>/inputs/<id>/meta.yaml`) as the database holds it: a dataset input is
/// (`DATASET`, dataset uuid, `RUN`, run id), a model input (`RUN_INPUT`, run id, `MODEL_INPUT`, model id).
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyInput {
    pub input_uuid: String,
    pub source_type: String,
    pub source_id: String,
    pub destination_type: String,
    pub destination_id: String,
    pub tags: Vec<(String, String)>,
}

/// What importing a dataset did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetImport {
    /// The dataset was written with the given uuid.
    Created,
    /// The experiment already had a dataset of this name and digest; inputs link to its uuid.
    Reused { dataset_uuid: String },
}

/// One line of a FileStore metric file. NaN and infinities are allowed; they are stored as MLflow stores
/// them (`is_nan` with 0, and the largest finite double).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LegacyMetric<'key> {
    pub key: &'key str,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

/// What importing an experiment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExperimentImport {
    /// The experiment was created with its id, with its tags.
    Created,
    /// An experiment with this id and name was already there; it was reused and left as it is.
    Reused,
}

/// What importing a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunImport {
    /// The run was written with its params, tags, metrics and inputs (the counts of rows written).
    Created {
        inputs: usize,
        params: usize,
        tags: usize,
        metrics: usize,
        latest_metrics: usize,
    },
    /// A run with this id was already there; nothing of it was written.
    Skipped,
}

/// Why an import write failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "experiment id {experiment_id} is '{existing}' in the database but '{imported}' in the FileStore"
    )]
    ExperimentIdClash {
        experiment_id: i64,
        existing: String,
        imported: String,
    },
    #[error(
        "experiment '{name}' (id {experiment_id} in the FileStore) exists in the database under another id"
    )]
    ExperimentNameTaken { experiment_id: i64, name: String },
    #[error(
        "experiment id {experiment_id} does not fit the 32-bit experiment_id column of MLflow's schema \
         on {dialect:?} (FileStore ids can be 64-bit); import this FileStore into SQLite instead"
    )]
    ExperimentIdOutOfRange {
        experiment_id: i64,
        dialect: Dialect,
    },
    #[error("run {run_uuid} belongs to experiment {experiment_id}, which is not in the database")]
    MissingExperiment {
        run_uuid: String,
        experiment_id: i64,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// MLflow's stand-in for an infinite metric value.
const LARGEST_DOUBLE: f64 = f64::MAX;

/// The stored `(value, is_nan)` of a metric value, as MLflow stores it.
fn stored_metric_value(value: f64) -> (f64, bool) {
    if value.is_nan() {
        (0.0, true)
    } else if value.is_infinite() {
        (LARGEST_DOUBLE.copysign(value), false)
    } else {
        (value, false)
    }
}

impl SqlStore {
    /// Creates `experiment` with its own id, or reuses the experiment of that id when it has the same
    /// name; a different name under that id is an error naming both. The experiment and its tags are one
    /// transaction.
    pub async fn import_experiment(
        &self,
        experiment: &LegacyExperiment,
    ) -> Result<ExperimentImport, ImportError> {
        let dialect = self.dialect();
        if dialect != Dialect::Sqlite && i32::try_from(experiment.experiment_id).is_err() {
            return Err(ImportError::ExperimentIdOutOfRange {
                experiment_id: experiment.experiment_id,
                dialect,
            });
        }
        let mut transaction = self.pools.begin().await?;
        let existing = transaction
            .fetch_optional(
                query("SELECT name FROM experiments WHERE experiment_id = ?")
                    .bind(experiment.experiment_id),
            )
            .await?;
        if let Some(row) = existing {
            let existing_name: String = row
                .get("name")
                .map_err(|error| sqlx::Error::Decode(error.to_string().into()))?;
            if existing_name == experiment.name {
                return Ok(ExperimentImport::Reused);
            }
            return Err(ImportError::ExperimentIdClash {
                experiment_id: experiment.experiment_id,
                existing: existing_name,
                imported: experiment.name.clone(),
            });
        }
        let inserted = transaction
            .execute(
                query(
                    "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, \
                     creation_time, last_update_time, workspace) VALUES (?, ?, ?, ?, ?, ?, 'default')",
                )
                .bind(experiment.experiment_id)
                .bind(experiment.name.as_str())
                .bind(experiment.artifact_location.clone())
                .bind(experiment.lifecycle_stage.as_str())
                .bind(experiment.creation_time)
                .bind(experiment.last_update_time),
            )
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(ImportError::ExperimentNameTaken {
                    experiment_id: experiment.experiment_id,
                    name: experiment.name.clone(),
                })
            }
            Err(error) => return Err(error.into()),
        }
        for (key, value) in &experiment.tags {
            transaction
                .execute(
                    query("INSERT INTO experiment_tags (\"key\", value, experiment_id) VALUES (?, ?, ?)")
                        .bind(key.as_str())
                        .bind(value.as_str())
                        .bind(experiment.experiment_id),
                )
                .await?;
        }
        // An explicit id leaves PostgreSQL's sequence behind; the next new experiment must not take an
        // imported id. SQLite and MySQL move their counters past explicit ids themselves.
        if dialect == Dialect::Postgres {
            transaction
                .execute(query(
                    "SELECT setval('experiments_experiment_id_seq', \
                     GREATEST((SELECT MAX(experiment_id) FROM experiments), 1))",
                ))
                .await?;
        }
        transaction.commit().await?;
        Ok(ExperimentImport::Created)
    }

    /// Writes `dataset`, or finds the experiment's dataset of the same name and digest (a rerun).
    pub async fn import_dataset(
        &self,
        dataset: &LegacyDataset,
    ) -> Result<DatasetImport, ImportError> {
        let mut transaction = self.pools.begin().await?;
        let existing = transaction
            .fetch_optional(
                query(
                    "SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?",
                )
                .bind(dataset.experiment_id)
                .bind(dataset.name.as_str())
                .bind(dataset.digest.as_str()),
            )
            .await?;
        if let Some(row) = existing {
            let dataset_uuid: String = row
                .get("dataset_uuid")
                .map_err(|error| sqlx::Error::Decode(error.to_string().into()))?;
            return Ok(DatasetImport::Reused { dataset_uuid });
        }
        transaction
            .execute(
                query(
                    "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, \
                     dataset_source, dataset_schema, dataset_profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(dataset.dataset_uuid.as_str())
                .bind(dataset.experiment_id)
                .bind(dataset.name.as_str())
                .bind(dataset.digest.as_str())
                .bind(dataset.source_type.as_str())
                .bind(dataset.source.as_str())
                .bind(dataset.schema.clone())
                .bind(dataset.profile.clone()),
            )
            .await?;
        transaction.commit().await?;
        Ok(DatasetImport::Created)
    }

    /// Writes `run` with its params, tags, metrics, latest metrics and inputs in one transaction, or skips it
    /// entirely when a run with its id is already there. Repeated metric lines are written once.
    pub async fn import_run(
        &self,
        run: &LegacyRun,
        metrics: &[LegacyMetric<'_>],
    ) -> Result<RunImport, ImportError> {
        let mut transaction = self.pools.begin().await?;
        let existing = transaction
            .fetch_optional(
                query("SELECT run_uuid FROM runs WHERE run_uuid = ?").bind(run.run_uuid.as_str()),
            )
            .await?;
        if existing.is_some() {
            return Ok(RunImport::Skipped);
        }
        let experiment = transaction
            .fetch_optional(
                query("SELECT experiment_id FROM experiments WHERE experiment_id = ?")
                    .bind(run.experiment_id),
            )
            .await?;
        if experiment.is_none() {
            return Err(ImportError::MissingExperiment {
                run_uuid: run.run_uuid.clone(),
                experiment_id: run.experiment_id,
            });
        }
        transaction
            .execute(
                query(
                    "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, \
                     status, start_time, end_time, source_version, lifecycle_stage, artifact_uri, \
                     experiment_id, deleted_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(run.run_uuid.as_str())
                .bind(run.name.clone())
                .bind(run.source_type.as_str())
                .bind(run.source_name.as_str())
                .bind(run.entry_point_name.as_str())
                .bind(run.user_id.clone())
                .bind(run.status.as_str())
                .bind(run.start_time)
                .bind(run.end_time)
                .bind(run.source_version.as_str())
                .bind(run.lifecycle_stage.as_str())
                .bind(run.artifact_uri.clone())
                .bind(run.experiment_id)
                .bind(run.deleted_time),
            )
            .await?;
        for (key, value) in &run.params {
            transaction
                .execute(
                    query("INSERT INTO params (\"key\", value, run_uuid) VALUES (?, ?, ?)")
                        .bind(key.as_str())
                        .bind(value.as_str())
                        .bind(run.run_uuid.as_str()),
                )
                .await?;
        }
        for (key, value) in &run.tags {
            transaction
                .execute(
                    query("INSERT INTO tags (\"key\", value, run_uuid) VALUES (?, ?, ?)")
                        .bind(key.as_str())
                        .bind(value.as_str())
                        .bind(run.run_uuid.as_str()),
                )
                .await?;
        }
        let (metric_count, latest_count) =
            write_metrics(&mut transaction, &run.run_uuid, metrics).await?;
        for input in &run.inputs {
            transaction
                .execute(
                    query(
                        "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, \
                         destination_id, step) VALUES (?, ?, ?, ?, ?, 0)",
                    )
                    .bind(input.input_uuid.as_str())
                    .bind(input.source_type.as_str())
                    .bind(input.source_id.as_str())
                    .bind(input.destination_type.as_str())
                    .bind(input.destination_id.as_str()),
                )
                .await?;
            for (name, value) in &input.tags {
                transaction
                    .execute(
                        query("INSERT INTO input_tags (input_uuid, name, value) VALUES (?, ?, ?)")
                            .bind(input.input_uuid.as_str())
                            .bind(name.as_str())
                            .bind(value.as_str()),
                    )
                    .await?;
            }
        }
        transaction.commit().await?;
        Ok(RunImport::Created {
            inputs: run.inputs.len(),
            params: run.params.len(),
            tags: run.tags.len(),
            metrics: metric_count,
            latest_metrics: latest_count,
        })
    }
}

/// Writes each distinct metric row once, and per key the latest row: the greatest (step, timestamp,
/// value), NaN counting as 0, as MLflow computes it. Returns the counts of both.
async fn write_metrics(
    transaction: &mut Transaction,
    run_uuid: &str,
    metrics: &[LegacyMetric<'_>],
) -> Result<(usize, usize), sqlx::Error> {
    let mut written: HashSet<(&str, i64, i64, u64, bool)> = HashSet::new();
    let mut latest: HashMap<&str, (i64, i64, f64, bool)> = HashMap::new();
    for metric in metrics {
        let (value, is_nan) = stored_metric_value(metric.value);
        if !written.insert((
            metric.key,
            metric.timestamp,
            metric.step,
            value.to_bits(),
            is_nan,
        )) {
            continue;
        }
        transaction
            .execute(
                query(
                    "INSERT INTO metrics (\"key\", value, timestamp, run_uuid, step, is_nan) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(metric.key)
                .bind(value)
                .bind(metric.timestamp)
                .bind(run_uuid)
                .bind(metric.step)
                .bind(is_nan),
            )
            .await?;
        let candidate = (metric.step, metric.timestamp, value, is_nan);
        latest
            .entry(metric.key)
            .and_modify(|current| {
                let newer = (candidate.0, candidate.1)
                    .cmp(&(current.0, current.1))
                    .then(candidate.2.total_cmp(&current.2));
                if newer.is_gt() {
                    *current = candidate;
                }
            })
            .or_insert(candidate);
    }
    for (key, (step, timestamp, value, is_nan)) in &latest {
        transaction
            .execute(
                query(
                    "INSERT INTO latest_metrics (\"key\", value, timestamp, step, is_nan, run_uuid) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(*key)
                .bind(*value)
                .bind(*timestamp)
                .bind(*step)
                .bind(*is_nan)
                .bind(run_uuid),
            )
            .await?;
    }
    Ok((written.len(), latest.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_values_are_stored_as_mlflow_stores_them() {
        assert_eq!(stored_metric_value(1.5), (1.5, false));
        assert_eq!(stored_metric_value(f64::NAN), (0.0, true));
        assert_eq!(stored_metric_value(f64::INFINITY), (f64::MAX, false));
        assert_eq!(stored_metric_value(f64::NEG_INFINITY), (-f64::MAX, false));
    }
}
