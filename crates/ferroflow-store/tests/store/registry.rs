//! The registry store suite: registered models, versions, tags, aliases, stages, rename and delete
//! cascades, and both searches with prompts hidden unless asked for.

use crate::backends::{Backend, TestDatabase};
use ferroflow_core::registry::{
    NewModelVersion, NewRegisteredModel, RegistryQuery, RegistryStore, RenameOutcome,
};
use ferroflow_core::registry_filter::{
    is_querying_prompts, parse_model_version_filter, parse_model_version_order_by,
    parse_registered_model_filter, parse_registered_model_order_by,
};
use ferroflow_proto::registry::{ModelVersionTag, RegisteredModelAlias, RegisteredModelTag};
use ferroflow_store::SqlStore;

struct Fixture {
    store: SqlStore,
    _database: TestDatabase,
}

async fn fixture(backend: Backend) -> Option<Fixture> {
    let database = TestDatabase::create(backend).await?;
    let store = database.open().await.unwrap();
    Some(Fixture {
        store,
        _database: database,
    })
}

fn model_tag(key: &str, value: &str) -> RegisteredModelTag {
    RegisteredModelTag {
        key: key.into(),
        value: value.into(),
    }
}

fn version_tag(key: &str, value: &str) -> ModelVersionTag {
    ModelVersionTag {
        key: key.into(),
        value: value.into(),
    }
}

async fn create_model(store: &SqlStore, name: &str, tags: Vec<RegisteredModelTag>, time: i64) {
    store
        .create_registered_model(NewRegisteredModel {
            name: name.into(),
            description: String::new(),
            tags,
            creation_time: time,
        })
        .await
        .unwrap()
        .unwrap();
}

async fn create_version(
    store: &SqlStore,
    name: &str,
    tags: Vec<ModelVersionTag>,
    time: i64,
) -> String {
    store
        .create_model_version(NewModelVersion {
            name: name.into(),
            source: "s3://bucket/model".into(),
            storage_location: "s3://bucket/model".into(),
            run_id: String::new(),
            run_link: String::new(),
            description: String::new(),
            tags,
            creation_time: time,
        })
        .await
        .unwrap()
        .unwrap()
        .version
}

fn model_query(
    filter: &str,
    order_by: &[&str],
    max_results: usize,
    offset: usize,
) -> RegistryQuery {
    let filter = parse_registered_model_filter(filter).unwrap();
    let order: Vec<String> = order_by.iter().map(|item| (*item).to_owned()).collect();
    RegistryQuery {
        include_prompts: is_querying_prompts(&filter),
        filter,
        order_by: parse_registered_model_order_by(&order).unwrap(),
        max_results,
        offset,
    }
}

fn version_query(filter: &str, order_by: &[&str]) -> RegistryQuery {
    let filter = parse_model_version_filter(filter).unwrap();
    let order: Vec<String> = order_by.iter().map(|item| (*item).to_owned()).collect();
    RegistryQuery {
        include_prompts: is_querying_prompts(&filter),
        filter,
        order_by: parse_model_version_order_by(&order).unwrap(),
        max_results: 100,
        offset: 0,
    }
}

