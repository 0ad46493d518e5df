//! `ferroflow gc`: MLflow's `mlflow gc`. Runs, logged models and experiments in the `deleted` lifecycle
//! stage are removed for good, with their artifacts, and (ferroflow's addition, `mlflow gc` 3.17 has none) traces older than
//! an age are deleted per experiment.
//!
//! What is chosen follows `mlflow gc`:
//!
//! - runs: those of `--run-ids`, else every deleted run (deleted at least `--older-than` ago when given).
//!   A named run must exist, be deleted and, with `--older-than`, be old enough.
//! - logged models: those of `--logged-model-ids`, else every deleted one (last updated at least
//!   `--older-than` ago when given), with their artifacts, tags, params and metrics.
//! - experiments: those of `--experiment-ids`, else every deleted experiment (last updated more than
//!   `--older-than` ago when given). Each goes with all its runs (and their artifacts), tags, traces,
//!   logged models and scorers.
//! - traces: with `--trace-older-than`, every trace requested at least that long ago, in every experiment
//!   or in those of `--trace-experiment-ids`, through the store's trace deletion.
//!
//! A run's artifacts are found as the server finds them: `mlflow-artifacts:` URIs (and HTTP URIs of the
//! proxied artifact API) in `--artifacts-destination`; local paths and cloud URIs only below
//! `--default-artifact-root`. A run whose artifacts lie anywhere else keeps them (a warning names the
//! location, as `mlflow gc` warns and goes on) and its rows are deleted; nothing outside those roots is
//! ever touched. Each run is deleted in one transaction after its artifacts; a failure on one run or
//! experiment is reported and the others go on; the command exits non-zero when anything failed.

use anyhow::{bail, Context};
use clap::Args;
use ferroflow_artifacts::{
    open_artifact_store, relative_artifact_path, ArtifactLocation, ArtifactStore, CloudSettings,
    LocalArtifactStore, RunArtifactLocation,
};
use ferroflow_core::artifact_path::ArtifactPath;
use ferroflow_core::traces::{TraceDeletion, TraceStore};
use ferroflow_store::{BackendUri, GcLoggedModel, GcRun, PoolSettings, SqlStore};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

/// Traces deleted per transaction.
const TRACES_PER_BATCH: i64 = 1_000;

#[derive(Args, Debug)]
pub struct GcArgs {
    /// The database, e.g. `sqlite:///mlflow.db` or `postgresql://user@host/db`.
    #[arg(
        long,
        env = "MLFLOW_BACKEND_STORE_URI",
        default_value = "sqlite:///mlflow.db"
    )]
    backend_store_uri: String,
    /// Where the server keeps proxied artifacts (`mlflow-artifacts:/` URIs resolve under it), as given to
    /// `ferroflow server`.
    #[arg(
        long,
        env = "MLFLOW_ARTIFACTS_DESTINATION",
        default_value = "./mlartifacts"
    )]
    artifacts_destination: String,
    /// The server's `--default-artifact-root`: run artifacts at local paths or cloud URIs are deleted
    /// only below it.
    #[arg(long, env = "MLFLOW_DEFAULT_ARTIFACT_ROOT")]
    default_artifact_root: Option<String>,
    /// Only runs deleted, and experiments last updated, longer ago than this (`#d#h#m#s`, decimals
    /// allowed: `30d`, `1d2h3m4s`, `1.5h`).
    #[arg(long)]
    older_than: Option<String>,
    /// Comma-separated runs to delete for good (they must be deleted); without it, every deleted run.
    #[arg(long, value_delimiter = ',')]
    run_ids: Option<Vec<String>>,
    /// Comma-separated logged models to delete for good (they must be deleted); without it, every
    /// deleted logged model.
    #[arg(long, value_delimiter = ',')]
    logged_model_ids: Option<Vec<String>>,
    /// Comma-separated experiments to delete for good with all their runs (they must be deleted);
    /// without it, every deleted experiment.
    #[arg(long, value_delimiter = ',')]
    experiment_ids: Option<Vec<String>>,
    /// Also delete traces requested longer ago than this (`#d#h#m#s`), in every experiment.
    #[arg(long)]
    trace_older_than: Option<String>,
    /// Comma-separated experiments whose traces `--trace-older-than` deletes (default: all).
    #[arg(long, value_delimiter = ',', requires = "trace_older_than")]
    trace_experiment_ids: Option<Vec<String>>,
}

