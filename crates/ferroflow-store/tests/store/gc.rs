//! The `ferroflow gc` store suite: deleted runs and experiments found by age and removed for good with
//! every attached row, and nothing else touched.

use crate::backends::{Backend, TestDatabase};
use ferroflow_core::logged_models::{LoggedModelStore, NewLoggedModel};
use ferroflow_core::model::{Batch, LifecycleStage, NewExperiment, NewRun};
use ferroflow_core::store::TrackingStore;
use ferroflow_core::traces::{NewTrace, TraceAnalytics, TraceStore};
use ferroflow_proto::logged_models::{LoggedModelParameter, LoggedModelTag};
use ferroflow_proto::tracking::{ExperimentTag, Metric, Param, RunTag};
use ferroflow_store::SqlStore;

struct Fixture {
    store: SqlStore,
    database: TestDatabase,
}

async fn fixture(backend: Backend) -> Option<Fixture> {
    let database = TestDatabase::create(backend).await?;
    let store = database.open().await.unwrap();
    Some(Fixture { store, database })
}

async fn experiment(store: &SqlStore, name: &str) -> String {
    store
        .create_experiment(NewExperiment {
            name: name.into(),
            artifact_location: None,
            default_artifact_root: "mlflow-artifacts:".into(),
            tags: vec![ExperimentTag {
                key: "team".into(),
                value: name.into(),
            }],
            creation_time: 1,
        })
        .await
        .unwrap()
}

fn run_id(number: u8) -> String {
    format!("{number:032x}")
}

/// A run with one metric, param and tag, and one dataset input with a tag (written as MLflow writes
/// them).
async fn run(fixture: &Fixture, experiment_id: &str, number: u8) -> String {
    let id = run_id(number);
    fixture
        .store
        .create_run(NewRun {
            run_id: id.clone(),
            experiment_id: experiment_id.into(),
            run_name: format!("run-{number}"),
            user_id: "tester".into(),
            start_time: 1,
            artifact_uri: format!("mlflow-artifacts:/{experiment_id}/{id}/artifacts"),
            tags: Vec::new(),
        })
        .await
        .unwrap();
    fixture
        .store
        .log_batch(
            &id,
            Batch {
                metrics: vec![Metric {
                    key: "loss".into(),
                    value: 0.5,
                    timestamp: 1,
                    step: 0,
                    dataset_name: None,
                    dataset_digest: None,
                    model_id: None,
                    run_id: None,
                }],
                params: vec![Param {
                    key: "lr".into(),
                    value: "0.1".into(),
                }],
                tags: vec![RunTag {
                    key: "note".into(),
                    value: "x".into(),
                }],
            },
        )
        .await
        .unwrap();
    fixture
        .database
        .execute(&format!(
            "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) \
             VALUES ('input-{number}', 'DATASET', 'dataset-{number}', 'RUN', '{id}', 0); \
             INSERT INTO input_tags (input_uuid, name, value) VALUES ('input-{number}', 'mlflow.data.context', 'train')"
        ))
        .await;
    id
}

async fn count(fixture: &Fixture, table: &str, condition: &str) -> i64 {
    fixture
        .database
        .fetch_text(&format!(
            "SELECT CAST(COUNT(*) AS CHAR(20)) FROM {table} WHERE {condition}"
        ))
        .await
        .trim()
        .parse()
        .unwrap()
}

/// The rows of the run in each of its tables.
async fn run_rows(fixture: &Fixture, id: &str) -> Vec<i64> {
    let mut rows = Vec::new();
    for (table, column) in [
        ("runs", "run_uuid"),
        ("metrics", "run_uuid"),
        ("latest_metrics", "run_uuid"),
        ("params", "run_uuid"),
        ("tags", "run_uuid"),
        ("inputs", "destination_id"),
    ] {
        rows.push(count(fixture, table, &format!("{column} = '{id}'")).await);
    }
    rows.push(
        count(
            fixture,
            "input_tags",
            &format!("input_uuid = 'input-{}'", id.trim_start_matches('0')),
        )
        .await,
    );
    rows
}

fn trace(experiment_id: i64, trace_id: &str, request_time: i64) -> NewTrace {
    NewTrace {
        trace_id: trace_id.into(),
        experiment_id,
        request_time,
        execution_duration: Some(5),
        state: "OK".into(),
        client_request_id: None,
        request_preview: None,
        response_preview: None,
        trace_name: Some("t".into()),
        analytics: TraceAnalytics::default(),
        tags: vec![("team".into(), "x".into())],
        metadata: vec![("mlflow.user".into(), "tester".into())],
    }
}

