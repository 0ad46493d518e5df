//! The HTTP layer end to end in process: requests through the whole router onto a real SQLite store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::{test_app, Answer, TestApp};
use serde_json::{json, Value};

impl TestApp {
    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn get(&self, path_and_query: &str) -> Answer {
        self.send(Method::GET, path_and_query, None).await
    }
}

fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.text);
    assert_eq!(answer.content_type, "application/json");
    let body = answer.json();
    assert_eq!(body["error_code"], code, "{}", answer.text);
    assert!(body["message"]
        .as_str()
        .is_some_and(|message| !message.is_empty()));
}

#[tokio::test]
async fn health_and_version() {
    let app = test_app().await;
    let health = app.get("/health").await;
    assert_eq!(
        (health.status, health.text.as_str()),
        (StatusCode::OK, "OK")
    );
    let version = app.get("/version").await;
    assert_eq!(version.text, "3.17.2");
    let info = app.get("/api/3.0/mlflow/server-info").await.json();
    assert_eq!(info["store_type"], "SqlStore");
}

#[tokio::test]
async fn experiment_round_trip_on_both_prefixes() {
    let app = test_app().await;
    let created = app
        .post(
            "/api/2.0/mlflow/experiments/create",
            json!({"name": "exp", "tags": [{"key": "k", "value": "v"}]}),
        )
        .await;
    assert_eq!(created.json(), json!({"experiment_id": "1"}));
    for prefix in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
        let fetched = app
            .get(&format!("{prefix}/experiments/get?experiment_id=1"))
            .await
            .json();
        assert_eq!(fetched["experiment"]["name"], "exp");
        assert_eq!(
            fetched["experiment"]["artifact_location"],
            "mlflow-artifacts:/1"
        );
        assert_eq!(
            fetched["experiment"]["tags"],
            json!([{"key": "k", "value": "v"}])
        );
    }
    let by_name = app
        .get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=exp")
        .await
        .json();
    assert_eq!(by_name["experiment"]["experiment_id"], "1");
    let duplicate = app
        .post("/api/2.0/mlflow/experiments/create", json!({"name": "exp"}))
        .await;
    assert_error(&duplicate, 400, "RESOURCE_ALREADY_EXISTS");
}

