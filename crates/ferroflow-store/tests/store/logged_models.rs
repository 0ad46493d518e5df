//! The logged model store suite: create, get, finalize, delete, tags, params, the metric rows that run
//! metrics with a `model_id` add, and search.

use crate::backends::{Backend, TestDatabase};
use ferroflow_core::logged_model_filter::{parse_filter, parse_order_by, OrderBy};
use ferroflow_core::logged_models::{
    DatasetFilter, LoggedModelQuery, LoggedModelStore, NewLoggedModel,
};
use ferroflow_core::model::{Batch, NewExperiment, NewRun};
use ferroflow_core::store::TrackingStore;
use ferroflow_proto::logged_models::{LoggedModelParameter, LoggedModelStatus, LoggedModelTag};
use ferroflow_proto::tracking::Metric;
use ferroflow_proto::ErrorCode;
use ferroflow_store::SqlStore;
use std::sync::Arc;

struct Fixture {
    store: Arc<SqlStore>,
    experiment_id: String,
    run_id: String,
    _database: TestDatabase,
}

/// A store on a fresh database of `backend` with one experiment and one run; `None` when the backend is
/// skipped.
async fn fixture(backend: Backend) -> Option<Fixture> {
    let database = TestDatabase::create(backend).await?;
    let store = database.open().await.unwrap();
    let experiment_id = store
        .create_experiment(NewExperiment {
            name: "models".into(),
            artifact_location: None,
            default_artifact_root: "mlflow-artifacts:/".into(),
            tags: Vec::new(),
            creation_time: 1,
        })
        .await
        .unwrap();
    let run_id = "0123456789abcdef0123456789abcdef".to_owned();
    store
        .create_run(NewRun {
            run_id: run_id.clone(),
            experiment_id: experiment_id.clone(),
            run_name: "run".into(),
            user_id: "tester".into(),
            start_time: 1,
            artifact_uri: format!("mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"),
            tags: Vec::new(),
        })
        .await
        .unwrap();
    Some(Fixture {
        store: Arc::new(store),
        experiment_id,
        run_id,
        _database: database,
    })
}

fn new_model(fixture: &Fixture, model_id: &str, name: &str, created: i64) -> NewLoggedModel {
    NewLoggedModel {
        model_id: model_id.to_owned(),
        experiment_id: fixture.experiment_id.clone(),
        name: name.to_owned(),
        artifact_location: format!(
            "mlflow-artifacts:/{}/models/{model_id}/artifacts",
            fixture.experiment_id
        ),
        creation_timestamp_ms: created,
        model_type: String::new(),
        source_run_id: String::new(),
        params: Vec::new(),
        tags: Vec::new(),
    }
}

fn param(key: &str, value: &str) -> LoggedModelParameter {
    LoggedModelParameter {
        key: key.into(),
        value: value.into(),
    }
}

fn tag(key: &str, value: &str) -> LoggedModelTag {
    LoggedModelTag {
        key: key.into(),
        value: value.into(),
    }
}

fn model_metric(model_id: &str, key: &str, value: f64, timestamp: i64, step: i64) -> Metric {
    Metric {
        key: key.into(),
        value,
        timestamp,
        step,
        dataset_name: None,
        dataset_digest: None,
        model_id: Some(model_id.into()),
        run_id: None,
    }
}

async fn log_metrics(fixture: &Fixture, metrics: Vec<Metric>) -> ferroflow_core::Result<()> {
    TrackingStore::log_batch(
        fixture.store.as_ref(),
        &fixture.run_id,
        Batch {
            metrics,
            ..Batch::default()
        },
    )
    .await
}