async fn deleted_runs_go_with_their_rows(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let experiment_id = experiment(&fixture.store, "runs").await;
    let kept = run(&fixture, &experiment_id, 1).await;
    let old = run(&fixture, &experiment_id, 2).await;
    let recent = run(&fixture, &experiment_id, 3).await;
    fixture
        .store
        .set_run_lifecycle(&old, LifecycleStage::Deleted, 1_000)
        .await
        .unwrap();
    fixture
        .store
        .set_run_lifecycle(&recent, LifecycleStage::Deleted, 5_000)
        .await
        .unwrap();

    let ids = |runs: Vec<ferroflow_store::GcRun>| {
        runs.into_iter()
            .map(|run| run.run_id)
            .collect::<Vec<String>>()
    };
    assert_eq!(
        ids(fixture.store.gc_deleted_runs(Some(2_000)).await.unwrap()),
        vec![old.clone()]
    );
    assert_eq!(
        ids(fixture.store.gc_deleted_runs(None).await.unwrap()),
        vec![old.clone(), recent.clone()]
    );
    let found = fixture.store.gc_run(&recent).await.unwrap().unwrap();
    assert_eq!(found.lifecycle_stage, "deleted");
    assert_eq!(found.deleted_time, Some(5_000));
    assert_eq!(
        found.artifact_uri.as_deref(),
        Some(format!("mlflow-artifacts:/{experiment_id}/{recent}/artifacts").as_str())
    );

    // An active run is refused and left whole.
    assert!(!fixture.store.hard_delete_run(&kept).await.unwrap());
    assert_eq!(run_rows(&fixture, &kept).await, vec![1; 7]);

    assert!(fixture.store.hard_delete_run(&old).await.unwrap());
    assert_eq!(run_rows(&fixture, &old).await, vec![0; 7]);
    assert!(fixture.store.gc_run(&old).await.unwrap().is_none());
    assert!(fixture.store.get_run(&old).await.unwrap().is_none());
    assert!(!fixture.store.hard_delete_run(&old).await.unwrap());
    // The others are untouched.
    assert_eq!(run_rows(&fixture, &kept).await, vec![1; 7]);
    assert_eq!(run_rows(&fixture, &recent).await, vec![1; 7]);
    assert_eq!(
        fixture
            .store
            .get_run(&kept)
            .await
            .unwrap()
            .unwrap()
            .data
            .params
            .len(),
        1
    );
}

