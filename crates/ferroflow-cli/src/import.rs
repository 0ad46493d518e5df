//! `ferroflow import`: copies a legacy MLflow FileStore directory (`mlruns/`) into the backend store, with
//! the rules of MLflow's `mlflow migrate-filestore`.
//!
//! The layout read here:
//!
//! ```text
//! <mlruns>/<experiment_id>/meta.yaml            experiment (`.trash/<experiment_id>/` when deleted)
//! <mlruns>/<experiment_id>/tags/<key>           experiment tags (a key with `/` is a nested file)
//! <mlruns>/<experiment_id>/<run_id>/meta.yaml   run (status and source_type are numbers)
//! <mlruns>/<experiment_id>/<run_id>/params/<key>, tags/<key>
//! <mlruns>/<experiment_id>/<run_id>/metrics/<key>  lines `timestamp value [step]`, `nan`/`inf` allowed
//! <mlruns>/<experiment_id>/<run_id>/inputs/<id>/meta.yaml  dataset and model inputs, with their tags
//! <mlruns>/<experiment_id>/datasets/<id>/meta.yaml         datasets
//! ```
//!
//! Traces, logged models and the model registry of a FileStore are not imported.
//!
//! Reruns are safe: an experiment whose id is already in the database with the same name is reused (its
//! tags left as they are), a dataset of the same name and digest is reused, a run whose id is already there is skipped whole, and an experiment id held by
//! another name stops the import. Each run is one transaction.

use anyhow::{bail, Context};
use clap::Args;
use ferroflow_store::{
    BackendUri, DatasetImport, ExperimentImport, LegacyDataset, LegacyExperiment, LegacyInput,
    LegacyMetric, LegacyRun, PoolSettings, RunImport, SqlStore,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_yaml::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Folders of an experiment that are not runs.
const RESERVED_FOLDERS: [&str; 5] = ["tags", "datasets", "traces", "models", ".trash"];

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The database to import into, e.g. `sqlite:///mlflow.db`; an empty one gets MLflow 3.17's schema.
    #[arg(long, env = "MLFLOW_BACKEND_STORE_URI")]
    backend_store_uri: String,
    /// The FileStore directory: `mlruns/` itself or a folder holding it.
    #[arg(long)]
    mlruns: PathBuf,
    /// Read and check the whole FileStore and report what it holds, without opening the database.
    #[arg(long)]
    dry_run: bool,
    /// The artifact root of the Default experiment when the schema is created in an empty database.
    #[arg(long, env = "MLFLOW_DEFAULT_ARTIFACT_ROOT", default_value = crate::PROXIED_ARTIFACT_ROOT)]
    default_artifact_root: String,
}

/// An experiment folder of the FileStore with its run folders.
struct ExperimentFolder {
    experiment: LegacyExperiment,
    /// Each dataset with the name of its folder, which inputs refer to.
    datasets: Vec<(String, LegacyDataset)>,
    runs: Vec<PathBuf>,
}

/// One metric line: timestamp, value and step.
type MetricLine = (i64, f64, i64);

/// A run read from its folder, with the lines of each metric file.
struct RunFolder {
    run: LegacyRun,
    metrics: Vec<(String, Vec<MetricLine>)>,
}

/// What the import did, per kind of row.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub experiments_imported: usize,
    pub experiments_reused: usize,
    pub experiment_tags: usize,
    pub datasets_imported: usize,
    pub datasets_reused: usize,
    pub runs_imported: usize,
    pub runs_skipped: usize,
    pub params: usize,
    pub tags: usize,
    pub metrics: usize,
    pub latest_metrics: usize,
    pub inputs: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            formatter,
            "experiments: {} imported, {} already there (reused)",
            self.experiments_imported, self.experiments_reused
        )?;
        writeln!(
            formatter,
            "experiment tags: {} imported",
            self.experiment_tags
        )?;
        writeln!(
            formatter,
            "datasets: {} imported, {} already there (reused)",
            self.datasets_imported, self.datasets_reused
        )?;
        writeln!(
            formatter,
            "runs: {} imported, {} already there (skipped whole)",
            self.runs_imported, self.runs_skipped
        )?;
        writeln!(
            formatter,
            "params: {}, tags: {}, metrics: {}, latest metrics: {}, inputs: {} imported",
            self.params, self.tags, self.metrics, self.latest_metrics, self.inputs
        )
    }
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let mlruns = resolve_mlruns(&args.mlruns)?;
    let store = if args.dry_run {
        None
    } else {
        let uri = BackendUri::parse(&args.backend_store_uri).with_context(|| {
            format!(
                "invalid backend store uri {}",
                crate::redact_uri(&args.backend_store_uri)
            )
        })?;
        let store = SqlStore::open(&uri, &args.default_artifact_root, &PoolSettings::default())
            .await
            .with_context(|| {
                format!(
                    "cannot open backend store {}",
                    crate::redact_uri(&args.backend_store_uri)
                )
            })?;
        Some(store)
    };
    let summary = import(&mlruns, store.as_ref(), true).await;
    if let Some(store) = &store {
        ferroflow_core::store::TrackingStore::close(store).await;
    }
    let summary = summary?;
    if args.dry_run {
        println!("dry run: nothing was written; the FileStore holds:");
    } else {
        println!(
            "imported {} into {}:",
            mlruns.display(),
            crate::redact_uri(&args.backend_store_uri)
        );
    }
    print!("{summary}");
    Ok(())
}