/// Parses MLflow's `--older-than` syntax, `[#d][#h][#m][#s]` with decimal numbers, into milliseconds
/// (truncated, as MLflow truncates). An empty string is zero, as in MLflow.
pub fn parse_age(text: &str) -> anyhow::Result<i64> {
    let invalid = || {
        anyhow::anyhow!(
            "Could not parse any time information from '{text}'. Examples of valid strings: '8h', \
             '2d8h5m20s', '2m4s'"
        )
    };
    let mut rest = text;
    let mut seconds = 0.0_f64;
    for (unit, unit_seconds) in [('d', 86_400.0), ('h', 3_600.0), ('m', 60.0), ('s', 1.0)] {
        let digits = rest
            .find(|character: char| !(character.is_ascii_digit() || character == '.'))
            .unwrap_or(rest.len());
        if digits == 0 || !rest[digits..].starts_with(unit) {
            continue;
        }
        let number: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        seconds += number * unit_seconds;
        rest = &rest[digits + 1..];
    }
    if !rest.is_empty() || !seconds.is_finite() {
        return Err(invalid());
    }
    let millis = (seconds * 1000.0).trunc();
    if millis > i64::MAX as f64 {
        return Err(invalid());
    }
    #[allow(
        clippy::cast_possible_truncation,
        reason = "finite, non-negative and checked against i64::MAX above"
    )]
    Ok(millis as i64)
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// What a gc did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub runs_deleted: usize,
    pub logged_models_deleted: usize,
    pub experiments_deleted: usize,
    pub traces_deleted: i64,
    pub trace_experiments: usize,
    /// Artifact folders of runs and logged models deleted.
    pub artifact_folders_deleted: usize,
    /// Runs and logged models with no artifacts where their URI points (nothing to delete).
    pub artifacts_absent: usize,
    /// Runs and logged models whose artifacts lie outside the known roots and were left in place.
    pub artifacts_skipped: usize,
    pub failures: Vec<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(formatter, "runs: {} deleted", self.runs_deleted)?;
        writeln!(
            formatter,
            "logged models: {} deleted",
            self.logged_models_deleted
        )?;
        writeln!(
            formatter,
            "experiments: {} deleted",
            self.experiments_deleted
        )?;
        writeln!(
            formatter,
            "artifacts: {} folders deleted, {} had none, {} left outside the artifact roots",
            self.artifact_folders_deleted, self.artifacts_absent, self.artifacts_skipped
        )?;
        writeln!(
            formatter,
            "traces: {} deleted in {} experiments",
            self.traces_deleted, self.trace_experiments
        )?;
        writeln!(formatter, "failures: {}", self.failures.len())
    }
}

pub async fn run(args: GcArgs) -> anyhow::Result<()> {
    let older_than = args.older_than.as_deref().map(parse_age).transpose()?;
    let trace_older_than = args
        .trace_older_than
        .as_deref()
        .map(parse_age)
        .transpose()?;
    let experiment_ids = args
        .experiment_ids
        .as_deref()
        .map(|ids| parse_experiment_ids(ids, "--experiment-ids"))
        .transpose()?;
    let trace_experiment_ids = args
        .trace_experiment_ids
        .as_deref()
        .map(|ids| parse_experiment_ids(ids, "--trace-experiment-ids"))
        .transpose()?;
    let default_artifact_root = args
        .default_artifact_root
        .as_deref()
        .map(absolute_root)
        .transpose()?;
    let uri = crate::parse_backend_uri(&args.backend_store_uri)?;
    // Opening a SQLite path creates a database there; gc has nothing to collect in a new one.
    if let BackendUri::Sqlite { path } = &uri {
        if !path.exists() {
            bail!("no SQLite database at {}", path.display());
        }
    }
    let store = open(&uri, &args.backend_store_uri).await?;
    let plan = Plan {
        older_than,
        older_than_text: args.older_than.clone().unwrap_or_default(),
        run_ids: args.run_ids.clone(),
        logged_model_ids: args.logged_model_ids.clone(),
        experiment_ids,
        trace_older_than,
        trace_experiment_ids,
    };
    let mut artifacts = ArtifactRoots::new(args.artifacts_destination, default_artifact_root);
    let summary = gc(&store, &plan, &mut artifacts, now_millis(), true).await;
    ferroflow_core::store::TrackingStore::close(&store).await;
    let summary = summary?;
    print!("{summary}");
    if !summary.failures.is_empty() {
        bail!(
            "{} of the deletions failed (see above); the rest was done",
            summary.failures.len()
        );
    }
    Ok(())
}

