//! The logged model endpoints end to end in process: requests through the whole router onto a real SQLite
//! store, with the wire shapes MLflow 3.17.2 answers (recorded from `mlflow server`).

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
    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, &format!("{API}{path}"), Some(body))
            .await
    }

    async fn patch(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PATCH, &format!("{API}{path}"), Some(body))
            .await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, &format!("{API}{path}"), None)
            .await
    }

    async fn get(&self, path_and_query: &str) -> Answer {
        self.send(Method::GET, &format!("{API}{path_and_query}"), None)
            .await
    }

    async fn experiment(&self, name: &str) -> String {
        let created = self
            .post("/experiments/create", json!({"name": name}))
            .await
            .json();
        created["experiment_id"].as_str().unwrap().to_owned()
    }

    async fn run(&self, experiment_id: &str) -> String {
        let created = self
            .post("/runs/create", json!({"experiment_id": experiment_id}))
            .await
            .json();
        created["run"]["info"]["run_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn model(&self, body: Value) -> Value {
        let answer = self.post("/logged-models", body).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()["model"].clone()
    }

    async fn search(&self, body: Value) -> Value {
        let answer = self.post("/logged-models/search", body).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
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

fn model_id(model: &Value) -> String {
    model["info"]["model_id"].as_str().unwrap().to_owned()
}

/// The model with its times and id replaced, for comparing whole shapes.
fn redacted(model: &Value) -> Value {
    let mut model = model.clone();
    let id = model_id(&model);
    for field in ["creation_timestamp_ms", "last_updated_timestamp_ms"] {
        assert!(model["info"][field].is_i64(), "{field} is an int64 number");
        model["info"][field] = json!("[time]");
    }
    let text = model.to_string().replace(&id, "[id]");
    serde_json::from_str(&text).unwrap()
}

fn names(search: &Value) -> Vec<String> {
    search["models"]
        .as_array()
        .map(|models| {
            models
                .iter()
                .map(|model| model["info"]["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn create_answers_mlflows_shape() {
    let app = test_app().await;
    let experiment_id = app.experiment("exp").await;
    let run_id = app.run(&experiment_id).await;
    let model = app
        .model(json!({
            "experiment_id": experiment_id,
            "name": "model",
            "source_run_id": run_id,
            "params": [{"key": "b", "value": "2"}, {"key": "a", "value": "1"}],
            "tags": [{"key": "t", "value": "v"}],
        }))
        .await;
    let id = model_id(&model);
    assert!(id.starts_with("m-") && id.len() == 34, "{id}");
    assert_eq!(
        redacted(&model),
        json!({
            "info": {
                "model_id": "[id]",
                "experiment_id": "1",
                "name": "model",
                "creation_timestamp_ms": "[time]",
                "last_updated_timestamp_ms": "[time]",
                "artifact_uri": "mlflow-artifacts:/1/models/[id]/artifacts",
                "status": "LOGGED_MODEL_PENDING",
                "model_type": "",
                "source_run_id": run_id,
                "tags": [{"key": "t", "value": "v"}],
            },
            "data": {"params": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]},
        })
    );
    // Without a name MLflow picks a random one; empty lists are omitted and `data` stays.
    let unnamed = app.model(json!({"experiment_id": experiment_id})).await;
    assert_eq!(
        unnamed["info"]["name"].as_str().unwrap().split('-').count(),
        3
    );
    assert_eq!(unnamed["data"], json!({}));
    assert_eq!(unnamed["info"]["source_run_id"], "");
    assert!(unnamed["info"].get("tags").is_none());
}

#[tokio::test]
async fn create_refusals() {
    let app = test_app().await;
    let experiment_id = app.experiment("exp").await;
    assert_error(
        &app.post("/logged-models", json!({})).await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'experiment_id'. See the API docs for more information about request parameters.",
    );
    assert_error(
        &app.post("/logged-models", json!({"experiment_id": "99"}))
            .await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "No Experiment with id=99 exists",
    );
    assert_error(
        &app.post(
            "/logged-models",
            json!({"experiment_id": experiment_id, "name": "a/b"}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Invalid model name ('a/b') provided. Model name must be a non-empty string and cannot contain the \
         following characters: ('/', ':', '.', '%', '\"', \"'\")",
    );
    app.post(
        "/experiments/delete",
        json!({"experiment_id": experiment_id}),
    )
    .await;
    assert_error(
        &app.post("/logged-models", json!({"experiment_id": experiment_id}))
            .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "The experiment 1 must be in the 'active' state. Current state is deleted.",
    );
}

#[tokio::test]
async fn get_finalize_and_delete() {
    let app = test_app().await;
    let experiment_id = app.experiment("exp").await;
    let model = app
        .model(json!({"experiment_id": experiment_id, "name": "m"}))
        .await;
    let id = model_id(&model);
    for prefix in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
        let fetched = app
            .send(Method::GET, &format!("{prefix}/logged-models/{id}"), None)
            .await;
        assert_eq!(fetched.json()["model"], model);
    }
    assert_error(
        &app.get("/logged-models/m-nope").await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Logged model with ID 'm-nope' not found.",
    );

    // Finalize reads the id of the body, by enum name or number.
    assert_error(
        &app.patch(
            &format!("/logged-models/{id}"),
            json!({"status": "LOGGED_MODEL_READY"}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'model_id'. See the API docs for more information about request parameters.",
    );
    assert_error(
        &app.patch(&format!("/logged-models/{id}"), json!({"model_id": id}))
            .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'status'. See the API docs for more information about request parameters.",
    );
    let ready = app
        .patch(
            &format!("/logged-models/{id}"),
            json!({"model_id": id, "status": "LOGGED_MODEL_READY"}),
        )
        .await
        .json();
    assert_eq!(ready["model"]["info"]["status"], "LOGGED_MODEL_READY");
    let failed = app
        .patch(
            &format!("/logged-models/{id}"),
            json!({"model_id": id, "status": 3}),
        )
        .await
        .json();
    assert_eq!(
        failed["model"]["info"]["status"],
        "LOGGED_MODEL_UPLOAD_FAILED"
    );
    assert_error(
        &app.patch(
            "/logged-models/m-nope",
            json!({"model_id": "m-nope", "status": 2}),
        )
        .await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Logged model with ID 'm-nope' not found.",
    );

    let deleted = app.delete(&format!("/logged-models/{id}")).await;
    assert_eq!(
        (deleted.status, deleted.text.as_str()),
        (StatusCode::OK, "{}")
    );
    assert_eq!(app.get(&format!("/logged-models/{id}")).await.status, 404);
    let allowed = app
        .get(&format!("/logged-models/{id}?allow_deleted=true"))
        .await;
    assert_eq!(allowed.json()["model"]["info"]["model_id"], id.as_str());
    // The client sends Python's `True`; anything but `true` in any case means false, as in MLflow.
    let capitalized = app
        .get(&format!("/logged-models/{id}?allow_deleted=True"))
        .await;
    assert_eq!(capitalized.status, 200);
    let other = app
        .get(&format!("/logged-models/{id}?allow_deleted=yes"))
        .await;
    assert_eq!(other.status, 404);
    assert_eq!(
        app.delete(&format!("/logged-models/{id}")).await.status,
        200
    );
    assert_eq!(app.delete("/logged-models/m-nope").await.status, 404);
    assert_eq!(
        app.search(json!({"experiment_ids": [experiment_id]})).await,
        json!({})
    );
}

#[tokio::test]
async fn tags_and_params() {
    let app = test_app().await;
    let experiment_id = app.experiment("exp").await;
    let model = app
        .model(json!({"experiment_id": experiment_id, "name": "m", "tags": [{"key": "t", "value": "v"}]}))
        .await;
    let id = model_id(&model);
    let set = app
        .patch(
            &format!("/logged-models/{id}/tags"),
            json!({"tags": [{"key": "x", "value": "1"}, {"key": "x", "value": "2"}, {"key": "t", "value": "w"}]}),
        )
        .await;
    assert_eq!((set.status, set.text.as_str()), (StatusCode::OK, "{}"));
    let tags = |answer: Answer| answer.json()["model"]["info"]["tags"].clone();
    assert_eq!(
        tags(app.get(&format!("/logged-models/{id}")).await),
        json!([{"key": "t", "value": "w"}, {"key": "x", "value": "2"}])
    );
    assert_eq!(
        app.patch("/logged-models/m-nope/tags", json!({"tags": []}))
            .await
            .status,
        404
    );
    assert_eq!(
        app.delete(&format!("/logged-models/{id}/tags/x"))
            .await
            .status,
        200
    );
    assert_error(
        &app.delete(&format!("/logged-models/{id}/tags/x")).await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        &format!("No tag with key 'x' found for model with ID '{id}'."),
    );
    assert_error(
        &app.delete("/logged-models/m-nope/tags/x").await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Logged model with ID 'm-nope' not found.",
    );
    assert_eq!(
        tags(app.get(&format!("/logged-models/{id}")).await),
        json!([{"key": "t", "value": "w"}])
    );

    // Params want the model id in the body too; the path's model is written.
    assert_error(
        &app.post(
            &format!("/logged-models/{id}/params"),
            json!({"params": [{"key": "a", "value": "1"}]}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'model_id'. See the API docs for more information about request parameters.",
    );
    let logged = app
        .post(
            &format!("/logged-models/{id}/params"),
            json!({"model_id": id, "params": [{"key": "a", "value": "1"}]}),
        )
        .await;
    assert_eq!(
        (logged.status, logged.text.as_str()),
        (StatusCode::OK, "{}")
    );
    let again = app
        .post(
            &format!("/logged-models/{id}/params"),
            json!({"model_id": id, "params": [{"key": "a", "value": "1"}]}),
        )
        .await;
    assert_eq!(again.status, 400, "{}", again.text);
    assert_eq!(again.json()["error_code"], "BAD_REQUEST");
    assert_eq!(
        app.post(
            "/logged-models/m-nope/params",
            json!({"model_id": id, "params": []}),
        )
        .await
        .status,
        404
    );
    assert_eq!(
        app.get(&format!("/logged-models/{id}")).await.json()["model"]["data"]["params"],
        json!([{"key": "a", "value": "1"}])
    );
}

#[tokio::test]
async fn run_metrics_with_model_id_show_in_the_model() {
    let app = test_app().await;
    let experiment_id = app.experiment("exp").await;
    let run_id = app.run(&experiment_id).await;
    let id = model_id(
        &app.model(json!({"experiment_id": experiment_id, "name": "m"}))
            .await,
    );
    let batch = app
        .post(
            "/runs/log-batch",
            json!({"run_id": run_id, "metrics": [
                {"key": "acc", "value": 0.5, "timestamp": 10, "step": 1, "model_id": id,
                 "dataset_name": "ds", "dataset_digest": "dg"},
                {"key": "loss", "value": "NaN", "timestamp": 20, "step": 2, "model_id": id},
                {"key": "plain", "value": 1, "timestamp": 20, "step": 2},
            ]}),
        )
        .await;
    assert_eq!(batch.status, 200, "{}", batch.text);
    let single = app
        .post(
            "/runs/log-metric",
            json!({"run_id": run_id, "key": "acc", "value": 0.1, "timestamp": 5, "step": "0", "model_id": id}),
        )
        .await;
    assert_eq!(single.status, 200, "{}", single.text);
    let metrics =
        &app.get(&format!("/logged-models/{id}")).await.json()["model"]["data"]["metrics"];
    assert_eq!(
        metrics,
        &json!([
            {"key": "acc", "value": 0.5, "timestamp": 10, "step": 1, "dataset_name": "ds",
             "dataset_digest": "dg", "model_id": id, "run_id": run_id},
            {"key": "loss", "value": 0.0, "timestamp": 20, "step": 2, "model_id": id, "run_id": run_id},
            {"key": "acc", "value": 0.1, "timestamp": 5, "step": 0, "model_id": id, "run_id": run_id},
        ])
    );
    let missing = app
        .post(
            "/runs/log-metric",
            json!({"run_id": run_id, "key": "acc", "value": 1, "timestamp": 5, "model_id": "m-nope"}),
        )
        .await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert_eq!(missing.json()["error_code"], "BAD_REQUEST");
}

#[tokio::test]
async fn search_filters_orders_and_pages() {
    let app = test_app().await;
    let experiment_id = app.experiment("exp").await;
    for (name, model_type) in [("alpha", "sk"), ("beta", "sk"), ("gamma", "")] {
        app.model(json!({"experiment_id": experiment_id, "name": name, "model_type": model_type}))
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let search = |body: Value| {
        let mut body = body;
        body["experiment_ids"] = json!([experiment_id]);
        app.search(body)
    };
    assert_eq!(names(&search(json!({})).await), ["gamma", "beta", "alpha"]);
    // The filter the client sends for `runs:/<run>/<name>` and `list_artifacts(run, "<dir>")`.
    assert_eq!(
        names(&search(json!({"filter": "name = 'beta'"})).await),
        ["beta"]
    );
    assert_eq!(
        names(&search(json!({"filter": "name = 'some_dir'"})).await),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&search(json!({"filter": "model_type = 'sk' AND name LIKE '%a'"})).await),
        ["beta", "alpha"]
    );
    assert_eq!(
        names(&search(json!({"order_by": [{"field_name": "name"}]})).await),
        ["alpha", "beta", "gamma"]
    );
    assert_eq!(
        names(&search(json!({"order_by": [{"field_name": "name", "ascending": false}]})).await),
        ["gamma", "beta", "alpha"]
    );

    // Pages: MLflow's token carries the search, and refuses another one.
    let first = search(json!({"max_results": 2})).await;
    assert_eq!(names(&first), ["gamma", "beta"]);
    let token = first["next_page_token"].as_str().unwrap().to_owned();
    let second = search(json!({"max_results": 2, "page_token": token})).await;
    assert_eq!(names(&second), ["alpha"]);
    assert!(second.get("next_page_token").is_none());
    let mut body =
        json!({"experiment_ids": [experiment_id], "page_token": token, "filter": "name = 'x'"});
    assert_error(
        &app.post("/logged-models/search", body.clone()).await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Filter string in the page token does not match the requested filter string. Expected: name = 'x'. \
         Found: None",
    );
    body["filter"] = json!(null);
    body["experiment_ids"] = json!(["0"]);
    assert_eq!(app.post("/logged-models/search", body).await.status, 400);
}

#[tokio::test]
async fn search_refusals() {
    let app = test_app().await;
    let cases = [
        (
            json!({}),
            "Missing value for required parameter 'experiment_ids'. See the API docs for more information about request parameters.",
        ),
        (
            json!({"experiment_ids": ["x"]}),
            "Invalid experiment ID 'x'. Experiment ID must be a valid integer.",
        ),
        (
            json!({"experiment_ids": ["0"], "datasets": [{"dataset_digest": "d"}]}),
            "`dataset_name` in the `datasets` clause must be specified.",
        ),
        (
            json!({"experiment_ids": ["0"], "filter": "name > 'x'"}),
            "Invalid comparison operator for attributes.name: '>'. Expected one of ('=', '!=', 'LIKE', \
             'ILIKE', 'IN', 'NOT IN').",
        ),
        (
            json!({"experiment_ids": ["0"], "order_by": [{"field_name": "foo"}]}),
            "Invalid order by field name: foo",
        ),
        (
            json!({"experiment_ids": ["0"], "order_by": [{"field_name": "params.a"}]}),
            "Invalid order by field name: params.a. Only metrics are supported.",
        ),
    ];
    for (body, message) in cases {
        assert_error(
            &app.post("/logged-models/search", body).await,
            400,
            "INVALID_PARAMETER_VALUE",
            message,
        );
    }
    assert_eq!(app.search(json!({"experiment_ids": []})).await, json!({}));
}

#[tokio::test]
async fn artifact_directories_list_the_model_root() {
    let app = test_app().await;
    let experiment_id = app.experiment("exp").await;
    let id = model_id(
        &app.model(json!({"experiment_id": experiment_id, "name": "m"}))
            .await,
    );
    let root = app
        .directory
        .path()
        .join(format!("artifacts/{experiment_id}/models/{id}/artifacts"));
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("MLmodel"), "flavors: {}\n").unwrap();
    std::fs::write(root.join("sub/data.bin"), "xyz").unwrap();
    std::fs::write(root.join("sub/empty"), "").unwrap();
    let root_uri = format!("mlflow-artifacts:/{experiment_id}/models/{id}/artifacts");
    let listing = app
        .get(&format!("/logged-models/{id}/artifacts/directories"))
        .await
        .json();
    assert_eq!(
        listing,
        json!({"root_uri": root_uri, "files": [
            {"path": "MLmodel", "is_dir": false, "file_size": 12},
            {"path": "sub", "is_dir": true},
        ]})
    );
    let nested = app
        .get(&format!(
            "/logged-models/{id}/artifacts/directories?artifact_directory_path=sub"
        ))
        .await
        .json();
    assert_eq!(
        nested["files"],
        json!([
            {"path": "sub/data.bin", "is_dir": false, "file_size": 3},
            {"path": "sub/empty", "is_dir": false},
        ])
    );
    let missing = app
        .get(&format!(
            "/logged-models/{id}/artifacts/directories?artifact_directory_path=nope"
        ))
        .await
        .json();
    assert_eq!(missing, json!({"root_uri": root_uri}));
    assert_error(
        &app.get(&format!(
            "/logged-models/{id}/artifacts/directories?artifact_directory_path=../x"
        ))
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "Invalid path",
    );
    assert_eq!(
        app.get("/logged-models/m-nope/artifacts/directories")
            .await
            .status,
        404
    );
}

/// Every logged model route, under both prefixes, answers MLflow's error JSON (never a 5xx or plain text)
/// to an empty request.
#[tokio::test]
async fn every_route_answers_json_for_empty_requests() {
    let app = test_app().await;
    let mut checked = 0;
    for prefix in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
        for (path, _) in ferroflow_server::routes::logged_models::routes() {
            let path = path
                .replace("{model_id}", "m-nope")
                .replace("{tag_key}", "k");
            for method in [Method::GET, Method::POST, Method::PATCH, Method::DELETE] {
                let answer = app
                    .send(method.clone(), &format!("{prefix}{path}"), Some(json!({})))
                    .await;
                if answer.status == StatusCode::METHOD_NOT_ALLOWED {
                    continue;
                }
                checked += 1;
                assert!(
                    answer.status.as_u16() < 500,
                    "{method} {prefix}{path}: {} {}",
                    answer.status,
                    answer.text
                );
                assert_eq!(
                    answer.content_type, "application/json",
                    "{method} {prefix}{path}"
                );
                let _ = answer.json();
            }
        }
    }
    assert_eq!(checked, 2 * 9);
}
