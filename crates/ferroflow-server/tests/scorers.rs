//! The registered scorer endpoints end to end in process: requests through the whole router onto a real
//! SQLite store, with MLflow 3.17.2's wire shapes and errors, and custom scorers refused or accepted by
//! the server's setting.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Answer, TestApp};
use ferroflow_server::{AppState, ServerConfig};
use serde_json::{json, Value};

const API: &str = "/api/3.0/mlflow/scorers";

const BUILTIN: &str = r#"{"name": "safety", "builtin_scorer_class": "Safety", "builtin_scorer_pydantic_data": {"name": "safety", "model": null}}"#;
const CUSTOM: &str = r#"{"name": "exact", "call_source": "return True", "call_signature": "(outputs)", "original_func_name": "exact"}"#;

/// The whole router on a fresh SQLite store, accepting custom scorers when `custom` is set (whatever
/// the test process's own `MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS`).
async fn app(custom: bool) -> TestApp {
    let directory = tempfile::tempdir().unwrap();
    let store = ferroflow_store::SqliteStore::open(
        &directory.path().join("mlflow.db"),
        "mlflow-artifacts:/",
    )
    .await
    .unwrap();
    let mut state = AppState::new(
        std::sync::Arc::new(store),
        None,
        ServerConfig {
            default_artifact_root: "mlflow-artifacts:/".into(),
            serve_artifacts: false,
        },
        None,
    );
    state.scorers = state.scorers.clone().with_custom_scorers(custom);
    TestApp {
        router: ferroflow_server::app(state),
        directory,
    }
}

impl TestApp {
    async fn experiment(&self) -> String {
        let created = self
            .send(
                Method::POST,
                "/api/2.0/mlflow/experiments/create",
                Some(json!({"name": "scorers"})),
            )
            .await
            .json();
        created["experiment_id"].as_str().unwrap().to_owned()
    }

    async fn register(&self, experiment_id: &str, name: &str, serialized: &str) -> Answer {
        self.send(
            Method::POST,
            &format!("{API}/register"),
            Some(json!({"experiment_id": experiment_id, "name": name, "serialized_scorer": serialized})),
        )
        .await
    }

    async fn get(&self, path_and_query: &str) -> Answer {
        self.send(Method::GET, &format!("{API}{path_and_query}"), None)
            .await
    }
}

