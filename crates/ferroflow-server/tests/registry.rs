//! The model registry endpoints end to end in process: requests through the whole router onto a real SQLite
//! store, with the wire shapes and errors MLflow 3.17.2 answers (recorded from `mlflow server`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod common;

use axum::http::{Method, StatusCode};
use common::{test_app, Answer, TestApp};
use serde_json::{json, Value};

const API: &str = "/api/2.0/mlflow";

impl TestApp {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.send(method, &format!("{API}{path}"), body).await
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let answer = self.call(method, path, body).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
        answer.json()
    }
}

fn assert_error(answer: &Answer, status: u16, code: &str, message: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.text);
    assert_eq!(answer.content_type, "application/json");
    let body = answer.json();
    assert_eq!(body["error_code"], code, "{}", answer.text);
    assert_eq!(body["message"], message, "{}", answer.text);
}

/// Replaces the timestamps, which differ on every run, with 0.
fn redact(mut value: Value) -> Value {
    match &mut value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                if key.ends_with("timestamp") {
                    *field = json!(0);
                } else {
                    *field = redact(field.take());
                }
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                *item = redact(item.take());
            }
        }
        _ => {}
    }
    value
}

#[tokio::test]
async fn registry_wire_shapes_match_mlflow() {
    let app = test_app().await;
    let created = app
        .ok(
            Method::POST,
            "/registered-models/create",
            Some(json!({"name": "m", "tags": [{"key": "a", "value": "b"}]})),
        )
        .await;
    assert_eq!(
        redact(created),
        json!({"registered_model": {"name": "m", "creation_timestamp": 0, "last_updated_timestamp": 0,
            "tags": [{"key": "a", "value": "b"}]}})
    );
    let version = app
        .ok(
            Method::POST,
            "/model-versions/create",
            Some(json!({"name": "m", "source": "s3://b/x"})),
        )
        .await;
    let expected_version = json!({"name": "m", "version": "1", "creation_timestamp": 0,
        "last_updated_timestamp": 0, "current_stage": "None", "description": "", "source": "s3://b/x",
        "run_id": "", "status": "READY", "run_link": ""});
    assert_eq!(
        redact(version),
        json!({"model_version": expected_version.clone()})
    );
    assert_eq!(
        app.ok(
            Method::POST,
            "/registered-models/alias",
            Some(json!({"name": "m", "alias": "c", "version": "1"}))
        )
        .await,
        json!({})
    );
    let got = app
        .ok(Method::GET, "/registered-models/get?name=m", None)
        .await;
    assert_eq!(
        redact(got),
        json!({"registered_model": {"name": "m", "creation_timestamp": 0, "last_updated_timestamp": 0,
            "latest_versions": [expected_version.clone()], "tags": [{"key": "a", "value": "b"}],
            "aliases": [{"alias": "c", "version": "1"}]}})
    );
    let mut with_alias = expected_version.clone();
    with_alias["aliases"] = json!(["c"]);
    for alias in ["c", "latest", "LATEST"] {
        let found = app
            .ok(
                Method::GET,
                &format!("/registered-models/alias?name=m&alias={alias}"),
                None,
            )
            .await;
        assert_eq!(redact(found), json!({"model_version": with_alias.clone()}));
    }
    // The UI's prefix serves the same routes.
    let answer = app
        .send(
            Method::GET,
            "/ajax-api/2.0/mlflow/model-versions/get?name=m&version=1",
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        app.ok(
            Method::GET,
            "/registered-models/search?filter=name%3D%27zz%27",
            None
        )
        .await,
        json!({})
    );
    let download = app
        .ok(
            Method::GET,
            "/model-versions/get-download-uri?name=m&version=1",
            None,
        )
        .await;
    assert_eq!(download, json!({"artifact_uri": "s3://b/x"}));
    let latest = app
        .ok(
            Method::POST,
            "/registered-models/get-latest-versions",
            Some(json!({"name": "m", "stages": ["none"]})),
        )
        .await;
    assert_eq!(redact(latest), json!({"model_versions": [with_alias]}));
}