/// Imports the FileStore at `mlruns` into `store`, or only reads it all when `store` is `None` (a dry
/// run, counted as if every row were new).
pub async fn import(
    mlruns: &Path,
    store: Option<&SqlStore>,
    show_progress: bool,
) -> anyhow::Result<Summary> {
    let experiments = read_experiments(mlruns)?;
    let run_count: usize = experiments.iter().map(|folder| folder.runs.len()).sum();
    let progress = if show_progress {
        ProgressBar::new(u64::try_from(run_count).unwrap_or(u64::MAX))
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs ({elapsed}, eta {eta}) {msg}")
    {
        progress.set_style(style);
    }
    let mut summary = Summary::default();
    for folder in &experiments {
        let experiment = &folder.experiment;
        progress.set_message(format!("experiment {}", experiment.experiment_id));
        let outcome = match store {
            Some(store) => store.import_experiment(experiment).await.with_context(|| {
                format!(
                    "cannot import experiment {} ('{}')",
                    experiment.experiment_id, experiment.name
                )
            })?,
            None => ExperimentImport::Created,
        };
        match outcome {
            ExperimentImport::Created => {
                summary.experiments_imported += 1;
                summary.experiment_tags += experiment.tags.len();
            }
            ExperimentImport::Reused => summary.experiments_reused += 1,
        }
        // The uuid of each dataset, by the name of its folder.
        let mut dataset_uuids: HashMap<&str, String> = HashMap::new();
        for (folder_name, dataset) in &folder.datasets {
            let outcome = match store {
                Some(store) => store.import_dataset(dataset).await.with_context(|| {
                    format!(
                        "cannot import dataset '{}' of experiment {}",
                        dataset.name, experiment.experiment_id
                    )
                })?,
                None => DatasetImport::Created,
            };
            let dataset_uuid = match outcome {
                DatasetImport::Created => {
                    summary.datasets_imported += 1;
                    dataset.dataset_uuid.clone()
                }
                DatasetImport::Reused { dataset_uuid } => {
                    summary.datasets_reused += 1;
                    dataset_uuid
                }
            };
            dataset_uuids.insert(folder_name.as_str(), dataset_uuid);
        }
        for run_directory in &folder.runs {
            let Some(run_folder) =
                read_run(run_directory, experiment.experiment_id, &dataset_uuids)?
            else {
                progress.suspend(|| {
                    eprintln!(
                        "warning: skipping {}: its meta.yaml names no run id",
                        run_directory.display()
                    );
                });
                progress.inc(1);
                continue;
            };
            let metrics: Vec<LegacyMetric<'_>> = run_folder
                .metrics
                .iter()
                .flat_map(|(key, lines)| {
                    lines.iter().map(|&(timestamp, value, step)| LegacyMetric {
                        key: key.as_str(),
                        value,
                        timestamp,
                        step,
                    })
                })
                .collect();
            let outcome = match store {
                Some(store) => store
                    .import_run(&run_folder.run, &metrics)
                    .await
                    .with_context(|| format!("cannot import run {}", run_folder.run.run_uuid))?,
                None => RunImport::Created {
                    inputs: run_folder.run.inputs.len(),
                    params: run_folder.run.params.len(),
                    tags: run_folder.run.tags.len(),
                    metrics: metrics.len(),
                    latest_metrics: run_folder.metrics.len(),
                },
            };
            match outcome {
                RunImport::Created {
                    inputs,
                    params,
                    tags,
                    metrics,
                    latest_metrics,
                } => {
                    summary.runs_imported += 1;
                    summary.params += params;
                    summary.tags += tags;
                    summary.metrics += metrics;
                    summary.latest_metrics += latest_metrics;
                    summary.inputs += inputs;
                }
                RunImport::Skipped => summary.runs_skipped += 1,
            }
            progress.inc(1);
        }
    }
    progress.finish_and_clear();
    Ok(summary)
}

/// `dir/mlruns` when it exists, else `dir` when it holds experiment folders, as MLflow resolves it.
fn resolve_mlruns(directory: &Path) -> anyhow::Result<PathBuf> {
    let nested = directory.join("mlruns");
    if nested.is_dir() {
        return Ok(nested);
    }
    let entries = std::fs::read_dir(directory).with_context(|| {
        format!(
            "cannot read the FileStore directory {}",
            directory.display()
        )
    })?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", directory.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && (is_experiment_id(&name) || name == ".trash") {
            return Ok(directory.to_owned());
        }
    }
    bail!(
        "cannot find an mlruns directory in {}: it holds no experiment folder",
        directory.display()
    )
}