async fn open(uri: &BackendUri, shown: &str) -> anyhow::Result<SqlStore> {
    SqlStore::open(uri, crate::PROXIED_ARTIFACT_ROOT, &PoolSettings::default())
        .await
        .with_context(|| format!("cannot open backend store {}", crate::redact_uri(shown)))
}

fn parse_experiment_ids(ids: &[String], flag: &str) -> anyhow::Result<Vec<i64>> {
    ids.iter()
        .map(|id| id.trim())
        .filter(|id| !id.is_empty())
        .map(|id| {
            id.parse::<i64>()
                .with_context(|| format!("{flag}: '{id}' is not an experiment id"))
        })
        .collect()
}

/// A local root made absolute, as `ferroflow server` makes it; URIs are kept.
fn absolute_root(root: &str) -> anyhow::Result<String> {
    if root.contains(":/") {
        Ok(root.to_owned())
    } else {
        crate::absolute(root)
    }
}

/// What to delete.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    /// `--older-than` in milliseconds.
    pub older_than: Option<i64>,
    /// `--older-than` as given, for messages.
    pub older_than_text: String,
    pub run_ids: Option<Vec<String>>,
    pub logged_model_ids: Option<Vec<String>>,
    pub experiment_ids: Option<Vec<i64>>,
    /// `--trace-older-than` in milliseconds.
    pub trace_older_than: Option<i64>,
    pub trace_experiment_ids: Option<Vec<i64>>,
}

