//! Permanent deletion for `ferroflow gc`, MLflow's `mlflow gc`: runs, logged models and experiments in
//! the `deleted` lifecycle stage leave the database for good, with every row attached to them.
//!
//! These are not `TrackingStore` methods: no request of the REST API removes a row for good, only the
//! command line does. Each run is one transaction, and so is each experiment. Child rows are deleted
//! explicitly (MLflow relies partly on `ON DELETE CASCADE`, which holds too, but this keeps the result
//! independent of the connection's foreign key setting); the tables whose only link to an experiment is
//! a cascading foreign key with children of their own (issues, label schemas, review queues) are left to
//! that cascade, as MLflow leaves them.

use super::connection::{db_error, query, Transaction};
use super::SqlStore;
use ferroflow_core::Result;

/// The lifecycle stage of soft-deleted runs and experiments.
const DELETED: &str = "deleted";

/// A run as `gc` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcRun {
    pub run_id: String,
    pub experiment_id: i64,
    pub lifecycle_stage: String,
    /// When the run was deleted (milliseconds since the epoch); `None` in databases older than the
    /// column's use.
    pub deleted_time: Option<i64>,
    pub artifact_uri: Option<String>,
}

/// An experiment as `gc` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcExperiment {
    pub experiment_id: i64,
    pub lifecycle_stage: String,
    pub last_update_time: Option<i64>,
}

/// A logged model as `gc` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcLoggedModel {
    pub model_id: String,
    pub lifecycle_stage: Option<String>,
    pub last_updated_timestamp_ms: i64,
    pub artifact_location: String,
}

/// The rows of one logged model. `?` is the model id.
const LOGGED_MODEL_STATEMENTS: [&str; 4] = [
    "DELETE FROM logged_model_metrics WHERE model_id = ?",
    "DELETE FROM logged_model_params WHERE model_id = ?",
    "DELETE FROM logged_model_tags WHERE model_id = ?",
    "DELETE FROM logged_models WHERE model_id = ?",
];

const LOGGED_MODEL_COLUMNS: &str =
    "model_id, lifecycle_stage, last_updated_timestamp_ms, artifact_location";

fn gc_logged_model_of(row: &super::connection::Row) -> Result<GcLoggedModel> {
    Ok(GcLoggedModel {
        model_id: row.get("model_id")?,
        lifecycle_stage: row.get("lifecycle_stage")?,
        last_updated_timestamp_ms: row.get("last_updated_timestamp_ms")?,
        artifact_location: row.get("artifact_location")?,
    })
}

/// The rows of one run, deleted child tables first. `?` is the run id.
const RUN_STATEMENTS: [&str; 9] = [
    "DELETE FROM metrics WHERE run_uuid = ?",
    "DELETE FROM latest_metrics WHERE run_uuid = ?",
    "DELETE FROM params WHERE run_uuid = ?",
    "DELETE FROM tags WHERE run_uuid = ?",
    "DELETE FROM input_tags WHERE input_uuid IN \
     (SELECT input_uuid FROM inputs WHERE destination_type = 'RUN' AND destination_id = ?)",
    "DELETE FROM inputs WHERE destination_type = 'RUN' AND destination_id = ?",
    "DELETE FROM logged_model_metrics WHERE run_id = ?",
    "UPDATE issues SET source_run_id = NULL WHERE source_run_id = ?",
    "DELETE FROM runs WHERE run_uuid = ?",
];