async fn create_and_get_round_trip(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let mut model = new_model(&fixture, "m-1", "model", 100);
    model.model_type = "sklearn".into();
    model.source_run_id = fixture.run_id.clone();
    model.params = vec![param("b", "2"), param("a", "1")];
    model.tags = vec![tag("z", "1"), tag("y", "2")];
    let created = fixture.store.create_logged_model(model).await.unwrap();
    let info = &created.info;
    assert_eq!(info.model_id, "m-1");
    assert_eq!(info.experiment_id, fixture.experiment_id);
    assert_eq!(info.status, LoggedModelStatus::Pending);
    assert_eq!(info.creation_timestamp_ms, Some(100));
    assert_eq!(info.last_updated_timestamp_ms, Some(100));
    assert_eq!(info.model_type.as_deref(), Some("sklearn"));
    assert_eq!(info.source_run_id.as_deref(), Some(fixture.run_id.as_str()));
    assert_eq!(
        info.artifact_uri,
        format!(
            "mlflow-artifacts:/{}/models/m-1/artifacts",
            fixture.experiment_id
        )
    );
    // Tags and params come back ordered by key, as MLflow reads them.
    assert_eq!(info.tags, vec![tag("y", "2"), tag("z", "1")]);
    assert_eq!(created.data.params, vec![param("a", "1"), param("b", "2")]);
    assert!(created.data.metrics.is_empty());
    let fetched = fixture
        .store
        .get_logged_model("m-1", false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fetched, created);
    assert!(fixture
        .store
        .get_logged_model("m-missing", true)
        .await
        .unwrap()
        .is_none());
}

async fn empty_model_type_is_kept_as_mlflow_stores_it(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let created = fixture
        .store
        .create_logged_model(new_model(&fixture, "m-1", "model", 1))
        .await
        .unwrap();
    assert_eq!(created.info.model_type.as_deref(), Some(""));
    assert_eq!(created.info.source_run_id.as_deref(), Some(""));
}

async fn duplicate_keys_at_creation_write_nothing(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let mut model = new_model(&fixture, "m-1", "model", 1);
    model.params = vec![param("a", "1"), param("a", "2")];
    let error = fixture.store.create_logged_model(model).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::BadRequest);
    let mut model = new_model(&fixture, "m-1", "model", 1);
    model.tags = vec![tag("t", "1"), tag("t", "2")];
    let error = fixture.store.create_logged_model(model).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::BadRequest);
    assert!(!fixture.store.logged_model_exists("m-1").await.unwrap());
}

async fn finalize_delete_and_deleted_models(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    fixture
        .store
        .create_logged_model(new_model(&fixture, "m-1", "model", 1))
        .await
        .unwrap();
    let finalized = fixture
        .store
        .finalize_logged_model("m-1", LoggedModelStatus::Ready, 50)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(finalized.info.status, LoggedModelStatus::Ready);
    assert_eq!(finalized.info.last_updated_timestamp_ms, Some(50));
    assert_eq!(finalized.info.creation_timestamp_ms, Some(1));
    assert!(fixture
        .store
        .finalize_logged_model("m-missing", LoggedModelStatus::Ready, 50)
        .await
        .unwrap()
        .is_none());

    assert!(fixture.store.delete_logged_model("m-1", 60).await.unwrap());
    assert!(!fixture
        .store
        .delete_logged_model("m-missing", 60)
        .await
        .unwrap());
    assert!(fixture
        .store
        .get_logged_model("m-1", false)
        .await
        .unwrap()
        .is_none());
    let deleted = fixture
        .store
        .get_logged_model("m-1", true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deleted.info.last_updated_timestamp_ms, Some(60));
    // A deleted model still exists for finalize, tags and params, as in MLflow.
    assert!(fixture.store.logged_model_exists("m-1").await.unwrap());
    assert!(fixture
        .store
        .finalize_logged_model("m-1", LoggedModelStatus::UploadFailed, 70)
        .await
        .unwrap()
        .is_some());
    assert!(fixture
        .store
        .set_logged_model_tags("m-1", vec![tag("k", "v")])
        .await
        .unwrap());
}