async fn model_and_versions_round_trip(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let store = &fixture.store;
    create_model(store, "m", vec![model_tag("team", "a")], 10).await;
    assert!(store
        .create_registered_model(NewRegisteredModel {
            name: "m".into(),
            description: String::new(),
            tags: Vec::new(),
            creation_time: 11,
        })
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        create_version(store, "m", vec![version_tag("k", "v")], 20).await,
        "1"
    );
    assert_eq!(create_version(store, "m", Vec::new(), 30).await, "2");

    let model = store.get_registered_model("m").await.unwrap().unwrap();
    assert_eq!(model.creation_timestamp, Some(10));
    assert_eq!(model.last_updated_timestamp, Some(30));
    assert_eq!(model.description, None);
    assert_eq!(model.tags, vec![model_tag("team", "a")]);
    let latest: Vec<(&str, Option<&str>)> = model
        .latest_versions
        .iter()
        .map(|version| (version.version.as_str(), version.current_stage.as_deref()))
        .collect();
    assert_eq!(latest, vec![("2", Some("None"))]);

    let version = store.get_model_version("m", 1).await.unwrap().unwrap();
    assert_eq!(version.status.as_deref(), Some("READY"));
    assert_eq!(version.description.as_deref(), Some(""));
    assert_eq!(version.run_id.as_deref(), Some(""));
    assert_eq!(version.tags, vec![version_tag("k", "v")]);
    assert_eq!(
        store.get_model_version_download_uri("m", 1).await.unwrap(),
        Some("s3://bucket/model".to_owned())
    );
    assert!(store.get_model_version("m", 3).await.unwrap().is_none());
    assert!(store
        .create_model_version(NewModelVersion {
            name: "missing".into(),
            source: "s3://b".into(),
            storage_location: "s3://b".into(),
            run_id: String::new(),
            run_link: String::new(),
            description: String::new(),
            tags: Vec::new(),
            creation_time: 1,
        })
        .await
        .unwrap()
        .is_none());

    let updated = store
        .update_model_version("m", 1, Some("first"), 40)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.description.as_deref(), Some("first"));
    assert_eq!(updated.last_updated_timestamp, Some(40));
    let model = store
        .update_registered_model("m", "described", 50)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(model.description.as_deref(), Some("described"));
}

async fn tags_and_aliases(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let store = &fixture.store;
    create_model(store, "m", Vec::new(), 1).await;
    create_version(store, "m", Vec::new(), 2).await;
    create_version(store, "m", Vec::new(), 3).await;
    assert!(store
        .set_registered_model_tag("m", model_tag("a", "1"))
        .await
        .unwrap());
    assert!(store
        .set_registered_model_tag("m", model_tag("a", "2"))
        .await
        .unwrap());
    assert!(!store
        .set_registered_model_tag("nope", model_tag("a", "1"))
        .await
        .unwrap());
    assert!(store
        .set_model_version_tag("m", 2, version_tag("q", "x"))
        .await
        .unwrap());
    assert!(store
        .set_model_version_tag("m", 2, version_tag("q", "y"))
        .await
        .unwrap());
    assert!(!store
        .set_model_version_tag("m", 9, version_tag("q", "y"))
        .await
        .unwrap());
    assert!(store
        .set_registered_model_alias("m", "champ", 1)
        .await
        .unwrap());
    assert!(store
        .set_registered_model_alias("m", "champ", 2)
        .await
        .unwrap());
    assert!(store
        .set_registered_model_alias("m", "beta", 1)
        .await
        .unwrap());
    assert!(!store
        .set_registered_model_alias("m", "gone", 7)
        .await
        .unwrap());

    let model = store.get_registered_model("m").await.unwrap().unwrap();
    assert_eq!(model.tags, vec![model_tag("a", "2")]);
    assert_eq!(
        model.aliases,
        vec![
            RegisteredModelAlias {
                alias: "beta".into(),
                version: "1".into()
            },
            RegisteredModelAlias {
                alias: "champ".into(),
                version: "2".into()
            },
        ]
    );
    let version = store.get_model_version("m", 2).await.unwrap().unwrap();
    assert_eq!(version.tags, vec![version_tag("q", "y")]);
    assert_eq!(version.aliases, vec!["champ".to_owned()]);
    assert_eq!(
        store
            .get_registered_model_alias("m", "champ")
            .await
            .unwrap(),
        Some(2)
    );

    assert!(store.delete_registered_model_tag("m", "a").await.unwrap());
    assert!(store.delete_registered_model_tag("m", "a").await.unwrap());
    assert!(!store
        .delete_registered_model_tag("nope", "a")
        .await
        .unwrap());
    assert!(store.delete_model_version_tag("m", 2, "q").await.unwrap());
    assert!(store
        .delete_registered_model_alias("m", "beta")
        .await
        .unwrap());
    assert!(!store
        .delete_registered_model_alias("nope", "beta")
        .await
        .unwrap());
    let model = store.get_registered_model("m").await.unwrap().unwrap();
    assert!(model.tags.is_empty());
    assert_eq!(model.aliases.len(), 1);
    assert!(store
        .get_model_version("m", 2)
        .await
        .unwrap()
        .unwrap()
        .tags
        .is_empty());
}