/// Deletes what `plan` names, reporting each failure and going on. `Err` only when the database cannot
/// even be listed.
pub async fn gc(
    store: &SqlStore,
    plan: &Plan,
    artifacts: &mut ArtifactRoots,
    now: i64,
    show_progress: bool,
) -> anyhow::Result<Summary> {
    let cutoff = plan.older_than.map(|age| now.saturating_sub(age));
    let mut summary = Summary::default();

    // Runs named or found, checked as `mlflow gc` checks them.
    let mut runs: Vec<Result<GcRun, String>> = Vec::new();
    match &plan.run_ids {
        Some(ids) => {
            let mut seen = HashSet::new();
            for id in ids.iter().map(|id| id.trim()).filter(|id| !id.is_empty()) {
                if !seen.insert(id.to_owned()) {
                    continue;
                }
                runs.push(match store.gc_run(id).await {
                    Ok(Some(run)) => check_run(run, cutoff, &plan.older_than_text),
                    Ok(None) => Err(format!("Run '{id}' not found")),
                    Err(error) => Err(format!("run {id}: {}", describe(&error))),
                });
            }
        }
        None => runs.extend(
            store
                .gc_deleted_runs(cutoff)
                .await
                .context("cannot list the deleted runs")?
                .into_iter()
                .map(Ok),
        ),
    }

    // Logged models named or found.
    let mut models: Vec<Result<GcLoggedModel, String>> = Vec::new();
    match &plan.logged_model_ids {
        Some(ids) => {
            let mut seen = HashSet::new();
            for id in ids.iter().map(|id| id.trim()).filter(|id| !id.is_empty()) {
                if !seen.insert(id.to_owned()) {
                    continue;
                }
                models.push(match store.gc_logged_model(id).await {
                    Ok(Some(model)) if model.lifecycle_stage.as_deref() != Some("deleted") => {
                        Err(format!(
                            "Logged model {id} is not in `deleted` lifecycle stage. Only logged \
                             models in `deleted` lifecycle stage can be deleted."
                        ))
                    }
                    Ok(Some(model))
                        if cutoff
                            .is_some_and(|cutoff| model.last_updated_timestamp_ms > cutoff) =>
                    {
                        Err(format!(
                            "Logged model {id} is not older than the required age. Only logged \
                             models older than {} can be deleted.",
                            plan.older_than_text
                        ))
                    }
                    Ok(Some(model)) => Ok(model),
                    Ok(None) => Err(format!("Logged model with ID '{id}' not found")),
                    Err(error) => Err(format!("logged model {id}: {}", describe(&error))),
                });
            }
        }
        None => models.extend(
            store
                .gc_deleted_logged_models(cutoff)
                .await
                .context("cannot list the deleted logged models")?
                .into_iter()
                .map(Ok),
        ),
    }

    // Experiments named or found.
    let mut experiments: Vec<Result<i64, String>> = Vec::new();
    match &plan.experiment_ids {
        Some(ids) => {
            for &id in ids {
                experiments.push(match store.gc_experiment(id).await {
                    Ok(Some(experiment)) if experiment.lifecycle_stage != "deleted" => Err(format!(
                        "Experiment {id} is not in the deleted lifecycle stage. Only experiments in \
                         the deleted lifecycle stage can be hard-deleted."
                    )),
                    Ok(Some(experiment))
                        if cutoff.is_some_and(|cutoff| {
                            experiment
                                .last_update_time
                                .is_none_or(|updated| updated >= cutoff)
                        }) =>
                    {
                        Err(format!(
                            "Experiment {id} is not older than the required age. Only experiments \
                             older than {} can be deleted.",
                            plan.older_than_text
                        ))
                    }
                    Ok(Some(_)) => Ok(id),
                    Ok(None) => Err(format!("No Experiment with id={id} exists")),
                    Err(error) => Err(format!("experiment {id}: {}", describe(&error))),
                });
            }
        }
        None => experiments.extend(
            store
                .gc_deleted_experiments(cutoff)
                .await
                .context("cannot list the deleted experiments")?
                .into_iter()
                .map(Ok),
        ),
    }

    let total = runs.len() + models.len() + experiments.len();
    let progress = if show_progress {
        ProgressBar::new(u64::try_from(total).unwrap_or(u64::MAX))
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {pos}/{len} runs, logged models and experiments ({elapsed}, eta {eta}) {msg}",
    ) {
        progress.set_style(style);
    }

    let mut done_runs = HashSet::new();
    for run in runs {
        progress.inc(1);
        match run {
            Ok(run) => {
                progress.set_message(run.run_id.clone());
                match delete_run(store, &run, artifacts, &progress, &mut summary).await {
                    Ok(()) => {
                        done_runs.insert(run.run_id);
                    }
                    Err(message) => fail(&progress, &mut summary, message),
                }
            }
            Err(message) => fail(&progress, &mut summary, message),
        }
    }

    for model in models {
        progress.inc(1);
        match model {
            Ok(model) => {
                progress.set_message(model.model_id.clone());
                if let Err(message) =
                    delete_logged_model(store, &model, artifacts, &progress, &mut summary).await
                {
                    fail(&progress, &mut summary, message);
                }
            }
            Err(message) => fail(&progress, &mut summary, message),
        }
    }

    for experiment in experiments {
        progress.inc(1);
        let experiment_id = match experiment {
            Ok(id) => id,
            Err(message) => {
                fail(&progress, &mut summary, message);
                continue;
            }
        };
        progress.set_message(format!("experiment {experiment_id}"));
        match delete_experiment(store, experiment_id, artifacts, &progress, &mut summary).await {
            Ok(()) => {}
            Err(message) => fail(&progress, &mut summary, message),
        }
    }
    progress.finish_and_clear();

    if let Some(age) = plan.trace_older_than {
        delete_old_traces(
            store,
            now.saturating_sub(age),
            plan.trace_experiment_ids.as_deref(),
            show_progress,
            &mut summary,
        )
        .await;
    }
    Ok(summary)
}

fn fail(progress: &ProgressBar, summary: &mut Summary, message: String) {
    progress.suspend(|| eprintln!("error: {message}"));
    summary.failures.push(message);
}

fn describe(error: &ferroflow_core::Error) -> String {
    match &error.source {
        Some(source) => format!("{} ({source})", error.message),
        None => error.message.clone(),
    }
}

