//! The evaluation dataset store suite: create with tags and experiments, get, search (filter, order,
//! pages, experiments), tags, record upserts keyed by inputs with the dataset's schema, profile and
//! digest, record pages and deletion, experiment links, and delete with everything under it.

use crate::backends::{Backend, TestDatabase};
use ferroflow_core::eval_datasets::{
    dataset_digest, parse_dataset_filter, record_input, DatasetKey, DatasetQuery, DatasetRow,
    EvalDatasetStore, RecordCursor, RecordInput, UpsertCounts,
};
use ferroflow_core::model::NewExperiment;
use ferroflow_core::store::TrackingStore;
use ferroflow_core::trace_json::OrderedJson;
use ferroflow_store::SqlStore;

async fn experiment(store: &SqlStore, name: &str) -> String {
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
}

fn dataset(id: &str, name: &str, created: i64, tags: &[(&str, &str)]) -> DatasetRow {
    DatasetRow {
        dataset_id: id.into(),
        name: name.into(),
        schema: None,
        profile: None,
        digest: Some(dataset_digest(name, created)),
        created_time: Some(created),
        last_update_time: Some(created),
        created_by: Some("ann".into()),
        last_updated_by: Some("ann".into()),
        tags: tags
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
    }
}

fn records(json: &str) -> Vec<RecordInput> {
    match OrderedJson::parse(json).unwrap() {
        OrderedJson::Array(items) => items
            .iter()
            .map(|item| record_input(item).unwrap())
            .collect(),
        _ => panic!("not an array"),
    }
}

fn search(
    experiment_ids: &[&str],
    filter: &str,
    order_by: Vec<(DatasetKey, bool)>,
) -> DatasetQuery {
    DatasetQuery {
        experiment_ids: experiment_ids.iter().map(|id| (*id).to_owned()).collect(),
        filter: parse_dataset_filter(filter).unwrap(),
        order_by,
        max_results: 10,
        offset: 0,
    }
}

async fn ids(store: &SqlStore, query: &DatasetQuery) -> Vec<String> {
    EvalDatasetStore::search_datasets(store, query)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.dataset_id)
        .collect()
}

async fn datasets_create_get_search_and_tags(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = database.open().await.unwrap();
    let experiment = experiment(&store, "evals").await;
    store
        .create_dataset(
            &dataset(
                "d-a",
                "qa_alpha",
                100,
                &[("env", "prod"), ("mlflow.user", "ann")],
            ),
            std::slice::from_ref(&experiment),
        )
        .await
        .unwrap();
    store
        .create_dataset(&dataset("d-b", "qa_beta", 200, &[("env", "dev")]), &[])
        .await
        .unwrap();
    store
        .create_dataset(
            &dataset("d-c", "other", 300, &[]),
            std::slice::from_ref(&experiment),
        )
        .await
        .unwrap();

    let got = store.get_dataset("d-a").await.unwrap().unwrap();
    assert_eq!(
        got,
        dataset(
            "d-a",
            "qa_alpha",
            100,
            &[("env", "prod"), ("mlflow.user", "ann")]
        )
    );
    assert!(store.get_dataset("d-zz").await.unwrap().is_none());
    assert_eq!(
        store.dataset_experiment_ids("d-a").await.unwrap(),
        vec![experiment.clone()]
    );

    let newest = vec![(DatasetKey::CreatedTime, false)];
    assert_eq!(
        ids(&store, &search(&[], "", newest.clone())).await,
        ["d-c", "d-b", "d-a"]
    );
    assert_eq!(
        ids(&store, &search(&[&experiment], "", newest.clone())).await,
        ["d-c", "d-a"]
    );
    assert_eq!(
        ids(
            &store,
            &search(&[], "name LIKE 'qa_%'", vec![(DatasetKey::Name, true)])
        )
        .await,
        ["d-a", "d-b"]
    );
    assert_eq!(
        ids(&store, &search(&[], "tags.env = 'dev'", newest.clone())).await,
        ["d-b"]
    );
    assert_eq!(
        ids(
            &store,
            &search(
                &[],
                "created_time >= 200 AND created_by = 'ann'",
                newest.clone()
            )
        )
        .await,
        ["d-c", "d-b"]
    );
    assert_eq!(
        ids(
            &store,
            &search(&[], "name IN ('other', 'qa_beta')", newest.clone())
        )
        .await,
        ["d-c", "d-b"]
    );
    assert_eq!(
        ids(
            &store,
            &search(&[], "tags.env ILIKE 'PRO%'", newest.clone())
        )
        .await,
        ["d-a"]
    );
    let mut page = search(&[], "", newest.clone());
    page.max_results = 1;
    page.offset = 1;
    // One row more than asked for tells the service another page follows.
    assert_eq!(ids(&store, &page).await, ["d-b", "d-a"]);

    assert!(store
        .set_dataset_tags(
            "d-b",
            &[("env".into(), "staging".into()), ("k".into(), "v".into())]
        )
        .await
        .unwrap());
    assert!(!store.set_dataset_tags("d-zz", &[]).await.unwrap());
    store.delete_dataset_tag("d-b", "k").await.unwrap();
    store.delete_dataset_tag("d-b", "absent").await.unwrap();
    assert_eq!(
        store.get_dataset("d-b").await.unwrap().unwrap().tags,
        [("env".to_owned(), "staging".to_owned())]
    );
}