async fn stages_and_deleted_versions(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let store = &fixture.store;
    create_model(store, "m", Vec::new(), 1).await;
    for time in 2..5 {
        create_version(store, "m", Vec::new(), time).await;
    }
    store
        .transition_model_version_stage("m", 1, "Production", false, 10)
        .await
        .unwrap()
        .unwrap();
    let moved = store
        .transition_model_version_stage("m", 2, "Production", true, 11)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.current_stage.as_deref(), Some("Production"));
    let first = store.get_model_version("m", 1).await.unwrap().unwrap();
    assert_eq!(first.current_stage.as_deref(), Some("Archived"));
    assert!(store
        .transition_model_version_stage("m", 9, "Staging", true, 12)
        .await
        .unwrap()
        .is_none());

    store
        .set_registered_model_alias("m", "prod", 2)
        .await
        .unwrap();
    assert!(store.delete_model_version("m", 2, 20).await.unwrap());
    assert!(!store.delete_model_version("m", 2, 21).await.unwrap());
    assert!(store.get_model_version("m", 2).await.unwrap().is_none());
    assert!(store
        .get_model_version_download_uri("m", 2)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.get_registered_model_alias("m", "prod").await.unwrap(),
        None
    );
    // The number of a deleted version is not reused.
    assert_eq!(create_version(store, "m", Vec::new(), 30).await, "4");
    let model = store.get_registered_model("m").await.unwrap().unwrap();
    let mut latest: Vec<(String, String)> = model
        .latest_versions
        .iter()
        .map(|version| {
            (
                version.current_stage.clone().unwrap_or_default(),
                version.version.clone(),
            )
        })
        .collect();
    latest.sort();
    assert_eq!(
        latest,
        vec![
            ("Archived".to_owned(), "1".to_owned()),
            ("None".to_owned(), "4".to_owned())
        ]
    );
}

async fn rename_and_delete_cascade(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let store = &fixture.store;
    create_model(store, "old", vec![model_tag("t", "1")], 1).await;
    create_model(store, "taken", Vec::new(), 1).await;
    create_version(store, "old", vec![version_tag("k", "v")], 2).await;
    store
        .set_registered_model_alias("old", "a", 1)
        .await
        .unwrap();
    assert!(matches!(
        store
            .rename_registered_model("old", "taken", 3)
            .await
            .unwrap(),
        RenameOutcome::NameTaken
    ));
    assert!(matches!(
        store.rename_registered_model("nope", "x", 3).await.unwrap(),
        RenameOutcome::NotFound
    ));
    let RenameOutcome::Renamed(model) = store
        .rename_registered_model("old", "new", 5)
        .await
        .unwrap()
    else {
        panic!("rename failed");
    };
    assert_eq!(model.name, "new");
    assert_eq!(model.tags, vec![model_tag("t", "1")]);
    assert_eq!(model.aliases.len(), 1);
    let version = store.get_model_version("new", 1).await.unwrap().unwrap();
    assert_eq!(version.tags, vec![version_tag("k", "v")]);
    assert_eq!(version.last_updated_timestamp, Some(5));
    assert!(store.get_registered_model("old").await.unwrap().is_none());

    assert!(store.delete_registered_model("new").await.unwrap());
    assert!(!store.delete_registered_model("new").await.unwrap());
    assert!(store.get_model_version("new", 1).await.unwrap().is_none());
    // The name can be used again, from version 1.
    create_model(store, "new", Vec::new(), 9).await;
    assert_eq!(create_version(store, "new", Vec::new(), 10).await, "1");
    assert!(store
        .get_model_version("new", 1)
        .await
        .unwrap()
        .unwrap()
        .tags
        .is_empty());
}

