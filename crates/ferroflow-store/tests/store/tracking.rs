//! The tracking store suite: schema creation and revisions, experiments, runs, batches, metric history
//! and sampling, inputs and outputs, paging, concurrent writers and database outages.

use crate::backends::{Backend, TestDatabase};
use ferroflow_core::ids::{decode_history_token, HistoryCursor};
use ferroflow_core::model::{
    Batch, ExperimentQuery, LifecycleStage, NewExperiment, NewRun, RunInputsWrite, RunQuery,
    RunStatus, RunUpdate, ViewType,
};
use ferroflow_core::store::TrackingStore;
use ferroflow_proto::tracking::{
    Dataset, DatasetInput, ExperimentTag, InputTag, Metric, ModelOutput, Param, Run, RunTag,
};
use ferroflow_proto::ErrorCode;
use ferroflow_store::SqlStore;
use std::sync::Arc;

struct Fixture {
    store: Arc<SqlStore>,
    database: TestDatabase,
}

/// A store on a fresh database of `backend`; `None` when the backend is skipped.
async fn fixture(backend: Backend) -> Option<Fixture> {
    let database = TestDatabase::create(backend).await?;
    let store = database.open().await.unwrap();
    Some(Fixture {
        store: Arc::new(store),
        database,
    })
}

fn new_experiment(name: &str) -> NewExperiment {
    NewExperiment {
        name: name.to_owned(),
        artifact_location: None,
        default_artifact_root: "mlflow-artifacts:/".to_owned(),
        tags: vec![ExperimentTag {
            key: "team".into(),
            value: "core".into(),
        }],
        creation_time: 1000,
    }
}

fn new_run(run_id: &str, experiment_id: &str, start_time: i64) -> NewRun {
    NewRun {
        run_id: run_id.to_owned(),
        experiment_id: experiment_id.to_owned(),
        run_name: format!("name-{run_id}"),
        user_id: "tester".into(),
        start_time,
        artifact_uri: format!("mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"),
        tags: vec![RunTag {
            key: "mlflow.runName".into(),
            value: format!("name-{run_id}"),
        }],
    }
}

fn metric(key: &str, value: f64, timestamp: i64, step: i64) -> Metric {
    Metric {
        key: key.into(),
        value,
        timestamp,
        step,
        dataset_name: None,
        dataset_digest: None,
        model_id: None,
        run_id: None,
    }
}