#[tokio::test]
async fn registry_errors_match_mlflow() {
    let app = test_app().await;
    app.ok(
        Method::POST,
        "/registered-models/create",
        Some(json!({"name": "m"})),
    )
    .await;
    assert_error(
        &app.call(
            Method::POST,
            "/registered-models/create",
            Some(json!({"name": "m"})),
        )
        .await,
        400,
        "RESOURCE_ALREADY_EXISTS",
        "Registered Model (name=m) already exists.",
    );
    assert_error(
        &app.call(
            Method::POST,
            "/registered-models/create",
            Some(json!({"name": "m", "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]})),
        )
        .await,
        400,
        "RESOURCE_ALREADY_EXISTS",
        "Tried to create a prompt with name 'm', but the name is already taken by a registered model. \
         MLflow does not allow creating a model and a prompt with the same name.",
    );
    assert_error(
        &app.call(
            Method::POST,
            "/registered-models/create",
            Some(json!({})),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'name'. See the API docs for more information about request \
         parameters.",
    );
    assert_error(
        &app.call(
            Method::DELETE,
            "/registered-models/delete",
            Some(json!({"name": "zz"})),
        )
        .await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Registered Model with name=zz not found",
    );
    assert_error(
        &app.call(Method::GET, "/model-versions/get?name=m&version=x", None)
            .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Parameter 'version' must be an integer, got 'x'.",
    );
    assert_error(
        &app.call(Method::GET, "/model-versions/get?name=m&version=3", None)
            .await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Model Version (name=m, version=3) not found",
    );
    assert_error(
        &app.call(
            Method::GET,
            "/registered-models/search?max_results=1001",
            None,
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Invalid value \"1001\" for parameter 'max_results' supplied:  Hint: Value was of type 'str'. See \
         the API docs for more information about request parameters.",
    );
    assert_error(
        &app.call(
            Method::GET,
            "/registered-models/alias?name=m&alias=nope",
            None,
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Registered model alias nope not found.",
    );
    assert_error(
        &app.call(
            Method::GET,
            "/registered-models/alias?name=m&alias=latest",
            None,
        )
        .await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Latest version not found for model m.",
    );
    assert_error(
        &app.call(
            Method::POST,
            "/model-versions/create",
            Some(json!({"name": "m", "source": "runs:/abc/model"})),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Invalid model version source: 'runs:/abc/model'. The run_id request parameter must identify the \
         resource that contains the source.",
    );
    assert_error(
        &app.call(
            Method::POST,
            "/model-versions/create",
            Some(json!({"name": "m", "source": "/etc/passwd"})),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Invalid model version source: '/etc/passwd'. To use a local path as a model version source, the \
         run_id request parameter has to be specified and the local path has to be contained within the \
         artifact directory of the run specified by the run_id.",
    );
    assert_error(
        &app.call(
            Method::POST,
            "/model-versions/create",
            Some(json!({"name": "m", "source": "s3://b/a/../../x"})),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Invalid model version source: 's3://b/a/../../x'. If supplying a source as an http, https, local \
         file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided without \
         relative path references present. Please provide an absolute path.",
    );
    assert_error(
        &app.call(
            Method::POST,
            "/model-versions/create",
            Some(json!({"name": "m", "source": "s3://b/x",
                "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]})),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Invalid prompt source: 's3://b/x'. Prompt sources must use an MLflow placeholder.",
    );
}

#[tokio::test]
async fn registering_a_logged_model_tags_it() {
    let app = test_app().await;
    let experiment = app
        .ok(
            Method::POST,
            "/experiments/create",
            Some(json!({"name": "e"})),
        )
        .await;
    let experiment_id = experiment["experiment_id"].as_str().unwrap().to_owned();
    let run = app
        .ok(
            Method::POST,
            "/runs/create",
            Some(json!({"experiment_id": experiment_id})),
        )
        .await;
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_owned();
    let model = app
        .ok(
            Method::POST,
            "/logged-models",
            Some(json!({"experiment_id": experiment_id, "name": "model", "source_run_id": run_id})),
        )
        .await;
    let model_id = model["model"]["info"]["model_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(
        Method::POST,
        "/registered-models/create",
        Some(json!({"name": "m"})),
    )
    .await;
    for expected in ["1", "2"] {
        let version = app
            .ok(
                Method::POST,
                "/model-versions/create",
                Some(json!({"name": "m", "source": format!("models:/{model_id}"), "model_id": model_id})),
            )
            .await;
        assert_eq!(version["model_version"]["version"], expected);
        assert_eq!(version["model_version"]["run_id"], run_id.as_str());
    }
    let download = app
        .ok(
            Method::GET,
            "/model-versions/get-download-uri?name=m&version=2",
            None,
        )
        .await;
    assert_eq!(
        download["artifact_uri"],
        format!("mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts")
    );
    let model = app
        .ok(Method::GET, &format!("/logged-models/{model_id}"), None)
        .await;
    let tags = model["model"]["info"]["tags"].as_array().unwrap();
    let registrations = tags
        .iter()
        .find(|tag| tag["key"] == "mlflow.modelVersions")
        .unwrap();
    assert_eq!(
        registrations["value"],
        r#"[{"name": "m", "version": 1}, {"name": "m", "version": 2}]"#
    );
}
