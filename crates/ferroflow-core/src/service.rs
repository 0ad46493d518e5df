//! The tracking service: validates requests as MLflow does, decides ids and times, and drives the store.
//! Handlers call one method per endpoint and return what it returns.

use crate::error::{Error, Result};
use crate::filter;
use crate::ids::{
    decode_history_token, decode_page_token, new_run_id, now_millis, random_run_name,
};
use crate::model::{
    Batch, ExperimentQuery, LifecycleStage, NewExperiment, NewRun, RunInputsWrite, RunQuery,
    RunStatus, RunUpdate, ViewType,
};
use crate::store::TrackingStore;
use crate::validation::{self as check, json_path};
use ferroflow_proto::tracking::*;
use std::sync::Arc;

/// The tag that mirrors a run's name.
pub const RUN_NAME_TAG: &str = "mlflow.runName";

#[derive(Clone)]
pub struct TrackingService {
    store: Arc<dyn TrackingStore>,
    /// The root of new experiments' artifact locations, e.g. `mlflow-artifacts:/`.
    default_artifact_root: String,
}

fn required(value: Option<String>, name: &str) -> Result<String> {
    match value {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(Error::missing_parameter(name)),
    }
}

/// `run_id`, falling back to the legacy `run_uuid`.
fn run_id_of(run_id: Option<String>, run_uuid: Option<String>) -> Result<String> {
    match (run_id, run_uuid) {
        (Some(run_id), _) if !run_id.is_empty() => Ok(run_id),
        (_, Some(run_uuid)) if !run_uuid.is_empty() => Ok(run_uuid),
        _ => Err(Error::missing_parameter("run_id")),
    }
}

fn parse_view_type(value: Option<String>, name: &str) -> Result<ViewType> {
    match value {
        None => Ok(ViewType::ActiveOnly),
        Some(text) if text.is_empty() => Ok(ViewType::ActiveOnly),
        Some(text) => ViewType::parse(&text)
            .ok_or_else(|| Error::invalid_parameter(check::invalid_value(name, &text, None))),
    }
}

fn to_usize(value: i64) -> usize {
    usize::try_from(value).unwrap_or(0)
}

impl TrackingService {
    pub fn new(store: Arc<dyn TrackingStore>, default_artifact_root: impl Into<String>) -> Self {
        Self {
            store,
            default_artifact_root: default_artifact_root.into(),
        }
    }

    pub fn store(&self) -> &Arc<dyn TrackingStore> {
        &self.store
    }

