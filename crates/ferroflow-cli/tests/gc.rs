//! `ferroflow gc` run as a user runs it, on a SQLite database and local artifact folders filled through
//! the store: what is old and deleted goes with its files, everything else stays.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use ferroflow_core::logged_models::{LoggedModelStore, NewLoggedModel};
use ferroflow_core::model::{LifecycleStage, NewExperiment, NewRun};
use ferroflow_core::store::TrackingStore;
use ferroflow_core::traces::{NewTrace, TraceAnalytics, TraceStore};
use ferroflow_store::SqlStore;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DAY_MS: i64 = 86_400_000;

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn ferroflow(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferroflow"))
        .args(arguments)
        .env_remove("MLFLOW_BACKEND_STORE_URI")
        .env_remove("MLFLOW_ARTIFACTS_DESTINATION")
        .env_remove("MLFLOW_DEFAULT_ARTIFACT_ROOT")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Setup {
    _directory: tempfile::TempDir,
    database: PathBuf,
    served: PathBuf,
    local_root: PathBuf,
    outside: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let directory = tempfile::tempdir().unwrap();
        let root = directory.path().to_path_buf();
        for folder in ["served", "mlruns", "outside"] {
            std::fs::create_dir_all(root.join(folder)).unwrap();
        }
        Self {
            database: root.join("mlflow.db"),
            served: root.join("served"),
            local_root: root.join("mlruns"),
            outside: root.join("outside"),
            _directory: directory,
        }
    }

    fn uri(&self) -> String {
        format!("sqlite:///{}", self.database.display())
    }

    async fn store(&self) -> SqlStore {
        SqlStore::open_sqlite(&self.database, "mlflow-artifacts:/")
            .await
            .unwrap()
    }

    fn gc(&self, extra: &[&str]) -> Output {
        let uri = self.uri();
        let mut arguments = vec![
            "gc",
            "--backend-store-uri",
            &uri,
            "--artifacts-destination",
            self.served.to_str().unwrap(),
            "--default-artifact-root",
            self.local_root.to_str().unwrap(),
        ];
        arguments.extend_from_slice(extra);
        ferroflow(&arguments)
    }
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

async fn experiment(store: &SqlStore, name: &str) -> String {
    store
        .create_experiment(NewExperiment {
            name: name.into(),
            artifact_location: None,
            default_artifact_root: "mlflow-artifacts:".into(),
            tags: Vec::new(),
            creation_time: 1,
        })
        .await
        .unwrap()
}

fn run_id(number: u8) -> String {
    format!("{number:032x}")
}

/// A run whose artifacts live at `artifact_uri`.
async fn run(store: &SqlStore, experiment_id: &str, number: u8, artifact_uri: String) -> String {
    let id = run_id(number);
    store
        .create_run(NewRun {
            run_id: id.clone(),
            experiment_id: experiment_id.into(),
            run_name: format!("run-{number}"),
            user_id: "tester".into(),
            start_time: 1,
            artifact_uri,
            tags: Vec::new(),
        })
        .await
        .unwrap();
    id
}

fn trace(experiment_id: &str, trace_id: &str, request_time: i64) -> NewTrace {
    NewTrace {
        trace_id: trace_id.into(),
        experiment_id: experiment_id.parse().unwrap(),
        request_time,
        execution_duration: Some(5),
        state: "OK".into(),
        client_request_id: None,
        request_preview: None,
        response_preview: None,
        trace_name: Some("t".into()),
        analytics: TraceAnalytics::default(),
        tags: Vec::new(),
        metadata: Vec::new(),
    }
}

#[tokio::test]
async fn old_deleted_runs_and_experiments_go_with_their_files() {
    let setup = Setup::new();
    let store = setup.store().await;
    let kept_experiment = experiment(&store, "kept").await;
    let gone_experiment = experiment(&store, "gone").await;
    let proxied = |experiment: &str, number: u8| {
        format!(
            "mlflow-artifacts:/{experiment}/{}/artifacts",
            run_id(number)
        )
    };
    let active = run(&store, &kept_experiment, 1, proxied(&kept_experiment, 1)).await;
    let old = run(&store, &kept_experiment, 2, proxied(&kept_experiment, 2)).await;
    let recent = run(&store, &kept_experiment, 3, proxied(&kept_experiment, 3)).await;
    let local_dir = setup.local_root.join(&kept_experiment).join(run_id(4));
    let local = run(
        &store,
        &kept_experiment,
        4,
        local_dir.join("artifacts").display().to_string(),
    )
    .await;
    let outside_dir = setup.outside.join(run_id(5));
    let outside = run(
        &store,
        &kept_experiment,
        5,
        outside_dir.display().to_string(),
    )
    .await;
    let in_gone = run(&store, &gone_experiment, 6, proxied(&gone_experiment, 6)).await;
    // A run that never logged an artifact.
    let bare = run(&store, &kept_experiment, 7, proxied(&kept_experiment, 7)).await;
    // Logged models: one deleted long ago, one active.
    let model_folder = |model_id: &str| {
        setup
            .served
            .join(&kept_experiment)
            .join("models")
            .join(model_id)
    };
    for model_id in ["m-old", "m-active"] {
        store
            .create_logged_model(NewLoggedModel {
                model_id: model_id.into(),
                experiment_id: kept_experiment.clone(),
                name: model_id.into(),
                artifact_location: format!(
                    "mlflow-artifacts:/{kept_experiment}/models/{model_id}/artifacts"
                ),
                creation_timestamp_ms: 1,
                model_type: String::new(),
                source_run_id: String::new(),
                params: Vec::new(),
                tags: Vec::new(),
            })
            .await
            .unwrap();
        write(&model_folder(model_id).join("artifacts/MLmodel"), "m");
    }
    // An active logged model of the experiment that goes: its files go with it.
    store
        .create_logged_model(NewLoggedModel {
            model_id: "m-gone".into(),
            experiment_id: gone_experiment.clone(),
            name: "m-gone".into(),
            artifact_location: format!(
                "mlflow-artifacts:/{gone_experiment}/models/m-gone/artifacts"
            ),
            creation_timestamp_ms: 1,
            model_type: String::new(),
            source_run_id: String::new(),
            params: Vec::new(),
            tags: Vec::new(),
        })
        .await
        .unwrap();
    let gone_model_folder = setup
        .served
        .join(&gone_experiment)
        .join("models")
        .join("m-gone");
    write(&gone_model_folder.join("artifacts/MLmodel"), "m");
    let served = |experiment: &str, number: u8| setup.served.join(experiment).join(run_id(number));
    for (experiment, number) in [
        (&kept_experiment, 1),
        (&kept_experiment, 2),
        (&kept_experiment, 3),
        (&gone_experiment, 6),
    ] {
        write(
            &served(experiment, number).join("artifacts/model/weights.bin"),
            "w",
        );
    }
    write(&local_dir.join("artifacts/plot.png"), "p");
    write(&outside_dir.join("keep.txt"), "k");
    // A neighbour of the run folder that is not the run's.
    write(&setup.served.join(&kept_experiment).join("notes.txt"), "n");

    let old_time = now() - 3 * DAY_MS;
    for id in [&old, &local, &outside, &bare] {
        store
            .set_run_lifecycle(id, LifecycleStage::Deleted, old_time)
            .await
            .unwrap();
    }
    store
        .set_run_lifecycle(&recent, LifecycleStage::Deleted, now())
        .await
        .unwrap();
    assert!(store
        .delete_logged_model("m-old", now() - 3 * DAY_MS)
        .await
        .unwrap());
    store
        .set_experiment_lifecycle(&gone_experiment, LifecycleStage::Deleted, old_time)
        .await
        .unwrap();
    store
        .start_trace(trace(&kept_experiment, "tr-old", old_time))
        .await
        .unwrap();
    store
        .start_trace(trace(&kept_experiment, "tr-new", now()))
        .await
        .unwrap();
    store
        .start_trace(trace(&gone_experiment, "tr-gone", now()))
        .await
        .unwrap();
    store.close().await;

    let output = setup.gc(&["--older-than", "1d", "--trace-older-than", "2d"]);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for line in [
        "runs: 5 deleted",
        "experiments: 1 deleted",
        "logged models: 1 deleted",
        "artifacts: 5 folders deleted, 1 had none, 1 left outside the artifact roots",
        "traces: 1 deleted in 1 experiments",
        "failures: 0",
    ] {
        assert!(stdout.contains(line), "{line} in {stdout}");
    }
    for id in [&old, &local, &outside, &in_gone, &bare] {
        assert!(
            stdout.contains(&format!("Run with ID {id} has been permanently deleted.")),
            "{stdout}"
        );
    }
    assert!(stdout.contains(&format!(
        "Experiment with ID {gone_experiment} has been permanently deleted."
    )));
    assert!(stdout.contains("Logged model with ID m-old has been permanently deleted."));
    assert!(!model_folder("m-old").exists());
    assert!(!gone_model_folder.exists());
    assert!(model_folder("m-active").join("artifacts/MLmodel").exists());
    assert!(
        stderr.contains(&format!("warning: run {outside}")),
        "{stderr}"
    );

    // Files: the deleted runs' folders are gone, everything else is there.
    assert!(!served(&kept_experiment, 2).exists());
    assert!(!served(&gone_experiment, 6).exists());
    assert!(!served(&kept_experiment, 7).exists());
    assert!(!local_dir.exists());
    assert!(served(&kept_experiment, 1)
        .join("artifacts/model/weights.bin")
        .exists());
    assert!(served(&kept_experiment, 3)
        .join("artifacts/model/weights.bin")
        .exists());
    assert!(outside_dir.join("keep.txt").exists());
    assert!(setup
        .served
        .join(&kept_experiment)
        .join("notes.txt")
        .exists());

    // Rows.
    let store = setup.store().await;
    for id in [&old, &local, &outside, &in_gone, &bare] {
        assert!(store.get_run(id).await.unwrap().is_none(), "{id}");
    }
    assert_eq!(
        store
            .get_run(&active)
            .await
            .unwrap()
            .unwrap()
            .info
            .lifecycle_stage,
        "active"
    );
    assert_eq!(
        store
            .get_run(&recent)
            .await
            .unwrap()
            .unwrap()
            .info
            .lifecycle_stage,
        "deleted"
    );
    assert!(store
        .get_experiment(&gone_experiment)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .get_experiment(&kept_experiment)
        .await
        .unwrap()
        .is_some());
    let traces: Vec<String> = store
        .trace_infos(&["tr-old".into(), "tr-new".into(), "tr-gone".into()])
        .await
        .unwrap()
        .into_iter()
        .map(|info| info.trace_id)
        .collect();
    assert_eq!(traces, vec!["tr-new".to_owned()]);
    assert!(store
        .get_logged_model("m-old", true)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .get_logged_model("m-gone", true)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .get_logged_model("m-active", false)
        .await
        .unwrap()
        .is_some());
    store.close().await;

    // Nothing is left to do.
    let again = setup.gc(&[]);
    let stdout = text(&again.stdout);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(stdout.contains("runs: 1 deleted"), "{stdout}");
    assert!(!served(&kept_experiment, 3).exists());
    assert!(served(&kept_experiment, 1).exists());
}

#[tokio::test]
async fn failures_are_reported_and_the_rest_goes_on() {
    let setup = Setup::new();
    let store = setup.store().await;
    let experiment_id = experiment(&store, "exp").await;
    let active = run(
        &store,
        &experiment_id,
        1,
        format!("mlflow-artifacts:/{experiment_id}/{}/artifacts", run_id(1)),
    )
    .await;
    let deleted = run(
        &store,
        &experiment_id,
        2,
        format!("mlflow-artifacts:/{experiment_id}/{}/artifacts", run_id(2)),
    )
    .await;
    store
        .set_run_lifecycle(&deleted, LifecycleStage::Deleted, 1)
        .await
        .unwrap();
    store.close().await;
    write(
        &setup
            .served
            .join(&experiment_id)
            .join(&deleted)
            .join("artifacts/a.txt"),
        "a",
    );

    let missing = "f".repeat(32);
    let run_ids = format!("{active},{missing},{deleted}");
    let output = setup.gc(&["--run-ids", &run_ids, "--experiment-ids", &experiment_id]);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "Run {active} is not in `deleted` lifecycle stage. Only runs in `deleted` lifecycle \
             stage can be deleted."
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("Run '{missing}' not found")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "Experiment {experiment_id} is not in the deleted lifecycle stage"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("3 of the deletions failed"), "{stderr}");
    assert!(stdout.contains("runs: 1 deleted"), "{stdout}");
    assert!(!setup.served.join(&experiment_id).join(&deleted).exists());

    let store = setup.store().await;
    assert!(store.get_run(&active).await.unwrap().is_some());
    assert!(store.get_run(&deleted).await.unwrap().is_none());
    assert!(store
        .get_experiment(&experiment_id)
        .await
        .unwrap()
        .is_some());
    store.close().await;

    let no_database = ferroflow(&[
        "gc",
        "--backend-store-uri",
        &format!("sqlite:///{}", setup.served.join("none.db").display()),
    ]);
    assert!(!no_database.status.success());
    assert!(
        text(&no_database.stderr).contains("no SQLite database at"),
        "{}",
        text(&no_database.stderr)
    );
    assert!(!setup.served.join("none.db").exists());

    let bad = setup.gc(&["--older-than", "3x"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("Could not parse any time information from '3x'"),
        "{}",
        text(&bad.stderr)
    );
}