/// `Ok` when the run may be deleted: in the `deleted` stage and, with a cutoff, deleted before it.
fn check_run(run: GcRun, cutoff: Option<i64>, older_than: &str) -> Result<GcRun, String> {
    if run.lifecycle_stage != "deleted" {
        return Err(format!(
            "Run {} is not in `deleted` lifecycle stage. Only runs in `deleted` lifecycle stage can \
             be deleted.",
            run.run_id
        ));
    }
    if let Some(cutoff) = cutoff {
        if run.deleted_time.is_none_or(|deleted| deleted > cutoff) {
            return Err(format!(
                "Run {} is not older than the required age. Only runs older than {older_than} can \
                 be deleted.",
                run.run_id
            ));
        }
    }
    Ok(run)
}

/// Deletes the run's artifacts, then its rows in one transaction.
async fn delete_run(
    store: &SqlStore,
    run: &GcRun,
    artifacts: &mut ArtifactRoots,
    progress: &ProgressBar,
    summary: &mut Summary,
) -> Result<(), String> {
    delete_run_artifacts(run, artifacts, progress, summary).await?;
    match store.hard_delete_run(&run.run_id).await {
        Ok(true) => {
            summary.runs_deleted += 1;
            progress.suspend(|| {
                println!("Run with ID {} has been permanently deleted.", run.run_id);
            });
            Ok(())
        }
        Ok(false) => Err(format!(
            "Run {} is no longer in the `deleted` lifecycle stage; left as it is",
            run.run_id
        )),
        Err(error) => Err(format!("run {}: {}", run.run_id, describe(&error))),
    }
}

/// Deletes the logged model's artifacts, then its rows in one transaction.
async fn delete_logged_model(
    store: &SqlStore,
    model: &GcLoggedModel,
    artifacts: &mut ArtifactRoots,
    progress: &ProgressBar,
    summary: &mut Summary,
) -> Result<(), String> {
    delete_artifacts(
        "logged model",
        &model.model_id,
        Some(&model.artifact_location),
        artifacts,
        progress,
        summary,
    )
    .await?;
    match store.hard_delete_logged_model(&model.model_id).await {
        Ok(true) => {
            summary.logged_models_deleted += 1;
            progress.suspend(|| {
                println!(
                    "Logged model with ID {} has been permanently deleted.",
                    model.model_id
                );
            });
            Ok(())
        }
        Ok(false) => Err(format!(
            "Logged model {} is no longer in the `deleted` lifecycle stage; left as it is",
            model.model_id
        )),
        Err(error) => Err(format!(
            "logged model {}: {}",
            model.model_id,
            describe(&error)
        )),
    }
}

async fn delete_run_artifacts(
    run: &GcRun,
    artifacts: &mut ArtifactRoots,
    progress: &ProgressBar,
    summary: &mut Summary,
) -> Result<(), String> {
    delete_artifacts(
        "run",
        &run.run_id,
        run.artifact_uri.as_deref(),
        artifacts,
        progress,
        summary,
    )
    .await
}

/// Deletes the artifacts of a run or logged model (`kind`, `id`) at `uri`, when they lie under a root.
async fn delete_artifacts(
    kind: &str,
    id: &str,
    uri: Option<&str>,
    artifacts: &mut ArtifactRoots,
    progress: &ProgressBar,
    summary: &mut Summary,
) -> Result<(), String> {
    let Some(uri) = uri.filter(|uri| !uri.is_empty()) else {
        return Ok(());
    };
    match artifacts.resolve(uri).await {
        Ok(Resolved::At(artifact_store, root)) => {
            let found = delete_folder(artifact_store.as_ref(), &root, id)
                .await
                .map_err(|error| {
                    format!(
                        "{kind} {id}: cannot delete its artifacts at {uri}: {}",
                        describe(&error)
                    )
                })?;
            if found {
                summary.artifact_folders_deleted += 1;
            } else {
                summary.artifacts_absent += 1;
            }
            Ok(())
        }
        Ok(Resolved::MissingRoot) => {
            summary.artifacts_absent += 1;
            Ok(())
        }
        Ok(Resolved::Outside) => {
            summary.artifacts_skipped += 1;
            progress.suspend(|| {
                eprintln!(
                    "warning: {kind} {id}: its artifacts at '{uri}' are outside \
                     --artifacts-destination and --default-artifact-root; they are left in place"
                );
            });
            Ok(())
        }
        Err(error) => Err(format!(
            "{kind} {id}: cannot open the artifact store of {uri}: {error:#}"
        )),
    }
}