/// The rows of one experiment, deleted child tables first. `?` is the experiment id.
const EXPERIMENT_STATEMENTS: [&str; 30] = [
    // Runs that are still there (the caller deleted the deleted ones with their artifacts first).
    "DELETE FROM metrics WHERE run_uuid IN (SELECT run_uuid FROM runs WHERE experiment_id = ?)",
    "DELETE FROM latest_metrics WHERE run_uuid IN (SELECT run_uuid FROM runs WHERE experiment_id = ?)",
    "DELETE FROM params WHERE run_uuid IN (SELECT run_uuid FROM runs WHERE experiment_id = ?)",
    "DELETE FROM tags WHERE run_uuid IN (SELECT run_uuid FROM runs WHERE experiment_id = ?)",
    "DELETE FROM input_tags WHERE input_uuid IN (SELECT input_uuid FROM inputs WHERE \
     destination_type = 'RUN' AND destination_id IN (SELECT run_uuid FROM runs WHERE experiment_id = ?))",
    "DELETE FROM inputs WHERE destination_type = 'RUN' AND destination_id IN \
     (SELECT run_uuid FROM runs WHERE experiment_id = ?)",
    "UPDATE issues SET source_run_id = NULL WHERE source_run_id IN \
     (SELECT run_uuid FROM runs WHERE experiment_id = ?)",
    // Logged models.
    "DELETE FROM logged_model_metrics WHERE experiment_id = ?",
    "DELETE FROM logged_model_params WHERE experiment_id = ?",
    "DELETE FROM logged_model_tags WHERE experiment_id = ?",
    "DELETE FROM logged_models WHERE experiment_id = ?",
    "DELETE FROM runs WHERE experiment_id = ?",
    // Traces.
    "DELETE FROM span_metrics WHERE trace_id IN (SELECT request_id FROM trace_info WHERE experiment_id = ?)",
    "DELETE FROM spans WHERE trace_id IN (SELECT request_id FROM trace_info WHERE experiment_id = ?)",
    "DELETE FROM spans WHERE experiment_id = ?",
    "DELETE FROM assessments WHERE trace_id IN (SELECT request_id FROM trace_info WHERE experiment_id = ?)",
    "DELETE FROM trace_tags WHERE request_id IN (SELECT request_id FROM trace_info WHERE experiment_id = ?)",
    "DELETE FROM trace_request_metadata WHERE request_id IN \
     (SELECT request_id FROM trace_info WHERE experiment_id = ?)",
    "DELETE FROM trace_metrics WHERE request_id IN (SELECT request_id FROM trace_info WHERE experiment_id = ?)",
    "DELETE FROM trace_info WHERE experiment_id = ?",
    // Trace rollups (no foreign key: MLflow removes them with the experiment).
    "DELETE FROM sql_trace_rollup_rebuild_queue WHERE experiment_id = ?",
    "DELETE FROM sql_trace_metric_daily_rollups WHERE experiment_id = ?",
    "DELETE FROM sql_span_cost_daily_rollups WHERE experiment_id = ?",
    "DELETE FROM sql_assessment_daily_rollups WHERE experiment_id = ?",
    // Scorers and datasets.
    "DELETE FROM online_scoring_configs WHERE experiment_id = ?",
    "DELETE FROM scorer_versions WHERE scorer_id IN (SELECT scorer_id FROM scorers WHERE experiment_id = ?)",
    "DELETE FROM scorers WHERE experiment_id = ?",
    "DELETE FROM datasets WHERE experiment_id = ?",
    "DELETE FROM experiment_tags WHERE experiment_id = ?",
    "DELETE FROM experiments WHERE experiment_id = ?",
];

fn gc_run_of(row: &super::connection::Row) -> Result<GcRun> {
    Ok(GcRun {
        run_id: row.get("run_uuid")?,
        experiment_id: row.get("experiment_id")?,
        lifecycle_stage: row.get("lifecycle_stage")?,
        deleted_time: row.get("deleted_time")?,
        artifact_uri: row.get("artifact_uri")?,
    })
}

const RUN_COLUMNS: &str = "run_uuid, experiment_id, lifecycle_stage, deleted_time, artifact_uri";