async fn new_database_has_default_experiment_and_revision(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let default = fixture.store.get_experiment("0").await.unwrap().unwrap();
    assert_eq!(default.name, "Default");
    assert_eq!(default.artifact_location, "mlflow-artifacts:/0");
    assert_eq!(default.lifecycle_stage, "active");
    assert_eq!(
        fixture
            .database
            .fetch_text("SELECT version_num FROM alembic_version")
            .await,
        ferroflow_store::SCHEMA_REVISION
    );
    // Reopening the same database is accepted and does not duplicate anything.
    fixture.store.close().await;
    let reopened = fixture.database.open().await.unwrap();
    let page = reopened
        .search_experiments(ExperimentQuery {
            filter: vec![],
            order_by: vec![],
            view_type: ViewType::All,
            max_results: 10,
            offset: 0,
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    // The first experiment created after Default gets id 1, as with MLflow.
    assert_eq!(
        reopened
            .create_experiment(new_experiment("after-default"))
            .await
            .unwrap(),
        "1"
    );
    reopened.close().await;
}

async fn other_revision_is_refused_and_left_untouched(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    database.open().await.unwrap().close().await;
    database
        .execute("UPDATE alembic_version SET version_num = 'aaaaaaaaaaaa'")
        .await;
    let error = database.open().await.err().unwrap();
    assert!(error.to_string().contains("aaaaaaaaaaaa"), "{error}");
    assert!(error.to_string().contains("left untouched"), "{error}");
    assert_eq!(
        database
            .fetch_text("SELECT version_num FROM alembic_version")
            .await,
        "aaaaaaaaaaaa"
    );
}

async fn non_mlflow_database_is_refused(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    database.execute("CREATE TABLE mine (x INTEGER)").await;
    let error = database.open().await.err().unwrap();
    assert!(
        error.to_string().contains("not an MLflow database"),
        "{error}"
    );
    // Nothing was created next to the foreign table.
    assert_eq!(
        database
            .fetch_text(match backend {
                Backend::Sqlite =>
                    "SELECT group_concat(name) FROM sqlite_master WHERE type = 'table'",
                Backend::Postgres =>
                    "SELECT string_agg(table_name::text, ',') FROM information_schema.tables \
                     WHERE table_schema = current_schema()",
                Backend::MySql =>
                    "SELECT CAST(GROUP_CONCAT(table_name) AS CHAR) FROM information_schema.tables \
                     WHERE table_schema = DATABASE()",
            })
            .await,
        "mine"
    );
}

async fn experiments_create_rename_tag_and_lifecycle(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let store = &fixture.store;
    let experiment_id = store
        .create_experiment(new_experiment("first"))
        .await
        .unwrap();
    assert_eq!(experiment_id, "1");
    let experiment = store.get_experiment(&experiment_id).await.unwrap().unwrap();
    assert_eq!(experiment.artifact_location, "mlflow-artifacts:/1");
    assert_eq!(
        experiment.tags,
        vec![ExperimentTag {
            key: "team".into(),
            value: "core".into()
        }]
    );
    assert_eq!(experiment.creation_time, Some(1000));

    let duplicate = store
        .create_experiment(new_experiment("first"))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code, ErrorCode::ResourceAlreadyExists);

    store
        .rename_experiment(&experiment_id, "renamed", 2000)
        .await
        .unwrap();
    let by_name = store
        .get_experiment_by_name("renamed")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_name.experiment_id, experiment_id);
    assert_eq!(by_name.last_update_time, Some(2000));
    assert!(store
        .get_experiment_by_name("first")
        .await
        .unwrap()
        .is_none());

    store
        .set_experiment_tag(
            &experiment_id,
            ExperimentTag {
                key: "team".into(),
                value: "ml".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .get_experiment(&experiment_id)
            .await
            .unwrap()
            .unwrap()
            .tags[0]
            .value,
        "ml"
    );
    assert!(store
        .delete_experiment_tag(&experiment_id, "team")
        .await
        .unwrap());
    assert!(!store
        .delete_experiment_tag(&experiment_id, "team")
        .await
        .unwrap());

    store
        .create_run(new_run("r1", &experiment_id, 10))
        .await
        .unwrap();
    store
        .set_experiment_lifecycle(&experiment_id, LifecycleStage::Deleted, 3000)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_run_info("r1")
            .await
            .unwrap()
            .unwrap()
            .lifecycle_stage,
        "deleted"
    );
    // A deleted experiment still holds its name.
    let taken = store
        .create_experiment(new_experiment("renamed"))
        .await
        .unwrap_err();
    assert_eq!(taken.code, ErrorCode::ResourceAlreadyExists);
    store
        .set_experiment_lifecycle(&experiment_id, LifecycleStage::Active, 4000)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_run_info("r1")
            .await
            .unwrap()
            .unwrap()
            .lifecycle_stage,
        "active"
    );
}

