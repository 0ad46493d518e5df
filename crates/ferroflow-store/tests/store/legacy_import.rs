//! The writes of `ferroflow import`: experiments and runs of a FileStore with their own ids.

use crate::backends::{Backend, TestDatabase};
use ferroflow_core::ids::HistoryCursor;
use ferroflow_core::model::NewExperiment;
use ferroflow_core::store::TrackingStore;
use ferroflow_store::{
    DatasetImport, ExperimentImport, ImportError, LegacyDataset, LegacyExperiment, LegacyInput,
    LegacyMetric, LegacyRun, RunImport,
};

on_every_backend!(
    experiments_keep_their_ids_and_are_reused,
    runs_are_written_once_with_their_metrics,
    a_64_bit_experiment_id_fits_only_sqlite,
    datasets_are_reused_and_inputs_link_to_them,
);

fn legacy_experiment(experiment_id: i64, name: &str) -> LegacyExperiment {
    LegacyExperiment {
        experiment_id,
        name: name.to_owned(),
        artifact_location: Some(format!("file:///data/mlruns/{experiment_id}")),
        lifecycle_stage: "active".to_owned(),
        creation_time: Some(1_700_000_000_000),
        last_update_time: Some(1_700_000_000_500),
        tags: vec![("team".to_owned(), "vision".to_owned())],
    }
}

fn legacy_run(run_uuid: &str, experiment_id: i64) -> LegacyRun {
    LegacyRun {
        run_uuid: run_uuid.to_owned(),
        experiment_id,
        name: Some("first".to_owned()),
        source_type: "LOCAL".to_owned(),
        source_name: String::new(),
        entry_point_name: String::new(),
        user_id: Some("alice".to_owned()),
        status: "FINISHED".to_owned(),
        start_time: Some(1_700_000_001_000),
        end_time: Some(1_700_000_002_000),
        deleted_time: None,
        source_version: String::new(),
        lifecycle_stage: "active".to_owned(),
        artifact_uri: Some(format!(
            "file:///data/mlruns/{experiment_id}/{run_uuid}/artifacts"
        )),
        params: vec![("lr".to_owned(), "0.01".to_owned())],
        tags: vec![("mlflow.runName".to_owned(), "first".to_owned())],
        inputs: Vec::new(),
    }
}

async fn experiments_keep_their_ids_and_are_reused(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = database.open().await.unwrap();
    let experiment = legacy_experiment(41, "alpha");
    assert_eq!(
        store.import_experiment(&experiment).await.unwrap(),
        ExperimentImport::Created
    );
    assert_eq!(
        store.import_experiment(&experiment).await.unwrap(),
        ExperimentImport::Reused
    );
    let stored = store.get_experiment("41").await.unwrap().unwrap();
    assert_eq!(stored.name, "alpha");
    assert_eq!(stored.artifact_location, "file:///data/mlruns/41");
    assert_eq!(stored.creation_time, Some(1_700_000_000_000));
    assert_eq!(stored.last_update_time, Some(1_700_000_000_500));
    assert_eq!(stored.tags.len(), 1);
    // The Default experiment of the FileStore is the database's own.
    assert_eq!(
        store
            .import_experiment(&legacy_experiment(0, "Default"))
            .await
            .unwrap(),
        ExperimentImport::Reused
    );
    let clash = store
        .import_experiment(&legacy_experiment(41, "beta"))
        .await
        .unwrap_err();
    assert!(
        matches!(&clash, ImportError::ExperimentIdClash { existing, imported, .. }
            if existing == "alpha" && imported == "beta"),
        "{clash}"
    );
    let taken = store
        .import_experiment(&legacy_experiment(42, "alpha"))
        .await
        .unwrap_err();
    assert!(
        matches!(taken, ImportError::ExperimentNameTaken { .. }),
        "{taken}"
    );
    // New experiments are numbered past the imported ids.
    let created = store
        .create_experiment(NewExperiment {
            name: "new".to_owned(),
            artifact_location: None,
            default_artifact_root: "mlflow-artifacts:/".to_owned(),
            tags: Vec::new(),
            creation_time: 1,
        })
        .await
        .unwrap();
    assert!(created.parse::<i64>().unwrap() > 41, "{created}");
}