fn is_experiment_id(name: &str) -> bool {
    !name.is_empty() && name.parse::<i64>().is_ok()
}

/// The sorted names of the sub-folders of `directory` (none when it does not exist).
fn sub_folders(directory: &Path) -> anyhow::Result<Vec<String>> {
    if !directory.is_dir() {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(directory)
        .with_context(|| format!("cannot read {}", directory.display()))?
    {
        let entry = entry.with_context(|| format!("cannot read {}", directory.display()))?;
        if entry.path().is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Every experiment folder, active ones then those of `.trash/`, with their run folders.
fn read_experiments(mlruns: &Path) -> anyhow::Result<Vec<ExperimentFolder>> {
    let mut folders = Vec::new();
    for parent in [mlruns.to_owned(), mlruns.join(".trash")] {
        for name in sub_folders(&parent)? {
            let Ok(experiment_id) = name.parse::<i64>() else {
                continue;
            };
            let directory = parent.join(&name);
            let Some(meta) = read_meta(&directory)? else {
                eprintln!("warning: skipping {}: no meta.yaml", directory.display());
                continue;
            };
            let experiment = LegacyExperiment {
                experiment_id,
                name: text(&meta, "name").unwrap_or_else(|| format!("experiment_{experiment_id}")),
                artifact_location: text(&meta, "artifact_location"),
                lifecycle_stage: text(&meta, "lifecycle_stage")
                    .unwrap_or_else(|| "active".to_owned()),
                creation_time: integer(&meta, "creation_time"),
                last_update_time: integer(&meta, "last_update_time"),
                tags: read_key_files(&directory.join("tags"))?,
            };
            let mut runs = Vec::new();
            for run_name in sub_folders(&directory)? {
                if RESERVED_FOLDERS.contains(&run_name.as_str()) {
                    continue;
                }
                let run_directory = directory.join(&run_name);
                if run_directory.join("meta.yaml").is_file() {
                    runs.push(run_directory);
                }
            }
            let datasets = read_datasets(&directory.join("datasets"), experiment_id)?;
            folders.push(ExperimentFolder {
                experiment,
                datasets,
                runs,
            });
        }
    }
    Ok(folders)
}

/// `directory/meta.yaml` as a YAML mapping; `None` when the file is missing.
fn read_meta(directory: &Path) -> anyhow::Result<Option<Value>> {
    let path = directory.join("meta.yaml");
    if !path.is_file() {
        return Ok(None);
    }
    let content = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value = serde_yaml::from_str(&content)
        .with_context(|| format!("{} is not valid YAML", path.display()))?;
    Ok(Some(value))
}

/// A string field (a number is written out as text, as Python's YAML loader would keep it).
fn text(meta: &Value, field: &str) -> Option<String> {
    match meta.get(field)? {
        Value::String(value) => Some(value.clone()),
        Value::Number(value) => Some(value.to_string()),
        Value::Bool(value) => Some(value.to_string()),
        _ => None,
    }
}

fn integer(meta: &Value, field: &str) -> Option<i64> {
    match meta.get(field)? {
        Value::Number(value) => value.as_i64(),
        Value::String(value) => value.parse().ok(),
        _ => None,
    }
}

/// MLflow's run status names, by the numbers the FileStore writes.
fn status_name(status: &Value) -> String {
    match status {
        Value::Number(number) => match number.as_i64() {
            Some(2) => "SCHEDULED",
            Some(3) => "FINISHED",
            Some(4) => "FAILED",
            Some(5) => "KILLED",
            _ => "RUNNING",
        }
        .to_owned(),
        Value::String(name) => name.clone(),
        _ => "RUNNING".to_owned(),
    }
}

/// The datasets of an experiment with the names of their folders; each gets a new uuid, as MLflow gives
/// them (the FileStore keeps none).
fn read_datasets(
    directory: &Path,
    experiment_id: i64,
) -> anyhow::Result<Vec<(String, LegacyDataset)>> {
    let mut datasets = Vec::new();
    for folder_name in sub_folders(directory)? {
        let Some(meta) = read_meta(&directory.join(&folder_name))? else {
            continue;
        };
        let dataset = LegacyDataset {
            dataset_uuid: text(&meta, "dataset_uuid")
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            experiment_id,
            name: text(&meta, "name").unwrap_or_default(),
            digest: text(&meta, "digest").unwrap_or_default(),
            source_type: text(&meta, "source_type").unwrap_or_default(),
            source: text(&meta, "source").unwrap_or_default(),
            schema: text(&meta, "schema"),
            profile: text(&meta, "profile"),
        };
        datasets.push((folder_name, dataset));
    }
    Ok(datasets)
}

/// The inputs of a run: dataset inputs link to the dataset's uuid (an unknown dataset is left out, as
/// MLflow leaves it out); model inputs are turned around into the database's `RUN_INPUT` rows.
fn read_inputs(
    directory: &Path,
    run_uuid: &str,
    dataset_uuids: &HashMap<&str, String>,
) -> anyhow::Result<Vec<LegacyInput>> {
    let mut inputs = Vec::new();
    for folder_name in sub_folders(directory)? {
        let Some(meta) = read_meta(&directory.join(&folder_name))? else {
            continue;
        };
        let source_id = text(&meta, "source_id").unwrap_or_default();
        let (source_type, source_id, destination_type, destination_id) =
            match text(&meta, "source_type").as_deref().unwrap_or("DATASET") {
                "DATASET" => match dataset_uuids.get(source_id.as_str()) {
                    Some(dataset_uuid) => {
                        ("DATASET", dataset_uuid.clone(), "RUN", run_uuid.to_owned())
                    }
                    None => continue,
                },
                "MODEL" => ("RUN_INPUT", run_uuid.to_owned(), "MODEL_INPUT", source_id),
                _ => continue,
            };
        let tags = match meta.get("tags") {
            Some(Value::Mapping(mapping)) => mapping
                .iter()
                .filter_map(|(name, value)| {
                    let name = name.as_str()?.to_owned();
                    let value = match value {
                        Value::String(value) => value.clone(),
                        Value::Number(value) => value.to_string(),
                        Value::Bool(value) => value.to_string(),
                        _ => return None,
                    };
                    Some((name, value))
                })
                .collect(),
            _ => Vec::new(),
        };
        inputs.push(LegacyInput {
            input_uuid: uuid::Uuid::new_v4().to_string(),
            source_type: source_type.to_owned(),
            source_id,
            destination_type: destination_type.to_owned(),
            destination_id,
            tags,
        });
    }
    Ok(inputs)
}

/// Reads a run folder; `None` when its meta.yaml names no run id.
fn read_run(
    directory: &Path,
    experiment_id: i64,
    dataset_uuids: &HashMap<&str, String>,
) -> anyhow::Result<Option<RunFolder>> {
    let Some(meta) = read_meta(directory)? else {
        return Ok(None);
    };
    let Some(run_uuid) = text(&meta, "run_uuid")
        .filter(|id| !id.is_empty())
        .or_else(|| text(&meta, "run_id"))
        .filter(|id| !id.is_empty())
    else {
        return Ok(None);
    };
    // MLflow keeps a textual source type and writes LOCAL for the FileStore's numbers.
    let source_type = match meta.get("source_type") {
        Some(Value::String(name)) => name.clone(),
        _ => "LOCAL".to_owned(),
    };
    let run = LegacyRun {
        run_uuid,
        experiment_id,
        name: text(&meta, "run_name")
            .filter(|name| !name.is_empty())
            .or_else(|| text(&meta, "name")),
        source_type,
        source_name: text(&meta, "source_name").unwrap_or_default(),
        entry_point_name: text(&meta, "entry_point_name").unwrap_or_default(),
        user_id: text(&meta, "user_id"),
        status: meta
            .get("status")
            .map_or_else(|| "RUNNING".to_owned(), status_name),
        start_time: integer(&meta, "start_time"),
        end_time: integer(&meta, "end_time"),
        deleted_time: integer(&meta, "deleted_time"),
        source_version: text(&meta, "source_version").unwrap_or_default(),
        lifecycle_stage: text(&meta, "lifecycle_stage").unwrap_or_else(|| "active".to_owned()),
        artifact_uri: text(&meta, "artifact_uri"),
        params: read_key_files(&directory.join("params"))?,
        tags: read_key_files(&directory.join("tags"))?,
        inputs: Vec::new(),
    };
    let run = LegacyRun {
        inputs: read_inputs(&directory.join("inputs"), &run.run_uuid, dataset_uuids)?,
        ..run
    };
    let mut metrics = Vec::new();
    for (key, content) in read_key_files(&directory.join("metrics"))? {
        let mut lines = Vec::new();
        for line in content.lines().filter(|line| !line.trim().is_empty()) {
            let parsed = parse_metric_line(line).with_context(|| {
                format!(
                    "malformed line {line:?} in {}",
                    directory.join("metrics").join(&key).display()
                )
            })?;
            lines.push(parsed);
        }
        metrics.push((key, lines));
    }
    Ok(Some(RunFolder { run, metrics }))
}

/// `timestamp value [step]` (a missing step is 0); the value may be `nan`, `inf` or `-inf`.
fn parse_metric_line(line: &str) -> anyhow::Result<MetricLine> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (timestamp, value, step) = match fields.as_slice() {
        [timestamp, value] => (timestamp, value, "0"),
        [timestamp, value, step, ..] => (timestamp, value, *step),
        _ => bail!("expected `timestamp value [step]`"),
    };
    Ok((
        timestamp
            .parse()
            .context("the timestamp is not an integer")?,
        value.parse().context("the value is not a number")?,
        step.parse().context("the step is not an integer")?,
    ))
}

/// The files under `directory` (recursively) as (key, content): the key is the path relative to
/// `directory` with `/` separators, as MLflow names nested keys. Sorted by key.
fn read_key_files(directory: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut files = BTreeMap::new();
    if directory.is_dir() {
        collect_key_files(directory, "", &mut files)?;
    }
    Ok(files.into_iter().collect())
}

fn collect_key_files(
    directory: &Path,
    prefix: &str,
    files: &mut BTreeMap<String, String>,
) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(directory)
        .with_context(|| format!("cannot read {}", directory.display()))?
    {
        let entry = entry.with_context(|| format!("cannot read {}", directory.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        if path.is_dir() {
            collect_key_files(&path, &key, files)?;
        } else if path.is_file() {
            let content = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            files.insert(key, content);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines() {
        let check = |line: &str, expected: Option<(i64, f64, i64)>| {
            let parsed = parse_metric_line(line).ok();
            match (parsed, expected) {
                (Some((timestamp, value, step)), Some((t, v, s))) => {
                    assert_eq!((timestamp, step), (t, s), "{line}");
                    assert!(value == v || (value.is_nan() && v.is_nan()), "{line}");
                }
                (None, None) => {}
                (parsed, expected) => panic!("{line}: {parsed:?} != {expected:?}"),
            }
        };
        check("1700 0.5 3", Some((1700, 0.5, 3)));
        check("1700 0.5", Some((1700, 0.5, 0)));
        check("1700 nan 2", Some((1700, f64::NAN, 2)));
        check("1700 inf 0", Some((1700, f64::INFINITY, 0)));
        check("1700 -inf 0", Some((1700, f64::NEG_INFINITY, 0)));
        check("1700", None);
        check("x 1 2", None);
    }

    #[test]
    fn statuses_by_number() {
        for (number, name) in [
            (1, "RUNNING"),
            (2, "SCHEDULED"),
            (3, "FINISHED"),
            (4, "FAILED"),
            (5, "KILLED"),
        ] {
            assert_eq!(status_name(&Value::from(number)), name);
        }
        assert_eq!(status_name(&Value::from("FINISHED")), "FINISHED");
    }
}