async fn runs_and_batches(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let store = &fixture.store;
    store.create_run(new_run("r1", "0", 10)).await.unwrap();
    let batch = Batch {
        metrics: vec![
            metric("loss", 0.5, 100, 1),
            metric("loss", 0.25, 101, 2),
            metric("loss", 0.75, 99, 0),
            metric("acc", f64::NAN, 100, 0),
            metric("big", f64::INFINITY, 100, 0),
        ],
        params: vec![Param {
            key: "lr".into(),
            value: "0.1".into(),
        }],
        tags: vec![RunTag {
            key: "t".into(),
            value: "v".into(),
        }],
    };
    store.log_batch("r1", batch).await.unwrap();
    let run = store.get_run("r1").await.unwrap().unwrap();
    let latest: Vec<(String, f64, i64)> = run
        .data
        .metrics
        .iter()
        .map(|m| (m.key.clone(), m.value, m.step))
        .collect();
    assert_eq!(latest[0].0, "acc");
    assert!(latest[0].1.is_nan());
    assert_eq!(latest[1], ("big".to_owned(), f64::MAX, 0));
    assert_eq!(latest[2], ("loss".to_owned(), 0.25, 2));
    assert_eq!(
        run.data.params,
        vec![Param {
            key: "lr".into(),
            value: "0.1".into()
        }]
    );
    assert!(run.data.tags.contains(&RunTag {
        key: "t".into(),
        value: "v".into()
    }));

    // The same param value again is fine; a new value fails and nothing of the batch lands.
    let conflicting = Batch {
        metrics: vec![metric("loss", 9.0, 200, 9)],
        params: vec![Param {
            key: "lr".into(),
            value: "0.2".into(),
        }],
        tags: vec![RunTag {
            key: "t2".into(),
            value: "v2".into(),
        }],
    };
    let error = store.log_batch("r1", conflicting).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidParameterValue);
    assert!(
        error
            .message
            .contains("Changing param values is not allowed"),
        "{}",
        error.message
    );
    let run = store.get_run("r1").await.unwrap().unwrap();
    assert!(!run.data.tags.iter().any(|tag| tag.key == "t2"));
    let history = store
        .get_metric_history("r1", "loss", None, HistoryCursor::default())
        .await
        .unwrap();
    assert_eq!(
        history.items.iter().map(|m| m.step).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );

    // Duplicate metric rows are ignored, as MLflow does.
    store
        .log_batch(
            "r1",
            Batch {
                metrics: vec![metric("loss", 0.25, 101, 2)],
                ..Batch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .get_metric_history("r1", "loss", None, HistoryCursor::default())
            .await
            .unwrap()
            .items
            .len(),
        3
    );

    // Renaming through the tag and through update.
    store
        .log_batch(
            "r1",
            Batch {
                tags: vec![RunTag {
                    key: "mlflow.runName".into(),
                    value: "via-tag".into(),
                }],
                ..Batch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_run_info("r1").await.unwrap().unwrap().run_name,
        "via-tag"
    );
    let info = store
        .update_run(
            "r1",
            RunUpdate {
                status: Some(RunStatus::Finished),
                end_time: Some(500),
                run_name: Some("final".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (info.status.as_str(), info.end_time, info.run_name.as_str()),
        ("FINISHED", Some(500), "final")
    );
    let run = store.get_run("r1").await.unwrap().unwrap();
    assert!(run.data.tags.contains(&RunTag {
        key: "mlflow.runName".into(),
        value: "final".into()
    }));

    assert!(store.delete_run_tag("r1", "t").await.unwrap());
    assert!(!store.delete_run_tag("r1", "t").await.unwrap());
    store
        .set_run_lifecycle("r1", LifecycleStage::Deleted, 600)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_run_info("r1")
            .await
            .unwrap()
            .unwrap()
            .lifecycle_stage,
        "deleted"
    );
    assert!(store.get_run("missing").await.unwrap().is_none());
}

async fn metric_history_pages_and_samples(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let store = &fixture.store;
    store.create_run(new_run("r1", "0", 10)).await.unwrap();
    let metrics: Vec<Metric> = (0..1000)
        .map(|step| metric("m", step as f64, step, step))
        .collect();
    store
        .log_batch(
            "r1",
            Batch {
                metrics,
                ..Batch::default()
            },
        )
        .await
        .unwrap();

    let first = store
        .get_metric_history("r1", "m", Some(400), HistoryCursor::default())
        .await
        .unwrap();
    assert_eq!(first.items.len(), 400);
    let token = first.next_page_token.unwrap();
    let cursor = decode_history_token(Some(&token)).unwrap();
    assert_eq!(cursor.offset, 400);
    assert_eq!(cursor.after.unwrap().step, 399);
    let second = store
        .get_metric_history("r1", "m", Some(400), cursor)
        .await
        .unwrap();
    assert_eq!(second.items[0].step, 400);
    // MLflow's own token (an offset alone) pages too.
    let mlflow_token = HistoryCursor {
        offset: 800,
        after: None,
    };
    let third = store
        .get_metric_history("r1", "m", Some(400), mlflow_token)
        .await
        .unwrap();
    assert_eq!(third.items.len(), 200);
    assert!(third.next_page_token.is_none());

    // Points that tie on (timestamp, step) are paged by value, NaN included, none lost or repeated.
    let ties: Vec<Metric> = [3.0, f64::NAN, 1.0, 2.0, f64::INFINITY, 0.0]
        .into_iter()
        .map(|value| metric("tie", value, 7, 7))
        .collect();
    store
        .log_batch(
            "r1",
            Batch {
                metrics: ties,
                ..Batch::default()
            },
        )
        .await
        .unwrap();
    let mut paged = Vec::new();
    let mut cursor = HistoryCursor::default();
    loop {
        let page = store
            .get_metric_history("r1", "tie", Some(2), cursor)
            .await
            .unwrap();
        paged.extend(page.items.iter().map(|m| m.value));
        match page.next_page_token {
            Some(token) => cursor = decode_history_token(Some(&token)).unwrap(),
            None => break,
        }
    }
    assert_eq!(paged.len(), 6, "{paged:?}");
    assert_eq!(paged[0], 0.0);
    assert!(paged[1].is_nan(), "{paged:?}");
    assert_eq!(paged[2..], [1.0, 2.0, 3.0, f64::MAX], "{paged:?}");

    let sampled = store
        .get_metric_history_bulk_interval(&["r1".to_owned()], "m", None, 10)
        .await
        .unwrap();
    assert_eq!(sampled.len(), 10);
    assert_eq!(sampled.first().unwrap().step, 0);
    assert_eq!(sampled.last().unwrap().step, 999);
    assert!(sampled.iter().all(|m| m.run_id.as_deref() == Some("r1")));
    let ranged = store
        .get_metric_history_bulk_interval(&["r1".to_owned()], "m", Some((100, 199)), 5)
        .await
        .unwrap();
    assert_eq!(ranged.len(), 5);
    assert_eq!((ranged[0].step, ranged[4].step), (100, 199));

    let bulk = store
        .get_metric_history_bulk(&["r1".to_owned()], "m", 3)
        .await
        .unwrap();
    assert_eq!(
        bulk.iter().map(|m| m.step).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
}

/// A point as (step, timestamp, value).
type Point = (i64, i64, f64);

/// MLflow's sample of a sorted history by brute force: NTILE(`buckets`) over the rows, the first row of
/// each bucket, and the last row in place of the last bucket's.
fn ntile_sample(sorted: &[Point], buckets: usize) -> Vec<Point> {
    if sorted.len() <= buckets {
        return sorted.to_vec();
    }
    let (size, longer) = (sorted.len() / buckets, sorted.len() % buckets);
    let mut kept = Vec::new();
    let mut start = 0;
    for bucket in 0..buckets {
        kept.push(sorted[start]);
        start += if bucket < longer { size + 1 } else { size };
    }
    let last = sorted[sorted.len() - 1];
    if kept.last() != Some(&last) {
        kept.pop();
        kept.push(last);
    }
    kept
}

async fn metric_sampling_is_mlflows_ntile(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let store = &fixture.store;
    store.create_run(new_run("r1", "0", 10)).await.unwrap();
    // Four shapes: one point a step; every point at step 0 (`log_metric` without a step); groups of seven
    // points a step whose timestamps run backwards (so the order within a step is not the order logged);
    // and equal (step, timestamp) pairs told apart by value.
    let mut shapes: Vec<(&str, Vec<Point>)> = vec![
        (
            "unique",
            (0..1000).map(|i| (i, 5000 + i, (i % 13) as f64)).collect(),
        ),
        ("flat", (0..300).map(|i| (0, 9000 - i, i as f64)).collect()),
        (
            "groups",
            (0..700)
                .map(|i| (i / 7, 10_000 - i, (i % 5) as f64))
                .collect(),
        ),
        (
            "ties",
            (0..90).map(|i| (i / 30, 42, i as f64 / 4.0)).collect(),
        ),
    ];
    for (key, points) in &shapes {
        for chunk in points.chunks(400) {
            let metrics = chunk
                .iter()
                .map(|&(step, timestamp, value)| metric(key, value, timestamp, step))
                .collect();
            store
                .log_batch(
                    "r1",
                    Batch {
                        metrics,
                        ..Batch::default()
                    },
                )
                .await
                .unwrap();
        }
    }
    for (key, points) in &mut shapes {
        points.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
        for range in [None, Some((3, 40)), Some((0, 0)), Some((2000, 3000))] {
            let in_range: Vec<_> = points
                .iter()
                .copied()
                .filter(|p| range.is_none_or(|(lo, hi)| (lo..=hi).contains(&p.0)))
                .collect();
            for buckets in [1, 2, 7, 50, 299, 300, 2500] {
                let sampled = store
                    .get_metric_history_bulk_interval(&["r1".to_owned()], key, range, buckets)
                    .await
                    .unwrap();
                let got: Vec<_> = sampled
                    .iter()
                    .map(|m| (m.step, m.timestamp, m.value))
                    .collect();
                assert_eq!(
                    got,
                    ntile_sample(&in_range, buckets),
                    "{backend:?} {key} {range:?} {buckets}"
                );
                assert!(sampled.iter().all(|m| m.run_id.as_deref() == Some("r1")));
            }
        }
    }
}

async fn inputs_outputs_and_dataset_search(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let store = &fixture.store;
    store.create_run(new_run("r1", "0", 10)).await.unwrap();
    let input = DatasetInput {
        tags: vec![InputTag {
            key: "mlflow.data.context".into(),
            value: "training".into(),
        }],
        dataset: Dataset {
            name: "iris".into(),
            digest: "abc".into(),
            source_type: "local".into(),
            source: "{}".into(),
            schema: Some("{}".into()),
            profile: None,
        },
    };
    let write = RunInputsWrite {
        datasets: vec![input.clone(), input.clone()],
        model_ids: vec!["m-1".into()],
    };
    store.log_inputs("r1", "0", write.clone()).await.unwrap();
    store.log_inputs("r1", "0", write).await.unwrap();
    store
        .log_outputs(
            "r1",
            vec![ModelOutput {
                model_id: "m-2".into(),
                step: Some(3),
            }],
        )
        .await
        .unwrap();
    let run = store.get_run("r1").await.unwrap().unwrap();
    assert_eq!(run.inputs.dataset_inputs, vec![input]);
    assert_eq!(run.inputs.model_inputs.len(), 1);
    assert_eq!(
        run.outputs.unwrap().model_outputs,
        vec![ModelOutput {
            model_id: "m-2".into(),
            step: Some(3)
        }]
    );
    let summaries = store.search_datasets(&["0".to_owned()]).await.unwrap();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].context.as_deref(), Some("training"));
}

async fn search_runs_pages_in_sql(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let store = &fixture.store;
    for index in 0..25 {
        store
            .create_run(new_run(&format!("run{index:02}"), "0", 1000 + index))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = store
            .search_runs(RunQuery {
                experiment_ids: vec!["0".into()],
                filter: vec![],
                order_by: vec![],
                view_type: ViewType::ActiveOnly,
                max_results: 10,
                offset,
            })
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|run| run.info.run_id.clone()));
        match page.next_page_token {
            Some(token) => offset = ferroflow_core::ids::decode_page_token(Some(&token)).unwrap(),
            None => break,
        }
    }
    // Newest first, every run exactly once.
    let expected: Vec<String> = (0..25)
        .rev()
        .map(|index| format!("run{index:02}"))
        .collect();
    assert_eq!(seen, expected);
}