#[tokio::test]
async fn run_lifecycle_and_metrics() {
    let app = test_app().await;
    let created = app
        .post(
            "/api/2.0/mlflow/runs/create",
            json!({"experiment_id": "0", "run_name": "r", "start_time": "12"}),
        )
        .await
        .json();
    let run_id = created["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(created["run"]["info"]["run_uuid"], run_id.as_str());
    assert_eq!(created["run"]["info"]["status"], "RUNNING");
    assert_eq!(created["run"]["info"]["start_time"], 12);
    assert!(created["run"]["info"].get("end_time").is_none());
    assert_eq!(
        created["run"]["data"]["tags"],
        json!([{"key": "mlflow.runName", "value": "r"}])
    );

    let logged = app
        .post(
            "/api/2.0/mlflow/runs/log-metric",
            json!({"run_id": run_id, "key": "loss", "value": "NaN", "timestamp": 5, "step": 1}),
        )
        .await;
    assert_eq!(
        (logged.status, logged.text.as_str()),
        (StatusCode::OK, "{}")
    );
    let history = app
        .get(&format!(
            "/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=loss&max_results=10"
        ))
        .await
        .json();
    assert_eq!(
        history,
        json!({"metrics": [{"key": "loss", "value": "NaN", "timestamp": 5, "step": 1}]})
    );
    let bulk = app
        .get(&format!("/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id={run_id}&run_id={run_id}&metric_key=loss"))
        .await
        .json();
    assert_eq!(bulk["metrics"].as_array().unwrap().len(), 2);
    assert_eq!(bulk["metrics"][0]["run_id"], run_id.as_str());

    let finished = app
        .post(
            "/api/2.0/mlflow/runs/update",
            json!({"run_id": run_id, "status": "FINISHED", "end_time": 20}),
        )
        .await
        .json();
    assert_eq!(finished["run_info"]["status"], "FINISHED");
    assert_eq!(finished["run_info"]["end_time"], 20);

    app.post("/api/2.0/mlflow/runs/delete", json!({"run_id": run_id}))
        .await;
    let refused = app
        .post(
            "/api/2.0/mlflow/runs/set-tag",
            json!({"run_id": run_id, "key": "k", "value": "v"}),
        )
        .await;
    assert_error(&refused, 400, "INVALID_PARAMETER_VALUE");
    assert!(refused.json()["message"]
        .as_str()
        .unwrap()
        .contains("must be in the 'active' state"));
}

#[tokio::test]
async fn bad_requests_answer_mlflow_errors() {
    let app = test_app().await;
    let missing = app
        .post("/api/2.0/mlflow/experiments/create", json!({}))
        .await;
    assert_error(&missing, 400, "INVALID_PARAMETER_VALUE");
    assert_eq!(
        missing.json()["message"],
        "Missing value for required parameter 'name'. See the API docs for more information about request parameters."
    );

    let not_json = app
        .send_request(
            Request::builder()
                .method(Method::POST)
                .uri("/api/2.0/mlflow/experiments/create")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_error(&not_json, 400, "BAD_REQUEST");

    let wrong_type = app
        .send_request(
            Request::builder()
                .method(Method::POST)
                .uri("/api/2.0/mlflow/experiments/create")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(r#"{"name": "x"}"#))
                .unwrap(),
        )
        .await;
    assert_error(&wrong_type, 400, "INVALID_PARAMETER_VALUE");

    let missing_run = app
        .get("/api/2.0/mlflow/runs/get?run_id=0123456789abcdef0123456789abcdef")
        .await;
    assert_error(&missing_run, 404, "RESOURCE_DOES_NOT_EXIST");

    let bad_token = app
        .post(
            "/api/2.0/mlflow/runs/search",
            json!({"experiment_ids": ["0"], "page_token": "garbage"}),
        )
        .await;
    assert_error(&bad_token, 400, "INVALID_PARAMETER_VALUE");

    let no_max = app
        .post("/api/2.0/mlflow/experiments/search", json!({}))
        .await;
    assert_error(&no_max, 400, "INVALID_PARAMETER_VALUE");

    let unknown = app.get("/api/2.0/mlflow/no-such-endpoint").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(!unknown.content_type.contains("json"));
}

#[tokio::test]
async fn log_batch_limits_and_atomicity() {
    let app = test_app().await;
    let run = app
        .post("/api/2.0/mlflow/runs/create", json!({"experiment_id": "0"}))
        .await
        .json();
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_owned();
    let too_many: Vec<Value> = (0..1001)
        .map(|step| json!({"key": "m", "value": 1.0, "timestamp": 1, "step": step}))
        .collect();
    let answer = app
        .post(
            "/api/2.0/mlflow/runs/log-batch",
            json!({"run_id": run_id, "metrics": too_many}),
        )
        .await;
    assert_error(&answer, 400, "INVALID_PARAMETER_VALUE");
    assert!(answer.json()["message"]
        .as_str()
        .unwrap()
        .contains("at most 1000 metrics"));

    let huge = "x".repeat(1_000_001);
    let answer = app
        .post(
            "/api/2.0/mlflow/runs/log-batch",
            json!({"run_id": run_id, "tags": [{"key": "t", "value": huge}]}),
        )
        .await;
    assert_error(&answer, 400, "INVALID_PARAMETER_VALUE");
    assert!(answer.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("Batched logging API requests must be at most"));

    // A bad key in the middle of a batch writes nothing.
    let answer = app
        .post(
            "/api/2.0/mlflow/runs/log-batch",
            json!({"run_id": run_id, "params": [{"key": "ok", "value": "1"}, {"key": "../bad", "value": "2"}]}),
        )
        .await;
    assert_error(&answer, 400, "INVALID_PARAMETER_VALUE");
    let fetched = app
        .get(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}"))
        .await
        .json();
    assert!(fetched["run"]["data"].get("params").is_none(), "{fetched}");
}

/// Every tracking route, on both prefixes, answers an empty request with a JSON body and no 5xx.
#[tokio::test]
async fn every_route_answers_json_for_empty_requests() {
    let app = test_app().await;
    let mut checked = 0;
    for prefix in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
        for (path, _) in ferroflow_server::routes::tracking::routes() {
            for method in [Method::GET, Method::POST] {
                let request = Request::builder()
                    .method(method.clone())
                    .uri(format!("{prefix}{path}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from("{}"))
                    .unwrap();
                let answer = app.send_request(request).await;
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
    assert!(
        checked >= 2 * ferroflow_server::routes::tracking::routes().len(),
        "{checked}"
    );
}
