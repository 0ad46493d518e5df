//! The registered scorer store suite: versions numbered per scorer, the latest of each scorer across
//! experiments, active experiments, one version or all deleted (with the scorer's online configs),
//! and online configs read as MLflow wrote them.

use crate::backends::{Backend, TestDatabase};
use ferroflow_core::model::NewExperiment;
use ferroflow_core::scorers::{DeleteOutcome, ScorerStore};
use ferroflow_core::store::TrackingStore;
use ferroflow_store::SqlStore;

async fn experiment(store: &SqlStore, name: &str) -> i64 {
    store
        .create_experiment(NewExperiment {
            name: name.into(),
            artifact_location: None,
            default_artifact_root: "mlflow-artifacts:/".into(),
            tags: Vec::new(),
            creation_time: 1,
        })
        .await
        .unwrap()
        .parse()
        .unwrap()
}

fn versions(rows: &[ferroflow_core::scorers::ScorerRow]) -> Vec<(i64, &str, i64, &str)> {
    rows.iter()
        .map(|row| {
            (
                row.experiment_id,
                row.scorer_name.as_str(),
                row.scorer_version,
                row.serialized_scorer.as_str(),
            )
        })
        .collect()
}

async fn register_list_and_get(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = database.open().await.unwrap();
    let first = experiment(&store, "one").await;
    let second = experiment(&store, "two").await;

    let v1 = store
        .register_scorer(first, "safety", r#"{"v": 1}"#, 100)
        .await
        .unwrap();
    assert_eq!(v1.scorer_version, 1);
    assert_eq!(v1.scorer_id.len(), 36);
    assert_eq!(v1.creation_time, Some(100));
    let v2 = store
        .register_scorer(first, "safety", r#"{"v": 2}"#, 200)
        .await
        .unwrap();
    assert_eq!((v2.scorer_version, &v2.scorer_id), (2, &v1.scorer_id));
    let other = store
        .register_scorer(second, "safety", r#"{"v": 3}"#, 300)
        .await
        .unwrap();
    assert_eq!(other.scorer_version, 1);
    assert_ne!(other.scorer_id, v1.scorer_id);
    store
        .register_scorer(first, "alpha", r#"{"a": 1}"#, 400)
        .await
        .unwrap();

    let latest = store.latest_scorers(&[second, first]).await.unwrap();
    assert_eq!(
        versions(&latest),
        vec![
            (first, "alpha", 1, r#"{"a": 1}"#),
            (first, "safety", 2, r#"{"v": 2}"#),
            (second, "safety", 1, r#"{"v": 3}"#),
        ]
    );
    assert_eq!(latest[1].creation_time, Some(200));
    assert!(store.latest_scorers(&[]).await.unwrap().is_empty());

    assert_eq!(
        store.scorer_id(first, "safety").await.unwrap(),
        Some(v1.scorer_id.clone())
    );
    assert_eq!(store.scorer_id(first, "ghost").await.unwrap(), None);
    let all = store.scorer_versions(&v1.scorer_id).await.unwrap();
    assert_eq!(
        versions(&all),
        vec![
            (first, "safety", 1, r#"{"v": 1}"#),
            (first, "safety", 2, r#"{"v": 2}"#)
        ]
    );
    let newest = store.scorer_version(&v1.scorer_id, None).await.unwrap();
    assert_eq!(newest, Some(v2.clone()));
    let old = store.scorer_version(&v1.scorer_id, Some(1)).await.unwrap();
    assert_eq!(old, Some(v1.clone()));
    assert_eq!(
        store.scorer_version(&v1.scorer_id, Some(9)).await.unwrap(),
        None
    );

    database
        .execute(&format!(
            "UPDATE experiments SET lifecycle_stage = 'deleted' WHERE experiment_id = {second}"
        ))
        .await;
    assert_eq!(
        store.active_experiment_ids(None).await.unwrap(),
        vec![0, first]
    );
    assert_eq!(
        store
            .active_experiment_ids(Some(&[first, second, 999]))
            .await
            .unwrap(),
        vec![first]
    );
}

async fn delete_versions_and_online_configs(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = database.open().await.unwrap();
    let experiment = experiment(&store, "exp").await;
    let v1 = store
        .register_scorer(experiment, "judge", "{}", 1)
        .await
        .unwrap();
    store
        .register_scorer(experiment, "judge", "{}", 2)
        .await
        .unwrap();
    database
        .execute(&format!(
            "INSERT INTO online_scoring_configs (online_scoring_config_id, scorer_id, sample_rate, \
             experiment_id, filter_string) VALUES ('cfg-1', '{}', 0.25, {experiment}, \
             'trace.status = ''OK''')",
            v1.scorer_id
        ))
        .await;
    let configs = store
        .online_configs(&[v1.scorer_id.clone(), "other".into()])
        .await
        .unwrap();
    assert_eq!(configs.len(), 1);
    assert_eq!(configs[0].online_scoring_config_id, "cfg-1");
    assert_eq!(configs[0].scorer_id, v1.scorer_id);
    assert!((configs[0].sample_rate - 0.25).abs() < 1e-9);
    assert_eq!(configs[0].experiment_id, experiment);
    assert_eq!(
        configs[0].filter_string.as_deref(),
        Some("trace.status = 'OK'")
    );

    assert_eq!(
        store
            .delete_scorer(experiment, "ghost", None)
            .await
            .unwrap(),
        DeleteOutcome::NoScorer
    );
    assert_eq!(
        store
            .delete_scorer(experiment, "judge", Some(7))
            .await
            .unwrap(),
        DeleteOutcome::NoVersion
    );
    assert_eq!(
        store
            .delete_scorer(experiment, "judge", Some(1))
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    let left = store.scorer_versions(&v1.scorer_id).await.unwrap();
    assert_eq!(
        left.iter()
            .map(|row| row.scorer_version)
            .collect::<Vec<_>>(),
        vec![2]
    );
    // Deleting the last version keeps the scorer; the next registration reuses its id.
    assert_eq!(
        store
            .delete_scorer(experiment, "judge", Some(2))
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(store
        .latest_scorers(&[experiment])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .delete_scorer(experiment, "judge", None)
            .await
            .unwrap(),
        DeleteOutcome::NoVersion
    );
    let again = store
        .register_scorer(experiment, "judge", "{}", 3)
        .await
        .unwrap();
    assert_eq!((again.scorer_version, &again.scorer_id), (1, &v1.scorer_id));

    assert_eq!(
        store
            .delete_scorer(experiment, "judge", None)
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(store.scorer_id(experiment, "judge").await.unwrap(), None);
    assert!(store
        .online_configs(std::slice::from_ref(&v1.scorer_id))
        .await
        .unwrap()
        .is_empty());
    let fresh = store
        .register_scorer(experiment, "judge", "{}", 4)
        .await
        .unwrap();
    assert_eq!(fresh.scorer_version, 1);
    assert_ne!(fresh.scorer_id, v1.scorer_id);
}

async fn gateway_endpoint_names(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = database.open().await.unwrap();
    assert!(store.gateway_endpoint_names().await.unwrap().is_empty());
    database
        .execute(
            "INSERT INTO endpoints (endpoint_id, name, created_at, last_updated_at) \
             VALUES ('e-1', 'chat', 1, 1)",
        )
        .await;
    database
        .execute(
            "INSERT INTO endpoints (endpoint_id, name, created_at, last_updated_at) \
             VALUES ('e-2', NULL, 1, 1)",
        )
        .await;
    let names = store.gateway_endpoint_names().await.unwrap();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec![("e-1".to_owned(), "chat".to_owned())]
    );
}

on_every_backend!(
    register_list_and_get,
    delete_versions_and_online_configs,
    gateway_endpoint_names,
);