async fn concurrent_writers_never_see_locked_database(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let store = fixture.store.clone();
    for index in 0..8 {
        store
            .create_run(new_run(&format!("w{index}"), "0", index))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for index in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for step in 0..50 {
                store
                    .log_batch(
                        &format!("w{index}"),
                        Batch {
                            metrics: vec![metric("m", step as f64, step, step)],
                            ..Batch::default()
                        },
                    )
                    .await
                    .unwrap();
                store.get_run(&format!("w{index}")).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for index in 0..8 {
        let history = store
            .get_metric_history(&format!("w{index}"), "m", None, HistoryCursor::default())
            .await
            .unwrap();
        assert_eq!(history.items.len(), 50);
    }
}

/// A TCP proxy in front of a database server that can cut every connection and refuse new ones (its
/// port closed, as a stopped server's), then listen again: the database "goes away and comes back" for
/// the store behind it.
struct CuttableProxy {
    port: u16,
    target: String,
    relays: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl CuttableProxy {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            port: listener.local_addr().unwrap().port(),
            target,
            relays: Arc::default(),
            accept: std::sync::Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let relays = self.relays.clone();
        let target = self.target.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                relays.lock().unwrap().push(relay.abort_handle());
            }
        });
        *self.accept.lock().unwrap() = Some(accept);
    }

    /// Closes the port and every open connection.
    async fn cut(&self) {
        let accept = self.accept.lock().unwrap().take();
        if let Some(accept) = accept {
            accept.abort();
            let _ = accept.await;
        }
        for relay in self.relays.lock().unwrap().drain(..) {
            relay.abort();
        }
    }

    /// Listens on the same port again.
    async fn restore(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.serve(listener);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.lock().unwrap().take() {
            accept.abort();
        }
        for relay in self.relays.lock().unwrap().drain(..) {
            relay.abort();
        }
    }
}