/// Deletes an artifact folder (`<experiment>/<run>/artifacts`, `<experiment>/models/<model>/artifacts`),
/// and the folder above it when it is named after the run or model (`id`) and left empty. `false` when
/// there was nothing at `root`.
async fn delete_folder(
    artifact_store: &dyn ArtifactStore,
    root: &ArtifactPath,
    id: &str,
) -> ferroflow_core::Result<bool> {
    if root.is_root() {
        return Err(ferroflow_core::Error::invalid_parameter(
            "the artifact location is the artifact root itself",
        ));
    }
    if artifact_store.head(root).await?.is_none() {
        return Ok(false);
    }
    artifact_store.delete(root).await?;
    if let Some(parent) = root.parent() {
        if parent.file_name() == Some(id)
            && artifact_store
                .list(&parent)
                .await?
                .is_some_and(|entries| entries.is_empty())
        {
            artifact_store.delete(&parent).await?;
        }
    }
    Ok(true)
}

/// Deletes each run of the experiment with its artifacts and the artifacts of its logged models, then the
/// experiment with everything left.
async fn delete_experiment(
    store: &SqlStore,
    experiment_id: i64,
    artifacts: &mut ArtifactRoots,
    progress: &ProgressBar,
    summary: &mut Summary,
) -> Result<(), String> {
    let runs = store
        .gc_runs_of_experiment(experiment_id)
        .await
        .map_err(|error| format!("experiment {experiment_id}: {}", describe(&error)))?;
    let mut failed = 0;
    for run in &runs {
        let outcome = if run.lifecycle_stage == "deleted" {
            delete_run(store, run, artifacts, progress, summary).await
        } else {
            // Taken along with the experiment's rows below.
            delete_run_artifacts(run, artifacts, progress, summary).await
        };
        if let Err(message) = outcome {
            failed += 1;
            fail(progress, summary, message);
        }
    }
    let models = store
        .gc_logged_models_of_experiment(experiment_id)
        .await
        .map_err(|error| format!("experiment {experiment_id}: {}", describe(&error)))?;
    for model in &models {
        // The rows go with the experiment below.
        let outcome = delete_artifacts(
            "logged model",
            &model.model_id,
            Some(&model.artifact_location),
            artifacts,
            progress,
            summary,
        )
        .await;
        if let Err(message) = outcome {
            failed += 1;
            fail(progress, summary, message);
        }
    }
    if failed > 0 {
        return Err(format!(
            "Experiment {experiment_id} was kept: {failed} of its runs and logged models could not \
             be deleted"
        ));
    }
    match store.hard_delete_experiment(experiment_id).await {
        Ok(true) => {
            summary.experiments_deleted += 1;
            progress.suspend(|| {
                println!("Experiment with ID {experiment_id} has been permanently deleted.");
            });
            Ok(())
        }
        Ok(false) => Err(format!(
            "Experiment {experiment_id} is no longer in the deleted lifecycle stage; left as it is"
        )),
        Err(error) => Err(format!("experiment {experiment_id}: {}", describe(&error))),
    }
}

async fn delete_old_traces(
    store: &SqlStore,
    requested_before: i64,
    scope: Option<&[i64]>,
    show_progress: bool,
    summary: &mut Summary,
) {
    let experiments = match store
        .gc_experiments_with_traces(requested_before, scope)
        .await
    {
        Ok(experiments) => experiments,
        Err(error) => {
            let message = format!(
                "cannot list the experiments with traces: {}",
                describe(&error)
            );
            eprintln!("error: {message}");
            summary.failures.push(message);
            return;
        }
    };
    let progress = if show_progress {
        ProgressBar::new(u64::try_from(experiments.len()).unwrap_or(u64::MAX))
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} experiments' traces ({elapsed}) {msg}")
    {
        progress.set_style(style);
    }
    for experiment_id in experiments {
        progress.set_message(format!("experiment {experiment_id}"));
        let mut deleted = 0_i64;
        loop {
            let batch = store
                .delete_traces(
                    experiment_id,
                    TraceDeletion::OlderThan {
                        max_timestamp_millis: requested_before,
                        max_traces: Some(TRACES_PER_BATCH),
                    },
                )
                .await;
            match batch {
                Ok(count) => {
                    deleted += count;
                    if count < TRACES_PER_BATCH {
                        break;
                    }
                }
                Err(error) => {
                    fail(
                        &progress,
                        summary,
                        format!("traces of experiment {experiment_id}: {}", describe(&error)),
                    );
                    break;
                }
            }
        }
        summary.traces_deleted += deleted;
        summary.trace_experiments += 1;
        progress.suspend(|| {
            println!("Deleted {deleted} traces of experiment {experiment_id}.");
        });
        progress.inc(1);
    }
    progress.finish_and_clear();
}

