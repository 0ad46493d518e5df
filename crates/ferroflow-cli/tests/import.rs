//! `ferroflow import` and `ferroflow db` run as a user runs them, on a FileStore written by MLflow's own
//! client (`tests/fixtures/mlruns`, made by `tests/fixtures/generate_mlruns.py`), checked through the
//! store API.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use ferroflow_core::ids::HistoryCursor;
use ferroflow_core::store::TrackingStore;
use ferroflow_store::SqlStore;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ALPHA: &str = "863957429552745027";
const BETA: &str = "214747669404444227";
const GONE: &str = "762465361854535406";
const FIRST_RUN: &str = "fdcb2afe6fd54a6c8274bad5c847f887";
const DELETED_RUN: &str = "980c613aa05c4c0db69d3bbc4a751d73";
const TRASHED_RUN: &str = "893f29b1f0c14ff7a9fdd9cb6892fe7a";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mlruns")
}

fn ferroflow(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferroflow"))
        .args(arguments)
        .env_remove("MLFLOW_BACKEND_STORE_URI")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn import(uri: &str, extra: &[&str]) -> Output {
    let mlruns = fixture();
    let mut arguments = vec![
        "import",
        "--backend-store-uri",
        uri,
        "--mlruns",
        mlruns.to_str().unwrap(),
    ];
    arguments.extend_from_slice(extra);
    ferroflow(&arguments)
}

fn sqlite_uri(path: &Path) -> String {
    format!("sqlite:///{}", path.display())
}

#[tokio::test]
async fn import_twice_then_read_through_the_store() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("mlflow.db");
    let uri = sqlite_uri(&path);

    let first = import(&uri, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let summary = stdout(&first);
    assert!(
        summary.contains("experiments: 3 imported, 1 already there"),
        "{summary}"
    );
    assert!(summary.contains("experiment tags: 1 imported"), "{summary}");
    assert!(
        summary.contains("datasets: 1 imported, 0 already there"),
        "{summary}"
    );
    assert!(
        summary.contains("runs: 4 imported, 0 already there"),
        "{summary}"
    );
    assert!(
        summary.contains("params: 3, tags: 15, metrics: 8, latest metrics: 5, inputs: 1 imported"),
        "{summary}"
    );

    let again = import(&uri, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    let summary = stdout(&again);
    assert!(
        summary.contains("experiments: 0 imported, 4 already there"),
        "{summary}"
    );
    assert!(
        summary.contains("runs: 0 imported, 4 already there"),
        "{summary}"
    );
    assert!(
        summary.contains("params: 0, tags: 0, metrics: 0, latest metrics: 0, inputs: 0 imported"),
        "{summary}"
    );
    assert!(
        summary.contains("datasets: 0 imported, 1 already there"),
        "{summary}"
    );

    let store = SqlStore::open_sqlite(&path, "mlflow-artifacts:/")
        .await
        .unwrap();
    let alpha = store.get_experiment(ALPHA).await.unwrap().unwrap();
    assert_eq!(alpha.name, "alpha");
    assert_eq!(alpha.lifecycle_stage, "active");
    assert!(alpha
        .artifact_location
        .ends_with(&format!("/mlruns/{ALPHA}")));
    assert_eq!(
        alpha
            .tags
            .iter()
            .map(|tag| (tag.key.as_str(), tag.value.as_str()))
            .collect::<Vec<_>>(),
        [("team", "vision")]
    );
    assert_eq!(
        store.get_experiment(BETA).await.unwrap().unwrap().name,
        "beta"
    );
    let gone = store.get_experiment(GONE).await.unwrap().unwrap();
    assert_eq!(
        (gone.name.as_str(), gone.lifecycle_stage.as_str()),
        ("gone", "deleted")
    );
    assert_eq!(
        store.get_experiment("0").await.unwrap().unwrap().name,
        "Default"
    );

    let run = store.get_run(FIRST_RUN).await.unwrap().unwrap();
    assert_eq!(run.info.run_name, "first");
    assert_eq!(run.info.status, "FINISHED");
    assert_eq!(run.info.experiment_id, ALPHA);
    assert_eq!(run.info.lifecycle_stage, "active");
    assert_eq!(run.info.user_id, "root");
    assert!(run.info.start_time.is_some() && run.info.end_time.is_some());
    let mut params: Vec<(&str, &str)> = run
        .data
        .params
        .iter()
        .map(|param| (param.key.as_str(), param.value.as_str()))
        .collect();
    params.sort_unstable();
    assert_eq!(params, [("layers", "3"), ("lr", "0.01")]);
    assert!(run
        .data
        .tags
        .iter()
        .any(|tag| tag.key == "stage" && tag.value == "dev"));
    // The latest loss is the NaN at step 2; the latest acc is 0.75 at step 2, after inf at step 0.
    let latest = |key: &str| {
        run.data
            .metrics
            .iter()
            .find(|metric| metric.key == key)
            .map(|metric| (metric.value, metric.step))
            .unwrap()
    };
    let (loss, loss_step) = latest("loss");
    assert!(loss.is_nan() && loss_step == 2, "{loss} at {loss_step}");
    assert_eq!(latest("acc"), (0.75, 2));
    let [input] = run.inputs.dataset_inputs.as_slice() else {
        panic!("one dataset input: {:?}", run.inputs);
    };
    assert_eq!(input.dataset.name, "train");
    assert_eq!(input.dataset.digest, "300830b9");
    assert_eq!(input.dataset.source_type, "s3");
    assert!(input.dataset.source.contains("s3://bucket/train.csv"));
    assert_eq!(
        input
            .tags
            .iter()
            .map(|tag| (tag.key.as_str(), tag.value.as_str()))
            .collect::<Vec<_>>(),
        [("mlflow.data.context", "training")]
    );

    let history = store
        .get_metric_history(FIRST_RUN, "loss", None, HistoryCursor::default())
        .await
        .unwrap()
        .items;
    let points: Vec<(i64, String)> = history
        .iter()
        .map(|metric| (metric.step, metric.value.to_string()))
        .collect();
    assert_eq!(
        points,
        [
            (0, "1".to_owned()),
            (1, "0.5".to_owned()),
            (2, "NaN".to_owned())
        ]
    );
    let acc = store
        .get_metric_history(FIRST_RUN, "acc", None, HistoryCursor::default())
        .await
        .unwrap()
        .items;
    assert_eq!(acc.len(), 2);
    assert!(acc.iter().any(|metric| metric.value >= f64::MAX), "{acc:?}");

    let deleted = store.get_run(DELETED_RUN).await.unwrap().unwrap();
    assert_eq!(deleted.info.lifecycle_stage, "deleted");
    let trashed = store.get_run(TRASHED_RUN).await.unwrap().unwrap();
    assert_eq!(trashed.info.status, "FAILED");
    assert_eq!(trashed.info.experiment_id, GONE);
    assert_eq!(trashed.data.metrics[0].step, 4);
    store.close().await;

    let check = ferroflow(&["db", "check", "--backend-store-uri", &uri]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(stdout(&check).contains("dc11669786a5"));
}

#[tokio::test]
async fn an_id_held_by_another_name_stops_the_import() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("mlflow.db");
    let uri = sqlite_uri(&path);
    assert!(import(&uri, &[]).status.success());
    let store = SqlStore::open_sqlite(&path, "mlflow-artifacts:/")
        .await
        .unwrap();
    store.rename_experiment(BETA, "renamed", 0).await.unwrap();
    store.close().await;
    let clash = import(&uri, &[]);
    assert!(!clash.status.success());
    let message = stderr(&clash);
    assert!(
        message.contains(BETA) && message.contains("'renamed'") && message.contains("'beta'"),
        "{message}"
    );
}

#[test]
fn a_dry_run_writes_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("mlflow.db");
    let output = import(&sqlite_uri(&path), &["--dry-run"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("runs: 4 imported"),
        "{}",
        stdout(&output)
    );
    assert!(!path.exists());
}

#[test]
fn db_check_and_upgrade() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("mlflow.db");
    let uri = sqlite_uri(&path);
    let check = ferroflow(&["db", "check", "--backend-store-uri", &uri]);
    assert!(!check.status.success());
    assert!(
        stderr(&check).contains("no MLflow schema; run `ferroflow db upgrade`"),
        "{}",
        stderr(&check)
    );
    assert!(!path.exists());
    let upgrade = ferroflow(&["db", "upgrade", "--backend-store-uri", &uri]);
    assert!(upgrade.status.success(), "{}", stderr(&upgrade));
    assert!(stdout(&upgrade).contains("created"), "{}", stdout(&upgrade));
    let again = ferroflow(&["db", "upgrade", "--backend-store-uri", &uri]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("nothing to do"),
        "{}",
        stdout(&again)
    );
    let check = ferroflow(&["db", "check", "--backend-store-uri", &uri]);
    assert!(check.status.success(), "{}", stderr(&check));
}