/// While the database is unreachable, requests fail with TEMPORARILY_UNAVAILABLE (and a batch writes
/// nothing); once it is back, the same store serves again without a restart.
async fn database_outage_is_unavailable_then_recovers(backend: Backend) {
    if backend == Backend::Sqlite {
        return; // A file does not go away.
    }
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    database.open().await.unwrap().close().await;
    let proxy = CuttableProxy::start(database.server_address()).await;
    let store = SqlStore::open(
        &database.uri_through(proxy.port),
        "mlflow-artifacts:/",
        &crate::backends::test_pool_settings(),
    )
    .await
    .unwrap();
    store.create_run(new_run("r1", "0", 10)).await.unwrap();
    store
        .log_batch(
            "r1",
            Batch {
                metrics: vec![metric("m", 1.0, 1, 1)],
                ..Batch::default()
            },
        )
        .await
        .unwrap();

    proxy.cut().await;
    let failed = store
        .log_batch(
            "r1",
            Batch {
                metrics: vec![metric("m", 2.0, 2, 2)],
                params: vec![Param {
                    key: "p".into(),
                    value: "1".into(),
                }],
                ..Batch::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(failed.code, ErrorCode::TemporarilyUnavailable, "{failed:?}");
    let failed = store.get_run("r1").await.unwrap_err();
    assert_eq!(failed.code, ErrorCode::TemporarilyUnavailable, "{failed:?}");
    assert_eq!(
        store.ping().await.unwrap_err().code,
        ErrorCode::TemporarilyUnavailable
    );

    proxy.restore().await;
    let run = store.get_run("r1").await.unwrap().unwrap();
    assert_eq!(
        run.data.metrics[0].value, 1.0,
        "the failed batch wrote nothing"
    );
    assert!(run.data.params.is_empty());
    store
        .log_batch(
            "r1",
            Batch {
                metrics: vec![metric("m", 3.0, 3, 3)],
                ..Batch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .get_metric_history("r1", "m", None, HistoryCursor::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    store.close().await;
}

/// Batches larger than one multi-row INSERT, `latest_metrics` kept at MLflow's newest across batches, and
/// duplicate tag keys in one batch (the later wins).
async fn large_batches_keep_the_latest_metric(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let store = &fixture.store;
    store.create_run(new_run("r1", "0", 10)).await.unwrap();
    let metrics: Vec<Metric> = (0..1201)
        .map(|step| metric(&format!("k{}", step % 3), step as f64, 1000 + step, step))
        .collect();
    let params: Vec<Param> = (0..600)
        .map(|index| Param {
            key: format!("p{index:03}"),
            value: index.to_string(),
        })
        .collect();
    let tags = vec![
        RunTag {
            key: "t".into(),
            value: "first".into(),
        },
        RunTag {
            key: "mlflow.runName".into(),
            value: "renamed".into(),
        },
        RunTag {
            key: "t".into(),
            value: "second".into(),
        },
    ];
    store
        .log_batch(
            "r1",
            Batch {
                metrics,
                params: params.clone(),
                tags,
            },
        )
        .await
        .unwrap();
    let latest = |run: &Run| -> Vec<(String, f64, i64)> {
        run.data
            .metrics
            .iter()
            .map(|m| (m.key.clone(), m.value, m.step))
            .collect()
    };
    let run = store.get_run("r1").await.unwrap().unwrap();
    assert_eq!(
        latest(&run),
        vec![
            ("k0".to_owned(), 1200.0, 1200),
            ("k1".to_owned(), 1198.0, 1198),
            ("k2".to_owned(), 1199.0, 1199),
        ]
    );
    assert_eq!(run.data.params.len(), 600);
    assert_eq!(run.data.params[599].key, "p599");
    assert!(run.data.tags.contains(&RunTag {
        key: "t".into(),
        value: "second".into()
    }));
    assert_eq!(run.info.run_name, "renamed");
    let history = store
        .get_metric_history("r1", "k1", None, HistoryCursor::default())
        .await
        .unwrap();
    assert_eq!(history.items.len(), 400);

    // An older step does not replace the latest; a newer one (or the same step at a later time, or the
    // same step and time with a greater value) does. The same params again are accepted.
    let next = vec![
        metric("k0", -1.0, 5000, 10),
        metric("k1", -2.0, 5000, 1198),
        metric("k2", 7777.0, 1000 + 1199, 1199),
        metric("k3", 3.0, 1, 0),
    ];
    store
        .log_batch(
            "r1",
            Batch {
                metrics: next,
                params,
                tags: Vec::new(),
            },
        )
        .await
        .unwrap();
    let run = store.get_run("r1").await.unwrap().unwrap();
    assert_eq!(
        latest(&run),
        vec![
            ("k0".to_owned(), 1200.0, 1200),
            ("k1".to_owned(), -2.0, 1198),
            ("k2".to_owned(), 7777.0, 1199),
            ("k3".to_owned(), 3.0, 0),
        ]
    );
}

on_every_backend!(
    new_database_has_default_experiment_and_revision,
    other_revision_is_refused_and_left_untouched,
    non_mlflow_database_is_refused,
    experiments_create_rename_tag_and_lifecycle,
    runs_and_batches,
    large_batches_keep_the_latest_metric,
    metric_history_pages_and_samples,
    metric_sampling_is_mlflows_ntile,
    inputs_outputs_and_dataset_search,
    search_runs_pages_in_sql,
    concurrent_writers_never_see_locked_database,
    database_outage_is_unavailable_then_recovers,
);