    async fn experiment(&self, experiment_id: &str) -> Result<Experiment> {
        self.store
            .get_experiment(experiment_id)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!("No Experiment with id={experiment_id} exists"))
            })
    }

    async fn active_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        let experiment = self.experiment(experiment_id).await?;
        if experiment.lifecycle_stage != LifecycleStage::Active.as_str() {
            return Err(Error::invalid_parameter(format!(
                "The experiment {} must be in the 'active' state. Current state is {}.",
                experiment.experiment_id, experiment.lifecycle_stage
            )));
        }
        Ok(experiment)
    }

    /// The run's info, or MLflow's not-found error.
    pub async fn run_info(&self, run_id: &str) -> Result<RunInfo> {
        self.store
            .get_run_info(run_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("Run with id={run_id} not found")))
    }

    async fn active_run(&self, run_id: &str) -> Result<RunInfo> {
        let info = self.run_info(run_id).await?;
        if info.lifecycle_stage != LifecycleStage::Active.as_str() {
            return Err(Error::invalid_parameter(format!(
                "The run {} must be in the 'active' state. Current state is {}.",
                info.run_id, info.lifecycle_stage
            )));
        }
        Ok(info)
    }

    // ----- experiments -------------------------------------------------------------------------------------

    pub async fn create_experiment(
        &self,
        request: CreateExperiment,
    ) -> Result<CreateExperimentResponse> {
        let name = required(request.name, "name")?;
        check::validate_experiment_name(&name)?;
        let artifact_location = request
            .artifact_location
            .filter(|location| !location.is_empty());
        if let Some(location) = &artifact_location {
            crate::registry::validate_storage_location(
                location,
                "artifact_location",
                std::slice::from_ref(&self.default_artifact_root),
            )?;
        }
        let mut tags = Vec::with_capacity(request.tags.len());
        for tag in request.tags {
            let key = required(tag.key, "key")?;
            let value = tag.value.unwrap_or_default();
            check::validate_experiment_tag(&key, &value)?;
            tags.push(ExperimentTag { key, value });
        }
        let experiment_id = self
            .store
            .create_experiment(NewExperiment {
                name,
                artifact_location,
                default_artifact_root: self.default_artifact_root.clone(),
                tags,
                creation_time: now_millis(),
            })
            .await?;
        Ok(CreateExperimentResponse { experiment_id })
    }

    pub async fn get_experiment(
        &self,
        request: ExperimentIdRequest,
    ) -> Result<GetExperimentResponse> {
        let experiment_id = required(request.experiment_id, "experiment_id")?;
        Ok(GetExperimentResponse {
            experiment: self.experiment(&experiment_id).await?,
        })
    }

    pub async fn get_experiment_by_name(
        &self,
        request: GetExperimentByName,
    ) -> Result<GetExperimentResponse> {
        let name = required(request.experiment_name, "experiment_name")?;
        let experiment = self
            .store
            .get_experiment_by_name(&name)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!("Could not find experiment with name '{name}'"))
            })?;
        Ok(GetExperimentResponse { experiment })
    }

    pub async fn delete_experiment(&self, request: ExperimentIdRequest) -> Result<Empty> {
        let experiment_id = required(request.experiment_id, "experiment_id")?;
        let experiment = self.experiment(&experiment_id).await?;
        if experiment.lifecycle_stage != LifecycleStage::Active.as_str() {
            return Err(Error::not_found(format!(
                "No Experiment with id={experiment_id} exists"
            )));
        }
        self.store
            .set_experiment_lifecycle(&experiment_id, LifecycleStage::Deleted, now_millis())
            .await?;
        Ok(Empty {})
    }

    pub async fn restore_experiment(&self, request: ExperimentIdRequest) -> Result<Empty> {
        let experiment_id = required(request.experiment_id, "experiment_id")?;
        let experiment = self.experiment(&experiment_id).await?;
        if experiment.lifecycle_stage != LifecycleStage::Deleted.as_str() {
            return Err(Error::not_found(format!(
                "No Experiment with id={experiment_id} exists"
            )));
        }
        self.store
            .set_experiment_lifecycle(&experiment_id, LifecycleStage::Active, now_millis())
            .await?;
        Ok(Empty {})
    }

    pub async fn update_experiment(&self, request: UpdateExperiment) -> Result<Empty> {
        let experiment_id = required(request.experiment_id, "experiment_id")?;
        let new_name = request.new_name.unwrap_or_default();
        check::validate_experiment_name(&new_name)?;
        let experiment = self.experiment(&experiment_id).await?;
        if experiment.lifecycle_stage != LifecycleStage::Active.as_str() {
            return Err(Error::invalid_state(
                "Cannot rename a non-active experiment.",
            ));
        }
        self.store
            .rename_experiment(&experiment_id, &new_name, now_millis())
            .await?;
        Ok(Empty {})
    }

    pub async fn set_experiment_tag(&self, request: SetExperimentTag) -> Result<Empty> {
        let experiment_id = required(request.experiment_id, "experiment_id")?;
        let key = required(request.key, "key")?;
        let value = request.value.unwrap_or_default();
        check::validate_experiment_tag(&key, &value)?;
        self.active_experiment(&experiment_id).await?;
        self.store
            .set_experiment_tag(&experiment_id, ExperimentTag { key, value })
            .await?;
        Ok(Empty {})
    }

    pub async fn delete_experiment_tag(&self, request: DeleteExperimentTag) -> Result<Empty> {
        let experiment_id = required(request.experiment_id, "experiment_id")?;
        let key = required(request.key, "key")?;
        self.active_experiment(&experiment_id).await?;
        if !self
            .store
            .delete_experiment_tag(&experiment_id, &key)
            .await?
        {
            return Err(Error::not_found(format!(
                "No tag with name: {key} in experiment with id {experiment_id}"
            )));
        }
        Ok(Empty {})
    }

    pub async fn search_experiments(
        &self,
        request: SearchExperiments,
    ) -> Result<SearchExperimentsResponse> {
        let max_results = match request.max_results {
            None | Some(0) => return Err(Error::missing_parameter("max_results")),
            Some(value) if !(1..=check::MAX_EXPERIMENTS_LISTED_PER_PAGE).contains(&value) => {
                return Err(Error::invalid_parameter(format!(
                    "Invalid value {value} for parameter 'max_results' supplied. It must be at most {}",
                    check::MAX_EXPERIMENTS_LISTED_PER_PAGE
                )));
            }
            Some(value) => to_usize(value),
        };
        let filter = filter::parse_experiment_filter(request.filter.as_deref().unwrap_or(""))?;
        let order_by = request
            .order_by
            .iter()
            .filter(|clause| !clause.trim().is_empty())
            .map(|clause| filter::parse_experiment_order_by(clause))
            .collect::<Result<Vec<_>>>()?;
        let page = self
            .store
            .search_experiments(ExperimentQuery {
                filter,
                order_by,
                view_type: parse_view_type(request.view_type, "view_type")?,
                max_results,
                offset: decode_page_token(request.page_token.as_deref())?,
            })
            .await?;
        Ok(SearchExperimentsResponse {
            experiments: page.items,
            next_page_token: page.next_page_token,
        })
    }

    // ----- runs --------------------------------------------------------------------------------------------

    pub async fn create_run(&self, request: CreateRun) -> Result<RunResponse> {
        let experiment_id = request
            .experiment_id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| "0".to_owned());
        let experiment = self.active_experiment(&experiment_id).await?;
        let mut tags = Vec::with_capacity(request.tags.len() + 1);
        for (index, tag) in request.tags.into_iter().enumerate() {
            let path = format!("tags[{index}]");
            let key = tag
                .key
                .ok_or_else(|| Error::missing_parameter(&json_path(&path, "key")))?;
            let value = check::validate_run_tag(&key, tag.value.unwrap_or_default(), &path)?;
            tags.push(RunTag { key, value });
        }
        let tag_name = tags
            .iter()
            .find(|tag| tag.key == RUN_NAME_TAG)
            .map(|tag| tag.value.clone());
        let requested_name = request.run_name.filter(|name| !name.is_empty());
        let run_name = match (requested_name, tag_name) {
            (Some(name), Some(tag)) if name != tag => {
                return Err(Error::invalid_parameter(format!(
                    "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different \
                     values (run_name='{name}', mlflow.runName='{tag}')."
                )));
            }
            (Some(name), _) => name,
            (None, Some(tag)) => tag,
            (None, None) => random_run_name(),
        };
        if !tags.iter().any(|tag| tag.key == RUN_NAME_TAG) {
            tags.push(RunTag {
                key: RUN_NAME_TAG.to_owned(),
                value: run_name.clone(),
            });
        }
        let run_id = new_run_id();
        let artifact_uri = format!(
            "{}/{}/artifacts",
            experiment.artifact_location.trim_end_matches('/'),
            run_id
        );
        let user_id = request.user_id.unwrap_or_default();
        // MLflow stores what the client sent, 0 when it sent nothing; every client sends it.
        let start_time = request.start_time.unwrap_or(0);
        self.store
            .create_run(NewRun {
                run_id: run_id.clone(),
                experiment_id: experiment.experiment_id.clone(),
                run_name: run_name.clone(),
                user_id: user_id.clone(),
                start_time,
                artifact_uri: artifact_uri.clone(),
                tags: tags.clone(),
            })
            .await?;
        // The answer is what was just written, as a read would return it (one row per tag key, the last
        // value winning, in key order), without reading it back. A new run has no metrics, params, inputs
        // or outputs, and MLflow's create-run answer leaves `outputs` out.
        let stored_tags: Vec<RunTag> = tags
            .into_iter()
            .map(|tag| (tag.key, tag.value))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .map(|(key, value)| RunTag { key, value })
            .collect();
        Ok(RunResponse {
            run: Run {
                info: RunInfo {
                    run_id: run_id.clone(),
                    run_uuid: run_id,
                    run_name,
                    experiment_id: experiment.experiment_id,
                    user_id,
                    status: RunStatus::Running.as_str().to_owned(),
                    start_time: Some(start_time),
                    end_time: None,
                    artifact_uri,
                    lifecycle_stage: LifecycleStage::Active.as_str().to_owned(),
                },
                data: RunData {
                    tags: stored_tags,
                    ..RunData::default()
                },
                inputs: RunInputs::default(),
                outputs: None,
            },
        })
    }

    pub async fn get_run(&self, request: RunIdRequest) -> Result<RunResponse> {
        let run_id = run_id_of(request.run_id, request.run_uuid)?;
        let run = self
            .store
            .get_run(&run_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("Run with id={run_id} not found")))?;
        Ok(RunResponse { run })
    }

    pub async fn update_run(&self, request: UpdateRun) -> Result<UpdateRunResponse> {
        let run_id = run_id_of(request.run_id, request.run_uuid)?;
        let status = match request.status.filter(|status| !status.is_empty()) {
            None => None,
            Some(text) => Some(RunStatus::parse(&text).ok_or_else(|| {
                Error::invalid_parameter(check::invalid_value("status", &text, None))
            })?),
        };
        self.active_run(&run_id).await?;
        let run_name = request.run_name.filter(|name| !name.is_empty());
        let run_info = self
            .store
            .update_run(
                &run_id,
                RunUpdate {
                    status,
                    end_time: request.end_time,
                    run_name,
                },
            )
            .await?;
        Ok(UpdateRunResponse { run_info })
    }

    pub async fn delete_run(&self, request: RunIdRequest) -> Result<Empty> {
        let run_id = run_id_of(request.run_id, request.run_uuid)?;
        self.run_info(&run_id).await?;
        self.store
            .set_run_lifecycle(&run_id, LifecycleStage::Deleted, now_millis())
            .await?;
        Ok(Empty {})
    }

    pub async fn restore_run(&self, request: RunIdRequest) -> Result<Empty> {
        let run_id = run_id_of(request.run_id, request.run_uuid)?;
        self.run_info(&run_id).await?;
        self.store
            .set_run_lifecycle(&run_id, LifecycleStage::Active, now_millis())
            .await?;
        Ok(Empty {})
    }

    fn metric_of(input: MetricInput, path: &str) -> Result<Metric> {
        let key = input
            .key
            .ok_or_else(|| Error::missing_parameter(&json_path(path, "key")))?;
        let value = input
            .value
            .ok_or_else(|| Error::missing_parameter(&json_path(path, "value")))?;
        let timestamp = input
            .timestamp
            .ok_or_else(|| Error::missing_parameter(&json_path(path, "timestamp")))?;
        check::validate_metric(&key, timestamp, path)?;
        Ok(Metric {
            key,
            value,
            timestamp,
            step: input.step.unwrap_or(0),
            dataset_name: input.dataset_name,
            dataset_digest: input.dataset_digest,
            model_id: input.model_id,
            run_id: None,
        })
    }

    pub async fn log_metric(&self, request: LogMetric) -> Result<Empty> {
        let run_id = run_id_of(request.run_id, request.run_uuid)?;
        let metric = Self::metric_of(request.metric, "")?;
        self.active_run(&run_id).await?;
        self.store
            .log_batch(
                &run_id,
                Batch {
                    metrics: vec![metric],
                    ..Batch::default()
                },
            )
            .await?;
        Ok(Empty {})
    }

    pub async fn log_param(&self, request: LogParam) -> Result<Empty> {
        let run_id = run_id_of(request.run_id, request.run_uuid)?;
        let key = required(request.key, "key")?;
        let value = check::validate_param(&key, request.value.unwrap_or_default(), "")?;
        self.active_run(&run_id).await?;
        self.store
            .log_batch(
                &run_id,
                Batch {
                    params: vec![Param { key, value }],
                    ..Batch::default()
                },
            )
            .await?;
        Ok(Empty {})
    }

    pub async fn set_tag(&self, request: SetTag) -> Result<Empty> {
        let run_id = run_id_of(request.run_id, request.run_uuid)?;
        let key = required(request.key, "key")?;
        let value = check::validate_run_tag(&key, request.value.unwrap_or_default(), "")?;
        self.active_run(&run_id).await?;
        self.store
            .log_batch(
                &run_id,
                Batch {
                    tags: vec![RunTag { key, value }],
                    ..Batch::default()
                },
            )
            .await?;
        Ok(Empty {})
    }

    pub async fn delete_tag(&self, request: DeleteTag) -> Result<Empty> {
        let run_id = required(request.run_id, "run_id")?;
        let key = required(request.key, "key")?;
        self.active_run(&run_id).await?;
        if !self.store.delete_run_tag(&run_id, &key).await? {
            return Err(Error::not_found(format!(
                "No tag with name: {key} in run with id {run_id}"
            )));
        }
        Ok(Empty {})
    }

    pub async fn log_batch(&self, request: LogBatch) -> Result<Empty> {
        let run_id = required(request.run_id, "run_id")?;
        check::validate_batch_limits(
            request.metrics.len(),
            request.params.len(),
            request.tags.len(),
        )?;
        let mut batch = Batch::default();
        for (index, input) in request.metrics.into_iter().enumerate() {
            batch
                .metrics
                .push(Self::metric_of(input, &format!("metrics[{index}]"))?);
        }
        for (index, input) in request.params.into_iter().enumerate() {
            let path = format!("params[{index}]");
            let key = input
                .key
                .ok_or_else(|| Error::missing_parameter(&json_path(&path, "key")))?;
            let value = check::validate_param(&key, input.value.unwrap_or_default(), &path)?;
            batch.params.push(Param { key, value });
        }
        let mut duplicates: Vec<&str> = Vec::new();
        for (index, param) in batch.params.iter().enumerate() {
            if batch.params[..index]
                .iter()
                .any(|earlier| earlier.key == param.key)
            {
                duplicates.push(&param.key);
            }
        }
        if !duplicates.is_empty() {
            return Err(Error::invalid_parameter(format!(
                "Duplicate parameter keys have been submitted: {duplicates:?}. Please ensure the request contains \
                 only one param value per param key."
            )));
        }
        for (index, input) in request.tags.into_iter().enumerate() {
            let path = format!("tags[{index}]");
            let key = input
                .key
                .ok_or_else(|| Error::missing_parameter(&json_path(&path, "key")))?;
            let value = check::validate_run_tag(&key, input.value.unwrap_or_default(), &path)?;
            batch.tags.push(RunTag { key, value });
        }
        self.active_run(&run_id).await?;
        self.store.log_batch(&run_id, batch).await?;
        Ok(Empty {})
    }

    pub async fn log_inputs(&self, request: LogInputs) -> Result<Empty> {
        let run_id = required(request.run_id, "run_id")?;
        for input in &request.datasets {
            let dataset = &input.dataset;
            check::validate_length("dataset name", check::MAX_DATASET_NAME_SIZE, &dataset.name)?;
            check::validate_length(
                "dataset digest",
                check::MAX_DATASET_DIGEST_SIZE,
                &dataset.digest,
            )?;
            check::validate_length(
                "dataset source",
                check::MAX_DATASET_SOURCE_SIZE,
                &dataset.source,
            )?;
            check::validate_length(
                "dataset schema",
                check::MAX_DATASET_SCHEMA_SIZE,
                dataset.schema.as_deref().unwrap_or(""),
            )?;
            check::validate_length(
                "dataset profile",
                check::MAX_DATASET_PROFILE_SIZE,
                dataset.profile.as_deref().unwrap_or(""),
            )?;
            for tag in &input.tags {
                check::validate_length("input tag key", check::MAX_INPUT_TAG_KEY_SIZE, &tag.key)?;
                check::validate_length(
                    "input tag value",
                    check::MAX_INPUT_TAG_VALUE_SIZE,
                    &tag.value,
                )?;
            }
        }
        let info = self.active_run(&run_id).await?;
        self.store
            .log_inputs(
                &run_id,
                &info.experiment_id,
                RunInputsWrite {
                    datasets: request.datasets,
                    model_ids: request
                        .models
                        .into_iter()
                        .map(|model| model.model_id)
                        .collect(),
                },
            )
            .await?;
        Ok(Empty {})
    }

    pub async fn log_outputs(&self, request: LogOutputs) -> Result<Empty> {
        let run_id = required(request.run_id, "run_id")?;
        self.active_run(&run_id).await?;
        self.store.log_outputs(&run_id, request.models).await?;
        Ok(Empty {})
    }

    pub async fn search_runs(&self, request: SearchRuns) -> Result<SearchRunsResponse> {
        let max_results = request
            .max_results
            .unwrap_or(check::DEFAULT_SEARCH_RUNS_MAX_RESULTS);
        if !(0..=check::MAX_RESULTS_SEARCH_RUNS).contains(&max_results) {
            return Err(Error::invalid_parameter(format!(
                "Invalid value {max_results} for parameter 'max_results' supplied. It must be at most {}",
                check::MAX_RESULTS_SEARCH_RUNS
            )));
        }
        let filter = filter::parse_run_filter(request.filter.as_deref().unwrap_or(""))?;
        let order_by = request
            .order_by
            .iter()
            .filter(|clause| !clause.trim().is_empty())
            .map(|clause| filter::parse_run_order_by(clause))
            .collect::<Result<Vec<_>>>()?;
        let page = self
            .store
            .search_runs(RunQuery {
                experiment_ids: request.experiment_ids,
                filter,
                order_by,
                view_type: parse_view_type(request.run_view_type, "run_view_type")?,
                max_results: to_usize(max_results),
                offset: decode_page_token(request.page_token.as_deref())?,
            })
            .await?;
        Ok(SearchRunsResponse {
            runs: page.items,
            next_page_token: page.next_page_token,
        })
    }

    // ----- metric history ----------------------------------------------------------------------------------

    pub async fn get_metric_history(&self, request: GetMetricHistory) -> Result<MetricsResponse> {
        let run_id = run_id_of(request.run_id, request.run_uuid)?;
        let metric_key = required(request.metric_key, "metric_key")?;
        let max_results = match request.max_results {
            None => None,
            Some(value) if value <= 0 => {
                return Err(Error::invalid_parameter(check::invalid_value(
                    "max_results",
                    &value.to_string(),
                    Some("max_results must be greater than 0"),
                )));
            }
            Some(value) => Some(to_usize(value)),
        };
        // Like MLflow, a run without this metric (or without any row at all) has an empty history.
        let cursor = decode_history_token(request.page_token.as_deref())?;
        let page = self
            .store
            .get_metric_history(&run_id, &metric_key, max_results, cursor)
            .await?;
        Ok(MetricsResponse {
            metrics: page.items,
            next_page_token: page.next_page_token,
        })
    }

    pub async fn get_metric_history_bulk(
        &self,
        request: GetMetricHistoryBulk,
    ) -> Result<MetricsResponse> {
        if request.run_id.is_empty() {
            return Err(Error::invalid_parameter(
                "GetMetricHistoryBulk request must specify at least one run_id.",
            ));
        }
        if request.run_id.len() > check::MAX_RUNS_GET_METRIC_HISTORY_BULK {
            return Err(Error::invalid_parameter(format!(
                "GetMetricHistoryBulk request cannot specify more than {} run_ids. Received {} run_ids.",
                check::MAX_RUNS_GET_METRIC_HISTORY_BULK,
                request.run_id.len()
            )));
        }
        let metric_key = required(request.metric_key, "metric_key")?;
        let max_results = request
            .max_results
            .unwrap_or(check::MAX_RESULTS_GET_METRIC_HISTORY)
            .clamp(1, check::MAX_RESULTS_GET_METRIC_HISTORY);
        let metrics = self
            .store
            .get_metric_history_bulk(&request.run_id, &metric_key, to_usize(max_results))
            .await?;
        Ok(MetricsResponse {
            metrics,
            next_page_token: None,
        })
    }

    pub async fn get_metric_history_bulk_interval(
        &self,
        request: GetMetricHistoryBulkInterval,
    ) -> Result<MetricsResponse> {
        if request.run_ids.is_empty() {
            return Err(Error::missing_parameter("run_ids"));
        }
        if request.run_ids.len() > check::MAX_RUNS_GET_METRIC_HISTORY_BULK {
            return Err(Error::invalid_parameter(format!(
                "GetMetricHistoryBulkInterval request must specify at most {} run_ids. Received {} run_ids.",
                check::MAX_RUNS_GET_METRIC_HISTORY_BULK,
                request.run_ids.len()
            )));
        }
        let metric_key = required(request.metric_key, "metric_key")?;
        let max_results = request.max_results.unwrap_or(check::MAX_RESULTS_PER_RUN);
        if !(1..=check::MAX_RESULTS_PER_RUN).contains(&max_results) {
            return Err(Error::invalid_parameter(format!(
                "max_results must be between 1 and {}.",
                check::MAX_RESULTS_PER_RUN
            )));
        }
        let steps = match (request.start_step, request.end_step) {
            (Some(start), Some(end)) if start > end => {
                return Err(Error::invalid_parameter(format!(
                    "end_step must be greater than start_step. Found start_step={start} and end_step={end}."
                )));
            }
            (Some(start), Some(end)) => Some((start, end)),
            (None, None) => None,
            _ => {
                return Err(Error::invalid_parameter(
                    "If either start step or end step are specified, both must be specified.",
                ));
            }
        };
        for run_id in &request.run_ids {
            self.run_info(run_id).await?;
        }
        let metrics = self
            .store
            .get_metric_history_bulk_interval(
                &request.run_ids,
                &metric_key,
                steps,
                to_usize(max_results),
            )
            .await?;
        Ok(MetricsResponse {
            metrics,
            next_page_token: None,
        })
    }

    pub async fn search_datasets(&self, request: SearchDatasets) -> Result<SearchDatasetsResponse> {
        if request.experiment_ids.is_empty() {
            return Err(Error::missing_parameter("experiment_ids"));
        }
        if request.experiment_ids.len() > 20 {
            return Err(Error::invalid_parameter(format!(
                "SearchDatasets request cannot specify more than 20 experiment_ids. Received {} experiment_ids.",
                request.experiment_ids.len()
            )));
        }
        let dataset_summaries = self.store.search_datasets(&request.experiment_ids).await?;
        Ok(SearchDatasetsResponse { dataset_summaries })
    }
}