async fn deleted_experiments_go_with_runs_tags_and_traces(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let kept = experiment(&fixture.store, "kept").await;
    let gone = experiment(&fixture.store, "gone").await;
    let kept_run = run(&fixture, &kept, 1).await;
    let gone_run = run(&fixture, &gone, 2).await;
    let kept_id: i64 = kept.parse().unwrap();
    let gone_id: i64 = gone.parse().unwrap();
    fixture
        .store
        .start_trace(trace(kept_id, "tr-kept", 100))
        .await
        .unwrap();
    fixture
        .store
        .start_trace(trace(gone_id, "tr-gone", 100))
        .await
        .unwrap();

    // Still active: refused, nothing touched.
    assert!(!fixture.store.hard_delete_experiment(gone_id).await.unwrap());
    assert!(fixture
        .store
        .gc_deleted_experiments(None)
        .await
        .unwrap()
        .is_empty());
    fixture
        .store
        .set_experiment_lifecycle(&gone, LifecycleStage::Deleted, 7_000)
        .await
        .unwrap();
    let experiment = fixture.store.gc_experiment(gone_id).await.unwrap().unwrap();
    assert_eq!(experiment.lifecycle_stage, "deleted");
    assert_eq!(experiment.last_update_time, Some(7_000));
    assert_eq!(
        fixture.store.gc_deleted_experiments(None).await.unwrap(),
        vec![gone_id]
    );
    assert_eq!(
        fixture
            .store
            .gc_deleted_experiments(Some(8_000))
            .await
            .unwrap(),
        vec![gone_id]
    );
    assert!(fixture
        .store
        .gc_deleted_experiments(Some(7_000))
        .await
        .unwrap()
        .is_empty());
    let runs = fixture.store.gc_runs_of_experiment(gone_id).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].run_id, gone_run);
    assert_eq!(runs[0].lifecycle_stage, "deleted");
    assert_eq!(
        fixture
            .store
            .gc_experiments_with_traces(100, None)
            .await
            .unwrap(),
        vec![kept_id.min(gone_id), kept_id.max(gone_id)]
    );
    assert_eq!(
        fixture
            .store
            .gc_experiments_with_traces(100, Some(&[gone_id]))
            .await
            .unwrap(),
        vec![gone_id]
    );
    assert!(fixture
        .store
        .gc_experiments_with_traces(99, None)
        .await
        .unwrap()
        .is_empty());

    // The run is still there: the experiment takes it along.
    assert!(fixture.store.hard_delete_experiment(gone_id).await.unwrap());
    assert!(fixture
        .store
        .gc_experiment(gone_id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(run_rows(&fixture, &gone_run).await, vec![0; 7]);
    assert_eq!(
        count(
            &fixture,
            "experiment_tags",
            &format!("experiment_id = {gone}")
        )
        .await,
        0
    );
    for (table, column) in [
        ("trace_info", "request_id"),
        ("trace_tags", "request_id"),
        ("trace_request_metadata", "request_id"),
    ] {
        assert_eq!(
            count(&fixture, table, &format!("{column} = 'tr-gone'")).await,
            0,
            "{table}"
        );
        assert_eq!(
            count(&fixture, table, &format!("{column} = 'tr-kept'")).await,
            1,
            "{table}"
        );
    }
    // The other experiment is whole.
    assert_eq!(run_rows(&fixture, &kept_run).await, vec![1; 7]);
    assert_eq!(
        count(
            &fixture,
            "experiment_tags",
            &format!("experiment_id = {kept}")
        )
        .await,
        1
    );
    assert!(fixture.store.get_experiment(&kept).await.unwrap().is_some());
    assert!(!fixture.store.hard_delete_experiment(gone_id).await.unwrap());
}

fn logged_model(experiment_id: &str, model_id: &str) -> NewLoggedModel {
    NewLoggedModel {
        model_id: model_id.into(),
        experiment_id: experiment_id.into(),
        name: model_id.into(),
        artifact_location: format!("mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts"),
        creation_timestamp_ms: 1,
        model_type: String::new(),
        source_run_id: String::new(),
        params: vec![LoggedModelParameter {
            key: "depth".into(),
            value: "3".into(),
        }],
        tags: vec![LoggedModelTag {
            key: "team".into(),
            value: "x".into(),
        }],
    }
}

async fn model_rows(fixture: &Fixture, model_id: &str) -> Vec<i64> {
    let mut rows = Vec::new();
    for table in ["logged_models", "logged_model_params", "logged_model_tags"] {
        rows.push(count(fixture, table, &format!("model_id = '{model_id}'")).await);
    }
    rows
}

async fn deleted_logged_models_go_with_their_rows(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let experiment_id = experiment(&fixture.store, "models").await;
    for model_id in ["m-kept", "m-old", "m-recent"] {
        fixture
            .store
            .create_logged_model(logged_model(&experiment_id, model_id))
            .await
            .unwrap();
    }
    assert!(fixture
        .store
        .delete_logged_model("m-old", 1_000)
        .await
        .unwrap());
    assert!(fixture
        .store
        .delete_logged_model("m-recent", 5_000)
        .await
        .unwrap());
    let ids = |models: Vec<ferroflow_store::GcLoggedModel>| {
        models
            .into_iter()
            .map(|model| model.model_id)
            .collect::<Vec<String>>()
    };
    assert_eq!(
        ids(fixture
            .store
            .gc_deleted_logged_models(Some(2_000))
            .await
            .unwrap()),
        vec!["m-old".to_owned()]
    );
    assert_eq!(
        ids(fixture.store.gc_deleted_logged_models(None).await.unwrap()),
        vec!["m-old".to_owned(), "m-recent".to_owned()]
    );
    let found = fixture
        .store
        .gc_logged_model("m-recent")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.lifecycle_stage.as_deref(), Some("deleted"));
    assert_eq!(found.last_updated_timestamp_ms, 5_000);
    assert_eq!(
        found.artifact_location,
        format!("mlflow-artifacts:/{experiment_id}/models/m-recent/artifacts")
    );

    assert!(!fixture
        .store
        .hard_delete_logged_model("m-kept")
        .await
        .unwrap());
    assert!(fixture
        .store
        .hard_delete_logged_model("m-old")
        .await
        .unwrap());
    assert_eq!(model_rows(&fixture, "m-old").await, vec![0; 3]);
    assert!(fixture
        .store
        .gc_logged_model("m-old")
        .await
        .unwrap()
        .is_none());
    assert_eq!(model_rows(&fixture, "m-kept").await, vec![1; 3]);
    assert_eq!(model_rows(&fixture, "m-recent").await, vec![1; 3]);
    assert!(!fixture
        .store
        .hard_delete_logged_model("m-old")
        .await
        .unwrap());
}

on_every_backend!(
    deleted_runs_go_with_their_rows,
    deleted_experiments_go_with_runs_tags_and_traces,
    deleted_logged_models_go_with_their_rows,
);