async fn search_models_and_prompts(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let store = &fixture.store;
    create_model(store, "a-alpha", vec![model_tag("kind", "x")], 3).await;
    create_model(store, "b-Beta", vec![model_tag("kind", "y")], 1).await;
    create_model(store, "c-gamma", vec![model_tag("kind", "x")], 2).await;
    create_model(
        store,
        "prompt",
        vec![model_tag("mlflow.prompt.is_prompt", "true")],
        4,
    )
    .await;
    let names = |page: ferroflow_core::registry::RegistryPage<
        ferroflow_proto::registry::RegisteredModel,
    >| {
        page.items
            .into_iter()
            .map(|model| model.name)
            .collect::<Vec<_>>()
    };
    let search = |filter: &'static str, order: &'static [&'static str]| {
        store.search_registered_models(model_query(filter, order, 100, 0))
    };
    assert_eq!(
        names(search("", &[]).await.unwrap()),
        ["a-alpha", "b-Beta", "c-gamma"]
    );
    assert_eq!(
        names(search("tags.kind = 'x'", &[]).await.unwrap()),
        ["a-alpha", "c-gamma"]
    );
    assert_eq!(
        names(search("name LIKE '%a'", &[]).await.unwrap()),
        ["a-alpha", "b-Beta", "c-gamma"]
    );
    assert_eq!(
        names(search("name LIKE 'b-b%'", &[]).await.unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        names(search("name ILIKE 'b-b%'", &[]).await.unwrap()),
        ["b-Beta"]
    );
    assert_eq!(
        names(search("name = 'b-beta'", &[]).await.unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        names(search("name IN ('a-alpha', 'prompt')", &[]).await.unwrap()),
        ["a-alpha"]
    );
    assert_eq!(
        names(
            search("name != 'a-alpha'", &["timestamp DESC"])
                .await
                .unwrap()
        ),
        ["c-gamma", "b-Beta"]
    );
    assert_eq!(
        names(
            search("tags.`mlflow.prompt.is_prompt` = 'true'", &[])
                .await
                .unwrap()
        ),
        ["prompt"]
    );
    assert_eq!(
        names(
            search("tag.`mlflow.prompt.is_prompt` != 'true'", &[])
                .await
                .unwrap()
        ),
        ["a-alpha", "b-Beta", "c-gamma"]
    );
    let page = store
        .search_registered_models(model_query("", &["name DESC"], 2, 0))
        .await
        .unwrap();
    assert!(page.has_more);
    assert_eq!(names(page), ["c-gamma", "b-Beta"]);
    let page = store
        .search_registered_models(model_query("", &["name DESC"], 2, 2))
        .await
        .unwrap();
    assert!(!page.has_more);
    assert_eq!(names(page), ["a-alpha"]);
}

async fn search_versions(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let store = &fixture.store;
    create_model(store, "m", Vec::new(), 1).await;
    create_model(
        store,
        "p",
        vec![model_tag("mlflow.prompt.is_prompt", "true")],
        1,
    )
    .await;
    create_version(store, "m", vec![version_tag("t", "a")], 2).await;
    create_version(store, "m", vec![version_tag("t", "b")], 3).await;
    create_version(store, "m", Vec::new(), 4).await;
    create_version(
        store,
        "p",
        vec![version_tag("mlflow.prompt.is_prompt", "true")],
        5,
    )
    .await;
    store.delete_model_version("m", 3, 6).await.unwrap();
    let keys = |filter: &'static str, order: &'static [&'static str]| async move {
        store
            .search_model_versions(version_query(filter, order))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|version| format!("{}/{}", version.name, version.version))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys("", &[]).await, ["m/2", "m/1"]);
    assert_eq!(keys("tags.t = 'b'", &[]).await, ["m/2"]);
    assert_eq!(
        keys("version_number <= 2", &["version_number ASC"]).await,
        ["m/1", "m/2"]
    );
    assert_eq!(
        keys("source_path = 's3://bucket/model'", &[]).await,
        ["m/2", "m/1"]
    );
    assert_eq!(
        keys("run_id IN ('x', 'y')", &[]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        keys("tags.`mlflow.prompt.is_prompt` = 'true'", &[]).await,
        ["p/1"]
    );
}

on_every_backend!(
    model_and_versions_round_trip,
    tags_and_aliases,
    stages_and_deleted_versions,
    rename_and_delete_cascade,
    search_models_and_prompts,
    search_versions,
);
