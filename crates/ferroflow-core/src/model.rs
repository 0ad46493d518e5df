//! Domain values the services hand to the stores. The stores save them as given: ids and times are
//! already decided and every field already validated.

use ferroflow_proto::tracking::{
    DatasetInput, Experiment, ExperimentTag, Metric, Param, Run, RunTag,
};

pub use ferroflow_proto::tracking::{DatasetSummary, RunInfo};

/// `lifecycle_stage` of experiments and runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleStage {
    Active,
    Deleted,
}

impl LifecycleStage {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::Active => "active",
            LifecycleStage::Deleted => "deleted",
        }
    }
}

/// `view_type` / `run_view_type` of searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewType {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

impl ViewType {
    /// Accepts the enum name or its number, as protobuf JSON does.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ACTIVE_ONLY" | "1" => Some(ViewType::ActiveOnly),
            "DELETED_ONLY" | "2" => Some(ViewType::DeletedOnly),
            "ALL" | "3" => Some(ViewType::All),
            _ => None,
        }
    }

    /// The lifecycle stages this view includes.
    pub fn stages(self) -> &'static [&'static str] {
        match self {
            ViewType::ActiveOnly => &["active"],
            ViewType::DeletedOnly => &["deleted"],
            ViewType::All => &["active", "deleted"],
        }
    }
}

/// `RunStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    /// Accepts the enum name or its number, as protobuf JSON does.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "RUNNING" | "1" => Some(RunStatus::Running),
            "SCHEDULED" | "2" => Some(RunStatus::Scheduled),
            "FINISHED" | "3" => Some(RunStatus::Finished),
            "FAILED" | "4" => Some(RunStatus::Failed),
            "KILLED" | "5" => Some(RunStatus::Killed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
}

/// A new experiment; the store assigns the id and returns it.
#[derive(Debug, Clone)]
pub struct NewExperiment {
    pub name: String,
    /// The artifact location, or `None` to derive `<default root>/<id>` once the id is known.
    pub artifact_location: Option<String>,
    /// The root under which a derived location is made, e.g. `mlflow-artifacts:` (no trailing slash).
    pub default_artifact_root: String,
    pub tags: Vec<ExperimentTag>,
    pub creation_time: i64,
}

/// A new run with everything decided.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub run_id: String,
    pub experiment_id: String,
    pub run_name: String,
    pub user_id: String,
    pub start_time: i64,
    pub artifact_uri: String,
    pub tags: Vec<RunTag>,
}

/// A run update: each `Some` field is written.
#[derive(Debug, Clone)]
pub struct RunUpdate {
    pub status: Option<RunStatus>,
    pub end_time: Option<i64>,
    pub run_name: Option<String>,
}

/// A validated log-batch: written in one transaction or not at all.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub metrics: Vec<Metric>,
    pub params: Vec<Param>,
    pub tags: Vec<RunTag>,
}

/// One page of results and the token of the next.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

/// A search over experiments, already parsed.
#[derive(Debug, Clone)]
pub struct ExperimentQuery {
    pub filter: Vec<crate::filter::Comparison>,
    pub order_by: Vec<crate::filter::OrderBy>,
    pub view_type: ViewType,
    pub max_results: usize,
    pub offset: usize,
}

/// A search over runs, already parsed.
#[derive(Debug, Clone)]
pub struct RunQuery {
    pub experiment_ids: Vec<String>,
    pub filter: Vec<crate::filter::Comparison>,
    pub order_by: Vec<crate::filter::OrderBy>,
    pub view_type: ViewType,
    pub max_results: usize,
    pub offset: usize,
}

/// Datasets to attach to a run.
#[derive(Debug, Clone)]
pub struct RunInputsWrite {
    pub datasets: Vec<DatasetInput>,
    pub model_ids: Vec<String>,
}

pub type ExperimentRecord = Experiment;
pub type RunRecord = Run;