async fn tags_upsert_and_delete(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let mut model = new_model(&fixture, "m-1", "model", 1);
    model.tags = vec![tag("t", "old")];
    fixture.store.create_logged_model(model).await.unwrap();
    assert!(fixture
        .store
        .set_logged_model_tags("m-1", vec![tag("x", "1"), tag("t", "new")])
        .await
        .unwrap());
    assert!(!fixture
        .store
        .set_logged_model_tags("m-missing", vec![tag("x", "1")])
        .await
        .unwrap());
    let tags = |fixture: &Fixture| {
        let store = fixture.store.clone();
        async move {
            store
                .get_logged_model("m-1", false)
                .await
                .unwrap()
                .unwrap()
                .info
                .tags
        }
    };
    assert_eq!(tags(&fixture).await, vec![tag("t", "new"), tag("x", "1")]);
    assert!(fixture
        .store
        .delete_logged_model_tag("m-1", "t")
        .await
        .unwrap());
    assert!(!fixture
        .store
        .delete_logged_model_tag("m-1", "t")
        .await
        .unwrap());
    assert_eq!(tags(&fixture).await, vec![tag("x", "1")]);
}

async fn params_are_added_once_and_atomically(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let mut model = new_model(&fixture, "m-1", "model", 1);
    model.params = vec![param("a", "1")];
    fixture.store.create_logged_model(model).await.unwrap();
    assert!(fixture
        .store
        .log_logged_model_params("m-1", vec![param("b", "2")])
        .await
        .unwrap());
    // The same key again, even with the same value, is refused (MLflow's integrity error), and the other
    // params of the request are not written.
    let error = fixture
        .store
        .log_logged_model_params("m-1", vec![param("c", "3"), param("a", "1")])
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::BadRequest);
    assert!(!fixture
        .store
        .log_logged_model_params("m-missing", vec![param("c", "3")])
        .await
        .unwrap());
    let params = fixture
        .store
        .get_logged_model("m-1", false)
        .await
        .unwrap()
        .unwrap()
        .data
        .params;
    assert_eq!(params, vec![param("a", "1"), param("b", "2")]);
}

async fn run_metrics_with_a_model_id_are_linked_to_the_model(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    fixture
        .store
        .create_logged_model(new_model(&fixture, "m-1", "model", 1))
        .await
        .unwrap();
    let mut with_dataset = model_metric("m-1", "acc", 0.5, 10, 1);
    with_dataset.dataset_name = Some("ds".into());
    with_dataset.dataset_digest = Some("dg".into());
    let unlinked = Metric {
        model_id: None,
        ..model_metric("m-1", "plain", 1.0, 10, 1)
    };
    log_metrics(
        &fixture,
        vec![
            with_dataset,
            model_metric("m-1", "acc", 0.7, 20, 2),
            model_metric("m-1", "loss", f64::NAN, 20, 2),
            model_metric("m-1", "big", f64::INFINITY, 20, 2),
            unlinked,
        ],
    )
    .await
    .unwrap();
    // The same row again is kept once, as MLflow keeps it.
    log_metrics(&fixture, vec![model_metric("m-1", "acc", 0.7, 20, 2)])
        .await
        .unwrap();
    log_metrics(&fixture, vec![model_metric("m-1", "acc", 0.1, 5, 0)])
        .await
        .unwrap();
    let metrics = fixture
        .store
        .get_logged_model("m-1", false)
        .await
        .unwrap()
        .unwrap()
        .data
        .metrics;
    let summary: Vec<(String, f64, i64, i64)> = metrics
        .iter()
        .map(|metric| {
            (
                metric.key.clone(),
                metric.value,
                metric.timestamp,
                metric.step,
            )
        })
        .collect();
    // In the order logged (MySQL: primary key order, its tables are clustered by it, as MLflow reads
    // them back there); NaN is stored as 0 and infinity as the largest double.
    let mut logged: Vec<(String, f64, i64, i64)> = vec![
        ("acc".into(), 0.5, 10, 1),
        ("acc".into(), 0.7, 20, 2),
        ("loss".into(), 0.0, 20, 2),
        ("big".into(), f64::MAX, 20, 2),
        ("acc".into(), 0.1, 5, 0),
    ];
    if backend == Backend::MySql {
        logged.sort_by(|left, right| (&left.0, left.2, left.3).cmp(&(&right.0, right.2, right.3)));
    }
    assert_eq!(summary, logged);
    assert!(metrics.iter().all(|metric| {
        metric.model_id.as_deref() == Some("m-1")
            && metric.run_id.as_deref() == Some(fixture.run_id.as_str())
    }));
    let first_acc = metrics
        .iter()
        .find(|metric| metric.key == "acc" && metric.timestamp == 10)
        .unwrap();
    assert_eq!(first_acc.dataset_name.as_deref(), Some("ds"));
    assert_eq!(first_acc.dataset_digest.as_deref(), Some("dg"));
    let second_acc = metrics
        .iter()
        .find(|metric| metric.key == "acc" && metric.timestamp == 20)
        .unwrap();
    assert_eq!(second_acc.dataset_name, None);
}