/// Where a run's artifacts are.
enum Resolved {
    /// At this path of this store.
    At(Arc<dyn ArtifactStore>, ArtifactPath),
    /// Below a local root folder that does not exist: there is nothing to delete (and the folder is not
    /// created).
    MissingRoot,
    /// Outside every root this command may touch.
    Outside,
}

/// The artifact stores a run's `artifact_uri` may point into, opened when first needed (opening a local
/// folder creates it, so a gc that needs none touches none).
pub struct ArtifactRoots {
    destination: String,
    default_root: Option<String>,
    settings: CloudSettings,
    destination_store: Option<Arc<dyn ArtifactStore>>,
    default_root_store: Option<Arc<dyn ArtifactStore>>,
}

impl ArtifactRoots {
    /// `destination` is `--artifacts-destination`, `default_root` the absolute `--default-artifact-root`.
    pub fn new(destination: String, default_root: Option<String>) -> Self {
        Self {
            destination,
            default_root,
            settings: CloudSettings::from_env(),
            destination_store: None,
            default_root_store: None,
        }
    }

    /// The store and run root of `artifact_uri`, read as the server reads it
    /// ([`RunArtifactLocation`]); a URI the server would refuse or not reach is outside.
    async fn resolve(&mut self, artifact_uri: &str) -> anyhow::Result<Resolved> {
        let Ok(location) = RunArtifactLocation::parse(artifact_uri) else {
            return Ok(Resolved::Outside);
        };
        if let RunArtifactLocation::Proxied(root) = location {
            if missing_local_folder(&self.destination).await {
                return Ok(Resolved::MissingRoot);
            }
            if self.destination_store.is_none() {
                self.destination_store = Some(
                    open_artifact_store(&self.destination, &self.settings)
                        .await
                        .map_err(|error| anyhow::anyhow!("{}", error.message))?,
                );
            }
            return Ok(self
                .destination_store
                .clone()
                .map_or(Resolved::Outside, |store| Resolved::At(store, root)));
        }
        let Some(default_root) = &self.default_root else {
            return Ok(Resolved::Outside);
        };
        let Ok(root_location) = ArtifactLocation::parse(default_root) else {
            return Ok(Resolved::Outside);
        };
        let relative = match (&location, &root_location) {
            (RunArtifactLocation::Local(run_directory), ArtifactLocation::Local(root)) => {
                run_directory
                    .strip_prefix(root)
                    .ok()
                    .and_then(|relative| relative_artifact_path(relative).ok())
            }
            (RunArtifactLocation::Cloud, _) => root_location
                .relative_path_of(artifact_uri)
                .ok()
                .flatten()
                .and_then(|relative| ArtifactPath::parse(&relative).ok()),
            _ => None,
        };
        let Some(relative) = relative else {
            return Ok(Resolved::Outside);
        };
        if missing_local_folder(default_root).await {
            return Ok(Resolved::MissingRoot);
        }
        if self.default_root_store.is_none() {
            let store: Arc<dyn ArtifactStore> = match &root_location {
                ArtifactLocation::Local(root) => Arc::new(
                    LocalArtifactStore::new(root.clone())
                        .await
                        .map_err(|error| anyhow::anyhow!("{}", error.message))?,
                ),
                _ => open_artifact_store(default_root, &self.settings)
                    .await
                    .map_err(|error| anyhow::anyhow!("{}", error.message))?,
            };
            self.default_root_store = Some(store);
        }
        Ok(self
            .default_root_store
            .clone()
            .map_or(Resolved::Outside, |store| Resolved::At(store, relative)))
    }
}