fn error(answer: &Answer) -> (StatusCode, String, String) {
    let body: Value = answer.json();
    (
        answer.status,
        body["error_code"].as_str().unwrap().to_owned(),
        body["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn register_list_get_and_delete() {
    let app = app(false).await;
    let experiment = app.experiment().await;
    let first = app.register(&experiment, "safety", BUILTIN).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let first = first.json();
    assert_eq!(first["version"], 1);
    assert_eq!(first["experiment_id"], json!(experiment));
    assert_eq!(first["serialized_scorer"], BUILTIN);
    let second = app.register(&experiment, "safety", BUILTIN).await.json();
    assert_eq!(second["version"], 2);
    assert_eq!(second["scorer_id"], first["scorer_id"]);

    let listed = app
        .get(&format!("/list?experiment_id={experiment}"))
        .await
        .json();
    let scorers = listed["scorers"].as_array().unwrap();
    assert_eq!(scorers.len(), 1);
    assert_eq!(
        scorers[0]["experiment_id"],
        json!(experiment.parse::<i64>().unwrap())
    );
    assert_eq!(scorers[0]["scorer_version"], 2);
    assert_eq!(scorers[0]["creation_time"], second["creation_time"]);

    let versions = app
        .send(
            Method::GET,
            &format!(
                "/ajax-api/3.0/mlflow/scorers/versions?experiment_id={experiment}&name=safety"
            ),
            None,
        )
        .await
        .json();
    let numbers: Vec<&Value> = versions["scorers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|scorer| &scorer["scorer_version"])
        .collect();
    assert_eq!(numbers, vec![&json!(1), &json!(2)]);
    let one = app
        .get(&format!(
            "/get?experiment_id={experiment}&name=safety&version=1"
        ))
        .await
        .json();
    assert_eq!(one["scorer"]["scorer_version"], 1);

    // `list` and `versions` re-serialize as Python's json.dumps; `register` and `get` echo the text.
    let compact = r#"{"name":"c","aggregations":null,"note":"\u00e9"}"#;
    let registered = app.register(&experiment, "compact", compact).await.json();
    assert_eq!(registered["serialized_scorer"], compact);
    let got = app
        .get(&format!("/get?experiment_id={experiment}&name=compact"))
        .await
        .json();
    assert_eq!(got["scorer"]["serialized_scorer"], compact);
    let versions = app
        .get(&format!(
            "/versions?experiment_id={experiment}&name=compact"
        ))
        .await
        .json();
    assert_eq!(
        versions["scorers"][0]["serialized_scorer"],
        r#"{"name": "c", "aggregations": null, "note": "\u00e9"}"#
    );

    let deleted = app
        .send(
            Method::DELETE,
            &format!("{API}/delete"),
            Some(json!({"experiment_id": experiment, "name": "safety", "version": 1})),
        )
        .await;
    assert_eq!(
        (deleted.status, deleted.json()),
        (StatusCode::OK, json!({}))
    );
    let gone = app
        .get(&format!(
            "/get?experiment_id={experiment}&name=safety&version=1"
        ))
        .await;
    assert_eq!(
        error(&gone),
        (
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST".into(),
            format!(
                "Scorer with name 'safety' and version 1 not found for experiment {experiment}."
            )
        )
    );
    app.send(
        Method::DELETE,
        &format!("{API}/delete"),
        Some(json!({"experiment_id": experiment, "name": "safety"})),
    )
    .await;
    let listed = app
        .get(&format!("/list?experiment_id={experiment}"))
        .await
        .json();
    let names: Vec<&Value> = listed["scorers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|scorer| &scorer["scorer_name"])
        .collect();
    assert_eq!(names, vec![&json!("compact")]);
    let configs = app
        .get(&format!(
            "/online-configs?scorer_ids={}",
            first["scorer_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(configs.json(), json!({"configs": []}));
}

#[tokio::test]
async fn invalid_requests() {
    let app = app(false).await;
    let experiment = app.experiment().await;
    let missing = app
        .send(
            Method::POST,
            &format!("{API}/register"),
            Some(json!({"experiment_id": experiment, "name": "x"})),
        )
        .await;
    let (status, code, message) = error(&missing);
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE")
    );
    assert!(message.starts_with("Missing value for required parameter 'serialized_scorer'"));
    let bad = app.register(&experiment, "x", "[not json").await;
    assert_eq!(error(&bad).2, "serialized_scorer must be valid JSON");
    let no_experiment = app.register("424242", "x", BUILTIN).await;
    assert_eq!(
        error(&no_experiment),
        (
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST".into(),
            "No Experiment with id=424242 exists".into()
        )
    );
    let gateway = app
        .register(
            &experiment,
            "g",
            r#"{"name": "g", "builtin_scorer_pydantic_data": {"model": "gateway:/chat"}}"#,
        )
        .await;
    assert_eq!(gateway.status, StatusCode::NOT_IMPLEMENTED);
    let both = app
        .get(&format!(
            "/list?experiment_id={experiment}&experiment_ids={experiment}"
        ))
        .await;
    assert_eq!(error(&both).0, StatusCode::BAD_REQUEST);
    let no_ids = app.get("/online-configs").await;
    assert_eq!(error(&no_ids).0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn custom_scorers_follow_the_server_setting() {
    let refusing = app(false).await;
    let experiment = refusing.experiment().await;
    let refused = refusing.register(&experiment, "exact", CUSTOM).await;
    let (status, code, message) = error(&refused);
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE")
    );
    assert!(message
        .contains("set the MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS environment variable to true"));
    // Nested in an ensemble, the code is found too.
    let nested = format!(r#"{{"name": "e", "ensemble_scorer_data": {{"scorers": [{CUSTOM}]}}}}"#);
    assert_eq!(
        refusing.register(&experiment, "e", &nested).await.status,
        StatusCode::BAD_REQUEST
    );

    let accepting = app(true).await;
    let experiment = accepting.experiment().await;
    let accepted = accepting.register(&experiment, "exact", CUSTOM).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    assert_eq!(accepted.json()["serialized_scorer"], CUSTOM);
}