async fn records_upsert_page_delete_and_cascade(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = database.open().await.unwrap();
    store
        .create_dataset(&dataset("d-r", "recs", 100, &[]), &[])
        .await
        .unwrap();
    let counts = store
        .upsert_records(
            "d-r",
            &records(
                r#"[{"inputs": {"q": "a", "n": 1}, "expectations": {"e": 1}, "tags": {"mlflow.user": "bob"}},
                    {"inputs": {"q": "b"}, "outputs": {"text": "B"},
                     "source": {"source_type": "trace", "source_data": {"trace_id": "tr-1"}}},
                    {"inputs": {"n": 1, "q": "a"}, "expectations": {"f": true}}]"#,
            ),
            500,
        )
        .await
        .unwrap();
    assert_eq!(
        counts,
        Some(UpsertCounts {
            inserted: 2,
            updated: 1
        })
    );
    assert_eq!(store.upsert_records("d-zz", &[], 500).await.unwrap(), None);

    let row = store.get_dataset("d-r").await.unwrap().unwrap();
    assert_eq!(row.profile.as_deref(), Some(r#"{"num_records": 2}"#));
    assert_eq!(row.digest, Some(dataset_digest("recs", 500)));
    assert_eq!(row.last_update_time, Some(500));
    assert_eq!(row.last_updated_by.as_deref(), Some("bob"));
    assert_eq!(
        row.schema.as_deref(),
        Some(
            r#"{"inputs": {"q": "string", "n": "integer"}, "outputs": {"text": "string"}, "expectations": {"e": "integer", "f": "boolean"}, "version": "1.0"}"#
        )
    );

    let all = store
        .load_records("d-r", &RecordCursor::Start, 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let first = all
        .iter()
        .find(|record| record.inputs.contains("\"a\""))
        .unwrap();
    assert_eq!(
        first.expectations.as_deref().map(OrderedJson::parse),
        Some(OrderedJson::parse(r#"{"e": 1, "f": true}"#))
    );
    assert_eq!(
        first.outputs.as_deref().map(OrderedJson::parse),
        Some(OrderedJson::parse(r#"{"mlflow_wrapped": {}}"#))
    );
    assert_eq!(first.created_by.as_deref(), Some("bob"));
    let second = all
        .iter()
        .find(|record| record.inputs.contains("\"b\""))
        .unwrap();
    assert_eq!(second.source_id.as_deref(), Some("tr-1"));
    assert_eq!(second.source_type.as_deref(), Some("TRACE"));

    let page = store
        .load_records("d-r", &RecordCursor::Start, 1)
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    let after = RecordCursor::After(
        page[0].created_time.unwrap(),
        page[0].dataset_record_id.clone(),
    );
    let rest = store.load_records("d-r", &after, 1).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].dataset_record_id, page[1].dataset_record_id);

    assert_eq!(
        store
            .delete_records("d-r", &[first.dataset_record_id.clone(), "dr-none".into()])
            .await
            .unwrap(),
        1
    );
    let row = store.get_dataset("d-r").await.unwrap().unwrap();
    assert_eq!(row.profile.as_deref(), Some(r#"{"num_records": 1}"#));

    store.delete_dataset("d-r").await.unwrap();
    assert!(store.get_dataset("d-r").await.unwrap().is_none());
    assert!(store
        .load_records("d-r", &RecordCursor::Start, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn experiment_links_add_and_remove(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = database.open().await.unwrap();
    let one = experiment(&store, "one").await;
    let two = experiment(&store, "two").await;
    store
        .create_dataset(&dataset("d-x", "x", 100, &[]), std::slice::from_ref(&one))
        .await
        .unwrap();
    assert_eq!(
        store
            .existing_experiment_ids(&[one.clone(), "424242".into(), "not-a-number".into()])
            .await
            .unwrap(),
        std::slice::from_ref(&one)
    );
    store
        .add_dataset_experiments("d-x", &[one.clone(), two.clone()], 700)
        .await
        .unwrap();
    let mut linked = store.dataset_experiment_ids("d-x").await.unwrap();
    linked.sort();
    let mut expected = vec![one.clone(), two.clone()];
    expected.sort();
    assert_eq!(linked, expected);
    assert_eq!(
        store
            .get_dataset("d-x")
            .await
            .unwrap()
            .unwrap()
            .last_update_time,
        Some(700)
    );
    store
        .remove_dataset_experiments("d-x", std::slice::from_ref(&one), 800)
        .await
        .unwrap();
    assert_eq!(
        store.dataset_experiment_ids("d-x").await.unwrap(),
        std::slice::from_ref(&two)
    );
    // Removing a link that does not exist leaves the dataset as it was.
    store
        .remove_dataset_experiments("d-x", std::slice::from_ref(&one), 900)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_dataset("d-x")
            .await
            .unwrap()
            .unwrap()
            .last_update_time,
        Some(800)
    );
    store.delete_dataset("d-x").await.unwrap();
    assert!(store
        .dataset_experiment_ids("d-x")
        .await
        .unwrap()
        .is_empty());
}

on_every_backend!(
    datasets_create_get_search_and_tags,
    records_upsert_page_delete_and_cascade,
    experiment_links_add_and_remove,
);