async fn runs_are_written_once_with_their_metrics(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = database.open().await.unwrap();
    store
        .import_experiment(&legacy_experiment(7, "alpha"))
        .await
        .unwrap();
    let run = legacy_run("0123456789abcdef0123456789abcdef", 7);
    let metrics = [
        LegacyMetric {
            key: "loss",
            value: 1.0,
            timestamp: 10,
            step: 0,
        },
        LegacyMetric {
            key: "loss",
            value: f64::NAN,
            timestamp: 12,
            step: 2,
        },
        LegacyMetric {
            key: "loss",
            value: 0.5,
            timestamp: 11,
            step: 1,
        },
        // A repeated line is written once.
        LegacyMetric {
            key: "loss",
            value: 0.5,
            timestamp: 11,
            step: 1,
        },
        LegacyMetric {
            key: "acc",
            value: f64::INFINITY,
            timestamp: 10,
            step: 0,
        },
    ];
    assert_eq!(
        store.import_run(&run, &metrics).await.unwrap(),
        RunImport::Created {
            inputs: 0,
            params: 1,
            tags: 1,
            metrics: 4,
            latest_metrics: 2
        }
    );
    assert_eq!(
        store.import_run(&run, &metrics).await.unwrap(),
        RunImport::Skipped
    );
    let stored = store.get_run(&run.run_uuid).await.unwrap().unwrap();
    assert_eq!(stored.info.run_name, "first");
    assert_eq!(stored.info.status, "FINISHED");
    assert_eq!(stored.info.user_id, "alice");
    assert_eq!(stored.info.experiment_id, "7");
    assert_eq!(stored.info.start_time, Some(1_700_000_001_000));
    assert_eq!(stored.data.params.len(), 1);
    let loss = stored
        .data
        .metrics
        .iter()
        .find(|metric| metric.key == "loss")
        .unwrap();
    assert!(loss.value.is_nan() && loss.step == 2, "{loss:?}");
    let acc = stored
        .data
        .metrics
        .iter()
        .find(|metric| metric.key == "acc")
        .unwrap();
    assert!(acc.value >= f64::MAX, "{acc:?}");
    let history = store
        .get_metric_history(&run.run_uuid, "loss", None, HistoryCursor::default())
        .await
        .unwrap()
        .items;
    assert_eq!(history.len(), 3);

    let orphan = store
        .import_run(&legacy_run("fedcba9876543210fedcba9876543210", 99), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            orphan,
            ImportError::MissingExperiment {
                experiment_id: 99,
                ..
            }
        ),
        "{orphan}"
    );
}

async fn a_64_bit_experiment_id_fits_only_sqlite(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = database.open().await.unwrap();
    let imported = store
        .import_experiment(&legacy_experiment(964_899_640_738_942_491, "big"))
        .await;
    match backend {
        Backend::Sqlite => assert_eq!(imported.unwrap(), ExperimentImport::Created),
        Backend::Postgres | Backend::MySql => assert!(
            matches!(imported, Err(ImportError::ExperimentIdOutOfRange { .. })),
            "{imported:?}"
        ),
    }
}

async fn datasets_are_reused_and_inputs_link_to_them(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = database.open().await.unwrap();
    store
        .import_experiment(&legacy_experiment(3, "alpha"))
        .await
        .unwrap();
    let dataset = LegacyDataset {
        dataset_uuid: "11111111-1111-4111-8111-111111111111".to_owned(),
        experiment_id: 3,
        name: "train".to_owned(),
        digest: "300830b9".to_owned(),
        source_type: "s3".to_owned(),
        source: "{\"uri\": \"s3://bucket/train.csv\"}".to_owned(),
        schema: None,
        profile: Some("{\"num_rows\": 2}".to_owned()),
    };
    assert_eq!(
        store.import_dataset(&dataset).await.unwrap(),
        DatasetImport::Created
    );
    let rerun = LegacyDataset {
        dataset_uuid: "22222222-2222-4222-8222-222222222222".to_owned(),
        ..dataset.clone()
    };
    assert_eq!(
        store.import_dataset(&rerun).await.unwrap(),
        DatasetImport::Reused {
            dataset_uuid: dataset.dataset_uuid.clone()
        }
    );
    let run = LegacyRun {
        inputs: vec![LegacyInput {
            input_uuid: "33333333-3333-4333-8333-333333333333".to_owned(),
            source_type: "DATASET".to_owned(),
            source_id: dataset.dataset_uuid.clone(),
            destination_type: "RUN".to_owned(),
            destination_id: "abcdefabcdefabcdefabcdefabcdefab".to_owned(),
            tags: vec![("mlflow.data.context".to_owned(), "training".to_owned())],
        }],
        ..legacy_run("abcdefabcdefabcdefabcdefabcdefab", 3)
    };
    assert!(matches!(
        store.import_run(&run, &[]).await.unwrap(),
        RunImport::Created { inputs: 1, .. }
    ));
    let stored = store.get_run(&run.run_uuid).await.unwrap().unwrap();
    let [input] = stored.inputs.dataset_inputs.as_slice() else {
        panic!("one dataset input: {:?}", stored.inputs);
    };
    assert_eq!(input.dataset.name, "train");
    assert_eq!(input.dataset.profile.as_deref(), Some("{\"num_rows\": 2}"));
    assert_eq!(input.tags.len(), 1);
}
