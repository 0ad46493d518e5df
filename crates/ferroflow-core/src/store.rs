//! Store traits: what the services need from persistence. One trait per area; implementations live in
//! `ferroflow-store`. A store saves what it is given: the services have already validated input and chosen
//! ids and times. Each method that writes several rows does so in one transaction.

use crate::error::Result;
use crate::ids::HistoryCursor;
use crate::model::{
    Batch, DatasetSummary, ExperimentQuery, LifecycleStage, NewExperiment, NewRun, Page, RunInfo,
    RunInputsWrite, RunQuery, RunUpdate,
};
use async_trait::async_trait;
use ferroflow_proto::tracking::{Experiment, ExperimentTag, Metric, ModelOutput, Run, RunTag};

/// Experiments, runs, metrics, params, tags and run inputs/outputs.
#[async_trait]
pub trait TrackingStore: Send + Sync + 'static {
    /// Creates an experiment and returns its id. A name taken by any experiment, deleted ones included,
    /// gives RESOURCE_ALREADY_EXISTS.
    async fn create_experiment(&self, experiment: NewExperiment) -> Result<String>;
    async fn get_experiment(&self, experiment_id: &str) -> Result<Option<Experiment>>;
    async fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>>;
    /// Renames; a taken name gives RESOURCE_ALREADY_EXISTS.
    async fn rename_experiment(&self, experiment_id: &str, new_name: &str, now: i64) -> Result<()>;
    /// Moves the experiment and all of its runs to `stage`.
    async fn set_experiment_lifecycle(
        &self,
        experiment_id: &str,
        stage: LifecycleStage,
        now: i64,
    ) -> Result<()>;
    async fn set_experiment_tag(&self, experiment_id: &str, tag: ExperimentTag) -> Result<()>;
    /// Returns false when there was no such tag.
    async fn delete_experiment_tag(&self, experiment_id: &str, key: &str) -> Result<bool>;
    async fn search_experiments(&self, query: ExperimentQuery) -> Result<Page<Experiment>>;

    async fn create_run(&self, run: NewRun) -> Result<()>;
    async fn get_run(&self, run_id: &str) -> Result<Option<Run>>;
    async fn get_run_info(&self, run_id: &str) -> Result<Option<RunInfo>>;
    async fn update_run(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo>;
    /// `deleted_time` is set when deleting and cleared when restoring.
    async fn set_run_lifecycle(&self, run_id: &str, stage: LifecycleStage, now: i64) -> Result<()>;
    /// Writes metrics, params and tags atomically. A param already logged with another value gives
    /// INVALID_PARAMETER_VALUE and nothing is written. A `mlflow.runName` tag also renames the run.
    async fn log_batch(&self, run_id: &str, batch: Batch) -> Result<()>;
    /// Returns false when there was no such tag.
    async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<bool>;
    async fn search_runs(&self, query: RunQuery) -> Result<Page<Run>>;

    /// One page of a metric's history, ordered by timestamp, step and value, starting at `cursor`; the
    /// next page's token is [`crate::ids::encode_history_token`]'s.
    async fn get_metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: Option<usize>,
        cursor: HistoryCursor,
    ) -> Result<Page<Metric>>;
    /// Each run's history of `key` with `run_id` set, runs in id order, at most `max_results` points per run.
    async fn get_metric_history_bulk(
        &self,
        run_ids: &[String],
        key: &str,
        max_results: usize,
    ) -> Result<Vec<Metric>>;
    /// Sampled histories for charts: for each run, at most `max_results` points between the steps, always
    /// keeping the first and last step and the min/max values.
    async fn get_metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        key: &str,
        steps: Option<(i64, i64)>,
        max_results: usize,
    ) -> Result<Vec<Metric>>;

    async fn log_inputs(
        &self,
        run_id: &str,
        experiment_id: &str,
        inputs: RunInputsWrite,
    ) -> Result<()>;
    async fn log_outputs(&self, run_id: &str, outputs: Vec<ModelOutput>) -> Result<()>;
    async fn search_datasets(&self, experiment_ids: &[String]) -> Result<Vec<DatasetSummary>>;

    /// Cheap check that the store answers, for `/health`.
    async fn ping(&self) -> Result<()>;

    /// Closes connections once in-flight requests are done (SQLite then checkpoints its WAL into the file).
    async fn close(&self) {}
}

/// Tags a run carries by default, for services that need them.
pub fn run_tag(key: &str, value: &str) -> RunTag {
    RunTag {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}