impl SqlStore {
    /// The runs in the `deleted` stage, deleted at or before `deleted_before` when given (runs without a
    /// deletion time are then left out, as MLflow leaves them out), oldest deletion first.
    pub async fn gc_deleted_runs(&self, deleted_before: Option<i64>) -> Result<Vec<GcRun>> {
        let statement = match deleted_before {
            Some(cutoff) => query(format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE lifecycle_stage = ? AND deleted_time <= ? \
                 ORDER BY deleted_time, run_uuid"
            ))
            .bind(DELETED)
            .bind(cutoff),
            None => query(format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE lifecycle_stage = ? ORDER BY deleted_time, run_uuid"
            ))
            .bind(DELETED),
        };
        self.pools
            .fetch_all(statement)
            .await
            .map_err(db_error)?
            .iter()
            .map(gc_run_of)
            .collect()
    }

    /// One run in any stage, or `None`.
    pub async fn gc_run(&self, run_id: &str) -> Result<Option<GcRun>> {
        self.pools
            .fetch_optional(
                query(format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_uuid = ?")).bind(run_id),
            )
            .await
            .map_err(db_error)?
            .as_ref()
            .map(gc_run_of)
            .transpose()
    }

    /// Every run of the experiment, in any stage.
    pub async fn gc_runs_of_experiment(&self, experiment_id: i64) -> Result<Vec<GcRun>> {
        self.pools
            .fetch_all(
                query(format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE experiment_id = ? ORDER BY run_uuid"
                ))
                .bind(experiment_id),
            )
            .await
            .map_err(db_error)?
            .iter()
            .map(gc_run_of)
            .collect()
    }

    /// One experiment in any stage, or `None`.
    pub async fn gc_experiment(&self, experiment_id: i64) -> Result<Option<GcExperiment>> {
        let row = self
            .pools
            .fetch_optional(
                query(
                    "SELECT experiment_id, lifecycle_stage, last_update_time FROM experiments \
                     WHERE experiment_id = ?",
                )
                .bind(experiment_id),
            )
            .await
            .map_err(db_error)?;
        row.map(|row| {
            Ok(GcExperiment {
                experiment_id: row.get("experiment_id")?,
                lifecycle_stage: row.get("lifecycle_stage")?,
                last_update_time: row.get("last_update_time")?,
            })
        })
        .transpose()
    }

    /// The ids of the experiments in the `deleted` stage, last updated before `updated_before` when given
    /// (MLflow's `last_update_time < threshold`), in id order.
    pub async fn gc_deleted_experiments(&self, updated_before: Option<i64>) -> Result<Vec<i64>> {
        let statement = match updated_before {
            Some(cutoff) => query(
                "SELECT experiment_id FROM experiments WHERE lifecycle_stage = ? \
                 AND last_update_time < ? ORDER BY experiment_id",
            )
            .bind(DELETED)
            .bind(cutoff),
            None => query(
                "SELECT experiment_id FROM experiments WHERE lifecycle_stage = ? ORDER BY experiment_id",
            )
            .bind(DELETED),
        };
        self.pools
            .fetch_all(statement)
            .await
            .map_err(db_error)?
            .iter()
            .map(|row| row.get::<i64>("experiment_id"))
            .collect()
    }

    /// The experiments holding traces requested at or before `requested_before`, among `scope` when
    /// given.
    pub async fn gc_experiments_with_traces(
        &self,
        requested_before: i64,
        scope: Option<&[i64]>,
    ) -> Result<Vec<i64>> {
        let rows = self
            .pools
            .fetch_all(
                query(
                    "SELECT DISTINCT experiment_id FROM trace_info WHERE timestamp_ms <= ? \
                     ORDER BY experiment_id",
                )
                .bind(requested_before),
            )
            .await
            .map_err(db_error)?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            let experiment_id: i64 = row.get("experiment_id")?;
            if scope.is_none_or(|ids| ids.contains(&experiment_id)) {
                found.push(experiment_id);
            }
        }
        Ok(found)
    }

    /// The logged models in the `deleted` stage, last updated at or before `updated_before` when given
    /// (MLflow's `last_updated_timestamp_ms <= now - older_than`), in id order.
    pub async fn gc_deleted_logged_models(
        &self,
        updated_before: Option<i64>,
    ) -> Result<Vec<GcLoggedModel>> {
        let statement = match updated_before {
            Some(cutoff) => query(format!(
                "SELECT {LOGGED_MODEL_COLUMNS} FROM logged_models WHERE lifecycle_stage = ? \
                 AND last_updated_timestamp_ms <= ? ORDER BY model_id"
            ))
            .bind(DELETED)
            .bind(cutoff),
            None => query(format!(
                "SELECT {LOGGED_MODEL_COLUMNS} FROM logged_models WHERE lifecycle_stage = ? \
                 ORDER BY model_id"
            ))
            .bind(DELETED),
        };
        self.pools
            .fetch_all(statement)
            .await
            .map_err(db_error)?
            .iter()
            .map(gc_logged_model_of)
            .collect()
    }

    /// Every logged model of the experiment, in any stage.
    pub async fn gc_logged_models_of_experiment(
        &self,
        experiment_id: i64,
    ) -> Result<Vec<GcLoggedModel>> {
        self.pools
            .fetch_all(
                query(format!(
                    "SELECT {LOGGED_MODEL_COLUMNS} FROM logged_models WHERE experiment_id = ? \
                     ORDER BY model_id"
                ))
                .bind(experiment_id),
            )
            .await
            .map_err(db_error)?
            .iter()
            .map(gc_logged_model_of)
            .collect()
    }

    /// One logged model in any stage, or `None`.
    pub async fn gc_logged_model(&self, model_id: &str) -> Result<Option<GcLoggedModel>> {
        self.pools
            .fetch_optional(
                query(format!(
                    "SELECT {LOGGED_MODEL_COLUMNS} FROM logged_models WHERE model_id = ?"
                ))
                .bind(model_id),
            )
            .await
            .map_err(db_error)?
            .as_ref()
            .map(gc_logged_model_of)
            .transpose()
    }

    /// Deletes a logged model in the `deleted` stage for good with its tags, params and metrics, in one
    /// transaction. `false` when no such deleted model exists (nothing is touched).
    pub async fn hard_delete_logged_model(&self, model_id: &str) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let found = transaction
            .fetch_optional(
                query(
                    "SELECT model_id FROM logged_models WHERE model_id = ? AND lifecycle_stage = ?",
                )
                .bind(model_id)
                .bind(DELETED),
            )
            .await
            .map_err(db_error)?;
        if found.is_none() {
            return Ok(false);
        }
        run_all(&mut transaction, &LOGGED_MODEL_STATEMENTS, |statement| {
            statement.bind(model_id)
        })
        .await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    /// Deletes a run in the `deleted` stage for good with its metrics, params, tags, latest metrics and
    /// inputs, in one transaction. `false` when no such deleted run exists (nothing is touched).
    pub async fn hard_delete_run(&self, run_id: &str) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let found = transaction
            .fetch_optional(
                query("SELECT run_uuid FROM runs WHERE run_uuid = ? AND lifecycle_stage = ?")
                    .bind(run_id)
                    .bind(DELETED),
            )
            .await
            .map_err(db_error)?;
        if found.is_none() {
            return Ok(false);
        }
        run_all(&mut transaction, &RUN_STATEMENTS, |statement| {
            statement.bind(run_id)
        })
        .await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    /// Deletes an experiment in the `deleted` stage for good with its tags, remaining runs, logged
    /// models, traces, scorers and datasets, in one transaction. `false` when no such deleted experiment
    /// exists (nothing is touched).
    pub async fn hard_delete_experiment(&self, experiment_id: i64) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let found = transaction
            .fetch_optional(
                query(
                    "SELECT experiment_id FROM experiments WHERE experiment_id = ? \
                     AND lifecycle_stage = ?",
                )
                .bind(experiment_id)
                .bind(DELETED),
            )
            .await
            .map_err(db_error)?;
        if found.is_none() {
            return Ok(false);
        }
        run_all(&mut transaction, &EXPERIMENT_STATEMENTS, |statement| {
            statement.bind(experiment_id)
        })
        .await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }
}

/// Runs each statement with the one value `bind` gives it.
async fn run_all(
    transaction: &mut Transaction,
    statements: &[&'static str],
    bind: impl Fn(super::connection::Query) -> super::connection::Query,
) -> Result<()> {
    for sql in statements {
        transaction
            .execute(bind(query(*sql)))
            .await
            .map_err(db_error)?;
    }
    Ok(())
}