/// Whether `location` is a local folder that does not exist (opening it would create it).
async fn missing_local_folder(location: &str) -> bool {
    match ArtifactLocation::parse(location) {
        Ok(ArtifactLocation::Local(path)) => !tokio::fs::try_exists(&path).await.unwrap_or(false),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_as_mlflow_parses_them() {
        assert_eq!(parse_age("1d2h3m4s").unwrap(), 93_784_000);
        assert_eq!(parse_age("30d").unwrap(), 2_592_000_000);
        assert_eq!(parse_age("1.5h").unwrap(), 5_400_000);
        assert_eq!(parse_age("2m4s").unwrap(), 124_000);
        assert_eq!(parse_age("0.0015s").unwrap(), 1);
        assert_eq!(parse_age("").unwrap(), 0);
        for bad in ["1x", "4s2m", "d", "1.2.3d", "1d1d", "-1d", "1 d", "1e3s"] {
            let error = parse_age(bad).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!(
                    "Could not parse any time information from '{bad}'"
                )),
                "{bad}: {error}"
            );
        }
    }

    #[tokio::test]
    async fn local_and_proxied_uris_resolve_only_below_their_roots() {
        let directory = tempfile::tempdir().unwrap();
        let root = directory.path().join("mlruns");
        let destination = directory.path().join("served");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&destination).unwrap();
        let mut roots = ArtifactRoots::new(
            destination.display().to_string(),
            Some(root.display().to_string()),
        );
        for (uri, expected) in [
            (
                format!("{}/1/abc/artifacts", root.display()),
                "1/abc/artifacts",
            ),
            (format!("file://{}/1/a%20b", root.display()), "1/a b"),
            (
                "mlflow-artifacts:/1/abc/artifacts".to_owned(),
                "1/abc/artifacts",
            ),
            (
                "http://host:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts".to_owned(),
                "1/abc/artifacts",
            ),
        ] {
            let Resolved::At(_, path) = roots.resolve(&uri).await.unwrap() else {
                panic!("{uri} not resolved");
            };
            assert_eq!(path.as_str(), expected, "{uri}");
        }
        for outside in [
            format!("{}/other/1", directory.path().display()),
            format!("{}/../etc", root.display()),
            "relative/1".to_owned(),
            "http://host:5000/other/1/abc".to_owned(),
            "mlflow-artifacts:/1/../../etc".to_owned(),
        ] {
            assert!(
                matches!(roots.resolve(&outside).await.unwrap(), Resolved::Outside),
                "{outside}"
            );
        }
    }

    #[tokio::test]
    async fn cloud_uris_resolve_only_below_a_cloud_root() {
        let mut roots = ArtifactRoots::new("./unused".into(), Some("s3://bucket/prefix".into()));
        let Resolved::At(_, path) = roots
            .resolve("s3://bucket/prefix/1/abc/artifacts")
            .await
            .unwrap()
        else {
            panic!("not resolved");
        };
        assert_eq!(path.as_str(), "1/abc/artifacts");
        for outside in [
            "s3://other/prefix/1/abc/artifacts",
            "s3://bucket/prefixed/1",
            "gs://bucket/prefix/1",
            "/data/mlruns/1/abc/artifacts",
            "ftp://host/1",
        ] {
            assert!(
                matches!(roots.resolve(outside).await.unwrap(), Resolved::Outside),
                "{outside}"
            );
        }
        let mut no_root = ArtifactRoots::new("./unused".into(), None);
        assert!(matches!(
            no_root
                .resolve("/data/mlruns/1/abc/artifacts")
                .await
                .unwrap(),
            Resolved::Outside
        ));
        // A proxied run under a destination folder that does not exist: nothing there, nothing made.
        let directory = tempfile::tempdir().unwrap();
        let absent = directory.path().join("absent");
        let mut roots = ArtifactRoots::new(absent.display().to_string(), None);
        assert!(matches!(
            roots
                .resolve("mlflow-artifacts:/1/abc/artifacts")
                .await
                .unwrap(),
            Resolved::MissingRoot
        ));
        assert!(!absent.exists());
    }
}