async fn a_metric_naming_a_missing_model_writes_nothing(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let error = log_metrics(
        &fixture,
        vec![
            Metric {
                model_id: None,
                ..model_metric("", "plain", 1.0, 10, 1)
            },
            model_metric("m-missing", "acc", 0.5, 10, 1),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(error.code, ErrorCode::BadRequest);
    let run = fixture
        .store
        .get_run(&fixture.run_id)
        .await
        .unwrap()
        .unwrap();
    assert!(run.data.metrics.is_empty());
}

// ---------------------------------------------------------------------------------------------------------
// Search.

/// Four models in the fixture's experiment and one in another, created at 10, 20, 30, 40 and 50 ms.
async fn search_fixture(backend: Backend) -> Option<Fixture> {
    let fixture = fixture(backend).await?;
    let store = &fixture.store;
    let mut alpha = new_model(&fixture, "m-a", "alpha", 10);
    alpha.model_type = "sklearn".into();
    alpha.params = vec![param("lr", "0.1")];
    alpha.tags = vec![tag("team", "Core")];
    store.create_logged_model(alpha).await.unwrap();
    let mut beta = new_model(&fixture, "m-b", "beta", 20);
    beta.model_type = "SKLEARN".into();
    beta.params = vec![param("lr", "0.2")];
    store.create_logged_model(beta).await.unwrap();
    let mut gamma = new_model(&fixture, "m-c", "Gamma", 30);
    gamma.tags = vec![tag("team", "core")];
    store.create_logged_model(gamma).await.unwrap();
    store
        .create_logged_model(new_model(&fixture, "m-d", "delta", 40))
        .await
        .unwrap();
    store
        .finalize_logged_model("m-a", LoggedModelStatus::Ready, 60)
        .await
        .unwrap();
    let other = store
        .create_experiment(NewExperiment {
            name: "other".into(),
            artifact_location: None,
            default_artifact_root: "mlflow-artifacts:/".into(),
            tags: Vec::new(),
            creation_time: 1,
        })
        .await
        .unwrap();
    let mut elsewhere = new_model(&fixture, "m-e", "alpha", 50);
    elsewhere.experiment_id = other;
    store.create_logged_model(elsewhere).await.unwrap();
    let mut alpha_acc = model_metric("m-a", "acc", 0.5, 10, 1);
    alpha_acc.dataset_name = Some("ds".into());
    alpha_acc.dataset_digest = Some("dg".into());
    log_metrics(
        &fixture,
        vec![
            alpha_acc,
            model_metric("m-a", "acc", 0.9, 20, 2),
            model_metric("m-b", "acc", 0.7, 30, 1),
            model_metric("m-c", "acc", 0.6, 5, 9),
            model_metric("m-c", "acc", 0.8, 40, 0),
        ],
    )
    .await
    .unwrap();
    Some(fixture)
}

fn query(fixture: &Fixture, filter: &str) -> LoggedModelQuery {
    LoggedModelQuery {
        experiment_ids: vec![fixture.experiment_id.parse().unwrap()],
        filter: parse_filter(filter).unwrap(),
        datasets: Vec::new(),
        order_by: Vec::new(),
        max_results: 50,
        offset: 0,
    }
}

async fn ids(fixture: &Fixture, query: LoggedModelQuery) -> Vec<String> {
    fixture
        .store
        .search_logged_models(query)
        .await
        .unwrap()
        .models
        .into_iter()
        .map(|model| model.info.model_id)
        .collect()
}

async fn search_filters(backend: Backend) {
    let Some(fixture) = search_fixture(backend).await else {
        return;
    };
    // Newest first by default; the model of the other experiment never shows.
    let cases: &[(&str, &[&str])] = &[
        ("", &["m-d", "m-c", "m-b", "m-a"]),
        ("name = 'alpha'", &["m-a"]),
        ("name != 'alpha'", &["m-d", "m-c", "m-b"]),
        ("name LIKE '%a'", &["m-d", "m-c", "m-b", "m-a"]),
        ("name LIKE 'g%'", &[]),
        ("name ILIKE 'g%'", &["m-c"]),
        ("name LIKE '_eta'", &["m-b"]),
        ("name IN ('alpha', 'beta')", &["m-b", "m-a"]),
        ("name NOT IN ('alpha', 'beta')", &["m-d", "m-c"]),
        ("model_type = 'sklearn'", &["m-a"]),
        ("model_type ILIKE 'sklearn'", &["m-b", "m-a"]),
        ("model_type = ''", &["m-d", "m-c"]),
        ("model_id = 'm-b'", &["m-b"]),
        ("status = '2'", &["m-a"]),
        ("status = 'READY'", &[]),
        (
            "creation_timestamp >= 20 AND creation_time < 40",
            &["m-c", "m-b"],
        ),
        ("last_updated_timestamp > 50", &["m-a"]),
        // Any row of the metric counts, not only the latest.
        ("metrics.acc > 0.85", &["m-a"]),
        ("metrics.acc < 0.65", &["m-c", "m-a"]),
        ("metrics.acc = 0.7", &["m-b"]),
        ("metrics.acc != 0.9", &["m-c", "m-b", "m-a"]),
        ("metrics.missing > 0", &[]),
        ("params.lr = '0.1'", &["m-a"]),
        ("params.lr LIKE '0.%'", &["m-b", "m-a"]),
        ("params.lr != '0.1'", &["m-b"]),
        ("tags.team = 'core'", &["m-c"]),
        ("tags.team ILIKE 'CORE'", &["m-c", "m-a"]),
        ("tags.team IN ('Core')", &["m-a"]),
        (
            "name = 'alpha' AND metrics.acc > 0.1 AND params.lr = '0.1'",
            &["m-a"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            ids(&fixture, query(&fixture, filter)).await,
            *expected,
            "{filter}"
        );
    }
}

async fn search_datasets(backend: Backend) {
    let Some(fixture) = search_fixture(backend).await else {
        return;
    };
    let with = |datasets: Vec<DatasetFilter>, filter: &str| {
        let mut query = query(&fixture, filter);
        query.datasets = datasets;
        query
    };
    let ds = |digest: Option<&str>| DatasetFilter {
        name: "ds".into(),
        digest: digest.map(str::to_owned),
    };
    assert_eq!(ids(&fixture, with(vec![ds(Some("dg"))], "")).await, ["m-a"]);
    // A dataset without digest matches only rows without digest (MLflow's behaviour).
    assert!(ids(&fixture, with(vec![ds(None)], "")).await.is_empty());
    // Metric comparisons only see the rows of the datasets.
    assert!(
        ids(&fixture, with(vec![ds(Some("dg"))], "metrics.acc > 0.6"))
            .await
            .is_empty()
    );
    assert_eq!(
        ids(&fixture, with(vec![ds(Some("dg"))], "metrics.acc < 0.6")).await,
        ["m-a"]
    );
}

async fn search_order(backend: Backend) {
    let Some(fixture) = search_fixture(backend).await else {
        return;
    };
    let ordered = |order_by: Vec<OrderBy>| {
        let mut query = query(&fixture, "");
        query.order_by = order_by;
        query
    };
    let by = |field: &str, ascending: bool| parse_order_by(field, ascending, None, None).unwrap();
    // Strings sort by the database's collation, as with MLflow: byte order on SQLite and on the test
    // databases of PostgreSQL (collation C), case-insensitive under MySQL's default collations.
    let by_name: &[&str] = match backend {
        Backend::Sqlite | Backend::Postgres => &["m-c", "m-a", "m-b", "m-d"],
        Backend::MySql => &["m-a", "m-b", "m-d", "m-c"],
    };
    assert_eq!(
        ids(&fixture, ordered(vec![by("name", true)])).await,
        by_name
    );
    assert_eq!(
        ids(&fixture, ordered(vec![by("creation_time", true)])).await,
        ["m-a", "m-b", "m-c", "m-d"]
    );
    // The latest value by timestamp: a 0.9, b 0.7, c 0.8; d has none and comes last both ways.
    assert_eq!(
        ids(&fixture, ordered(vec![by("metrics.acc", true)])).await,
        ["m-b", "m-c", "m-a", "m-d"]
    );
    assert_eq!(
        ids(&fixture, ordered(vec![by("metrics.acc", false)])).await,
        ["m-a", "m-c", "m-b", "m-d"]
    );
    // Among rows of the dataset only a has a value; the rest keep the default order.
    let on_dataset = parse_order_by("metrics.acc", false, Some("ds"), Some("dg")).unwrap();
    assert_eq!(
        ids(&fixture, ordered(vec![on_dataset])).await,
        ["m-a", "m-d", "m-c", "m-b"]
    );
    // Ties fall back to creation time (newest first), then model id.
    assert_eq!(
        ids(&fixture, ordered(vec![by("model_type", true)])).await,
        ["m-d", "m-c", "m-b", "m-a"]
    );
}

async fn search_pages_and_skips_deleted_models(backend: Backend) {
    let Some(fixture) = search_fixture(backend).await else {
        return;
    };
    let page = |offset: usize| {
        let mut query = query(&fixture, "");
        query.max_results = 3;
        query.offset = offset;
        query
    };
    let first = fixture.store.search_logged_models(page(0)).await.unwrap();
    assert!(first.has_more);
    assert_eq!(first.models.len(), 3);
    let second = fixture.store.search_logged_models(page(3)).await.unwrap();
    assert!(!second.has_more);
    assert_eq!(second.models.len(), 1);
    assert_eq!(second.models[0].info.model_id, "m-a");
    // Loaded models carry their data.
    assert_eq!(second.models[0].data.params, vec![param("lr", "0.1")]);
    assert_eq!(second.models[0].data.metrics.len(), 2);

    fixture.store.delete_logged_model("m-c", 99).await.unwrap();
    assert_eq!(
        ids(&fixture, query(&fixture, "")).await,
        ["m-d", "m-b", "m-a"]
    );
    let mut none = query(&fixture, "");
    none.experiment_ids = Vec::new();
    assert!(ids(&fixture, none).await.is_empty());
}

on_every_backend!(
    create_and_get_round_trip,
    empty_model_type_is_kept_as_mlflow_stores_it,
    duplicate_keys_at_creation_write_nothing,
    finalize_delete_and_deleted_models,
    tags_upsert_and_delete,
    params_are_added_once_and_atomically,
    run_metrics_with_a_model_id_are_linked_to_the_model,
    a_metric_naming_a_missing_model_writes_nothing,
    search_filters,
    search_datasets,
    search_order,
    search_pages_and_skips_deleted_models,
);
