//! The trace endpoints end to end in process: OTLP ingest at `/v1/traces` (protobuf and JSON, gzip),
//! StartTraceV3, get and search, with the wire shapes MLflow 3.17.2 answers; malformed OTLP bodies are
//! refused and store nothing.

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
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::{json, Value};
use std::io::Write;

const V3: &str = "/api/3.0/mlflow";
const TRACE_HEX: &str = "0102030405060708090a0b0c0d0e0f10";

impl TestApp {
    async fn experiment(&self, name: &str) -> String {
        let answer = self
            .send(
                Method::POST,
                "/api/2.0/mlflow/experiments/create",
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()["experiment_id"].as_str().unwrap().to_owned()
    }

    async fn otlp(
        &self,
        experiment_id: Option<&str>,
        content_type: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/v1/traces")
            .header(header::CONTENT_TYPE, content_type);
        if let Some(experiment_id) = experiment_id {
            request = request.header("x-mlflow-experiment-id", experiment_id);
        }
        if let Some(encoding) = encoding {
            request = request.header(header::CONTENT_ENCODING, encoding);
        }
        self.send_request(request.body(Body::from(body)).unwrap())
            .await
    }

    async fn search(&self, experiment_id: &str, filter: &str) -> Value {
        let answer = self
            .send(
                Method::POST,
                &format!("{V3}/traces/search"),
                Some(json!({
                    "locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}],
                    "filter": filter,
                    "max_results": 100,
                })),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()
    }
}

fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn string(text: &str) -> any_value::Value {
    any_value::Value::StringValue(text.to_owned())
}

fn otel_span(span_id: u8, parent: Option<u8>, name: &str) -> Span {
    Span {
        trace_id: (1..=16).collect(),
        span_id: vec![0, 0, 0, 0, 0, 0, 0, span_id],
        parent_span_id: parent.map_or_else(Vec::new, |parent| vec![0, 0, 0, 0, 0, 0, 0, parent]),
        name: name.to_owned(),
        start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(span_id) * 1_000_000,
        end_time_unix_nano: 1_700_000_000_050_000_000,
        attributes: vec![
            attribute(
                "mlflow.spanType",
                string(if parent.is_none() { "CHAIN" } else { "LLM" }),
            ),
            attribute(
                "mlflow.spanInputs",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![attribute("question", string("why"))],
                }),
            ),
            attribute("count", any_value::Value::IntValue(3)),
            attribute("ratio", any_value::Value::DoubleValue(0.5)),
        ],
        status: Some(Status {
            message: String::new(),
            code: status::StatusCode::Ok as i32,
        }),
        ..Span::default()
    }
}

fn export_request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    attribute("service.name", string("checkout")),
                    attribute("telemetry.sdk.language", string("rust")),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn otlp_protobuf_spans_land_and_read_back_as_mlflow_answers_them() {
    let app = test_app().await;
    let experiment_id = app.experiment("otlp").await;
    let body = export_request(vec![
        otel_span(1, None, "root"),
        otel_span(2, Some(1), "child"),
    ])
    .encode_to_vec();
    let answer = app
        .otlp(Some(&experiment_id), "application/x-protobuf", None, body)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.content_type, "application/x-protobuf");
    assert_eq!(answer.text, "");

    let trace_id = format!("tr-{TRACE_HEX}");
    let answer = app
        .send(Method::GET, &format!("{V3}/traces/{trace_id}"), None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let info = &answer.json()["trace"]["trace_info"];
    assert_eq!(info["trace_id"], trace_id.as_str());
    assert_eq!(
        info["trace_location"],
        json!({"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}})
    );
    assert_eq!(info["state"], "OK");
    assert_eq!(info["request_time"], "2023-11-14T22:13:20.001Z");
    assert_eq!(info["execution_duration"], "0.049s");
    assert_eq!(info["request_preview"], "{\"question\": \"why\"}");
    assert_eq!(info["tags"]["mlflow.trace.spansLocation"], "TRACKING_STORE");
    assert_eq!(info["tags"]["service.name"], "checkout");
    assert!(info["tags"].get("telemetry.sdk.language").is_none());
    assert_eq!(
        info["tags"]["mlflow.artifactLocation"],
        format!("mlflow-artifacts:/{experiment_id}/traces/{trace_id}/artifacts")
    );

    let answer = app
        .send(
            Method::GET,
            &format!("{V3}/traces/get?trace_id={trace_id}&allow_partial=False"),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let spans = answer.json()["trace"]["spans"].clone();
    assert_eq!(spans.as_array().unwrap().len(), 2);
    assert_eq!(spans[0]["name"], "root");
    assert_eq!(spans[0]["trace_id"], "AQIDBAUGBwgJCgsMDQ4PEA==");
    assert_eq!(spans[0]["span_id"], "AAAAAAAAAAE=");
    assert!(spans[0].get("parent_span_id").is_none());
    assert_eq!(spans[1]["parent_span_id"], "AAAAAAAAAAE=");
    assert_eq!(
        spans[0]["start_time_unix_nano"],
        1_700_000_000_001_000_000u64
    );
    assert_eq!(spans[0]["status"], json!({"code": "STATUS_CODE_OK"}));
    assert_eq!(
        spans[1]["attributes"],
        json!([
            {"key": "mlflow.spanType", "value": {"string_value": "LLM"}},
            {"key": "mlflow.spanInputs", "value": {"kvlist_value": {"values": [
                {"key": "question", "value": {"string_value": "why"}}]}}},
            {"key": "count", "value": {"int_value": 3}},
            {"key": "ratio", "value": {"double_value": 0.5}},
            {"key": "mlflow.traceRequestId", "value": {"string_value": trace_id}},
        ])
    );
}

#[tokio::test]
async fn otlp_run_header_links_finished_traces_to_the_run() {
    let app = test_app().await;
    let experiment_id = app.experiment("otlp-run").await;
    let answer = app
        .send(
            Method::POST,
            "/api/2.0/mlflow/runs/create",
            Some(json!({ "experiment_id": experiment_id })),
        )
        .await;
    let run_id = answer.json()["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = export_request(vec![otel_span(1, None, "root")]).encode_to_vec();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/traces")
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .header("x-mlflow-experiment-id", &experiment_id)
        .header("x-mlflow-run-id", &run_id)
        .body(Body::from(body))
        .unwrap();
    assert_eq!(app.send_request(request).await.status, StatusCode::OK);
    let found = app
        .search(&experiment_id, &format!("attribute.run_id = '{run_id}'"))
        .await;
    assert_eq!(found["traces"][0]["trace_id"], format!("tr-{TRACE_HEX}"));
    assert_eq!(
        app.search(&experiment_id, "attribute.run_id = 'other'")
            .await,
        json!({})
    );
}

#[tokio::test]
async fn otlp_json_with_hex_ids_and_gzip_lands() {
    let app = test_app().await;
    let experiment_id = app.experiment("otlp-json").await;
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js-app"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [{
            "traceId": TRACE_HEX,
            "spanId": "00000000000000aa",
            "name": "handler",
            "kind": 2,
            "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000200000000",
            "attributes": [
                {"key": "http.status", "value": {"intValue": "200"}},
                {"key": "ok", "value": {"boolValue": true}}
            ],
            "status": {"code": 2, "message": "boom"}
        }]}]
    }]});
    let answer = app
        .otlp(
            Some(&experiment_id),
            "application/json; charset=utf-8",
            Some("gzip"),
            gzip(body.to_string().as_bytes()),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let found = app.search(&experiment_id, "status = 'ERROR'").await;
    let traces = found["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0]["trace_id"], format!("tr-{TRACE_HEX}"));
    assert_eq!(traces[0]["execution_duration"], "0.200s");
    assert_eq!(traces[0]["tags"]["service.name"], "js-app");
    let answer = app
        .send(
            Method::GET,
            &format!("{V3}/traces/batchGet?trace_ids=tr-{TRACE_HEX}"),
            None,
        )
        .await;
    let span = answer.json()["traces"][0]["spans"][0].clone();
    assert_eq!(span["span_id"], "AAAAAAAAAKo=");
    assert_eq!(
        span["status"],
        json!({"code": "STATUS_CODE_ERROR", "message": "boom"})
    );
    assert_eq!(span["attributes"][0]["value"], json!({"int_value": 200}));
    assert_eq!(span["attributes"][1]["value"], json!({"bool_value": true}));
}

/// One refused OTLP request: experiment header, content type, encoding, body, status, answer.
struct Case<'a>(
    Option<&'a str>,
    &'a str,
    Option<&'a str>,
    Vec<u8>,
    StatusCode,
    Value,
);

#[tokio::test]
async fn malformed_otlp_bodies_are_refused_and_store_nothing() {
    let app = test_app().await;
    let experiment_id = app.experiment("bad-otlp").await;
    let valid = export_request(vec![otel_span(1, None, "root")]).encode_to_vec();
    let mut missing_id = otel_span(1, None, "root");
    missing_id.span_id.clear();
    let cases: Vec<Case> = vec![
        Case(
            Some(&experiment_id),
            "application/x-protobuf",
            None,
            b"\xff\xff\xff not protobuf".to_vec(),
            StatusCode::BAD_REQUEST,
            json!({"detail": "Invalid OpenTelemetry format"}),
        ),
        Case(
            Some(&experiment_id),
            "application/json",
            None,
            b"{\"resourceSpans\": [".to_vec(),
            StatusCode::BAD_REQUEST,
            json!({"detail": "Invalid OpenTelemetry format"}),
        ),
        Case(
            Some(&experiment_id),
            "application/json",
            None,
            b"{}".to_vec(),
            StatusCode::BAD_REQUEST,
            json!({"detail": "Invalid OpenTelemetry format - no spans found"}),
        ),
        Case(
            Some(&experiment_id),
            "text/plain",
            None,
            valid.clone(),
            StatusCode::BAD_REQUEST,
            json!({"detail": "Invalid Content-Type: text/plain. Expected: application/x-protobuf or application/json"}),
        ),
        Case(
            Some(&experiment_id),
            "application/x-protobuf",
            Some("gzip"),
            valid.clone(),
            StatusCode::BAD_REQUEST,
            json!({"detail": "Failed to decompress gzip payload"}),
        ),
        Case(
            Some(&experiment_id),
            "application/x-protobuf",
            Some("br"),
            valid.clone(),
            StatusCode::BAD_REQUEST,
            json!({"detail": "Unsupported Content-Encoding"}),
        ),
        Case(
            None,
            "application/x-protobuf",
            None,
            valid.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"type": "missing", "loc": ["header", "x-mlflow-experiment-id"],
                               "msg": "Field required", "input": null}]}),
        ),
        Case(
            Some(&experiment_id),
            "application/x-protobuf",
            None,
            export_request(vec![otel_span(2, None, "fine"), missing_id]).encode_to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": "Cannot convert OpenTelemetry span to MLflow span"}),
        ),
    ];
    for Case(experiment, content_type, encoding, body, status, expected) in cases {
        let answer = app.otlp(experiment, content_type, encoding, body).await;
        assert_eq!(
            answer.status, status,
            "{content_type} {encoding:?}: {}",
            answer.text
        );
        assert_eq!(answer.json(), expected);
    }
    // A missing experiment is MLflow's error JSON.
    let answer = app
        .otlp(Some("424242"), "application/x-protobuf", None, valid)
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text);
    assert_eq!(answer.json()["error_code"], "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(app.search(&experiment_id, "").await, json!({}));
}

#[tokio::test]
async fn start_trace_answers_tracking_store_and_merges_with_spans() {
    let app = test_app().await;
    let experiment_id = app.experiment("start").await;
    let trace_id = format!("tr-{TRACE_HEX}");
    let answer = app
        .send(
            Method::POST,
            &format!("{V3}/traces"),
            Some(json!({"trace": {"trace_info": {
                "trace_id": trace_id,
                "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}},
                "request_time": "2023-11-14T22:13:20.001Z",
                "execution_duration": "0.049s",
                "state": "OK",
                "request_preview": "{\"question\": \"why\"}",
                "trace_metadata": {"mlflow.user": "me", "mlflow.trace.tokenUsage": "{\"input_tokens\": 1, \"output_tokens\": 2, \"total_tokens\": 3}"},
                "tags": {"mlflow.traceName": "root", "team": "a"}
            }}})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let info = answer.json()["trace"]["trace_info"].clone();
    assert_eq!(info["tags"]["mlflow.trace.spansLocation"], "TRACKING_STORE");
    assert_eq!(
        info["tags"]["mlflow.artifactLocation"],
        format!("mlflow-artifacts:/{experiment_id}/traces/{trace_id}/artifacts")
    );
    assert_eq!(info["tags"]["mlflow.traceName"], "root");
    assert_eq!(info["trace_metadata"]["mlflow.trace.infoFinalized"], "true");
    assert_eq!(
        info["trace_metadata"]["mlflow.trace.tokenUsage"],
        "{\"input_tokens\": 1, \"output_tokens\": 2, \"total_tokens\": 3}"
    );
    // Before its spans arrive, the complete trace is not ready; partial is.
    let answer = app
        .send(
            Method::GET,
            &format!("{V3}/traces/get?trace_id={trace_id}"),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let body = export_request(vec![otel_span(1, None, "root")]).encode_to_vec();
    let answer = app
        .otlp(Some(&experiment_id), "application/x-protobuf", None, body)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let answer = app
        .send(
            Method::GET,
            &format!("{V3}/traces/get?trace_id={trace_id}"),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let trace = answer.json()["trace"].clone();
    assert_eq!(trace["spans"].as_array().unwrap().len(), 1);
    assert_eq!(trace["trace_info"]["trace_metadata"]["mlflow.user"], "me");
    assert_eq!(trace["trace_info"]["execution_duration"], "0.049s");

    // Protected tags.
    let answer = app
        .send(
            Method::PATCH,
            &format!("/api/2.0/mlflow/traces/{trace_id}/tags"),
            Some(json!({"key": "mlflow.trace.spansLocation", "value": "ARTIFACT_REPO"})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json()["message"],
        "Tag 'mlflow.trace.spansLocation' is immutable and cannot be set on a trace."
    );
}

/// Sends a root span and its child with the Rust OpenTelemetry SDK's own OTLP/HTTP exporter (a
/// blocking client, so on a thread of its own).
fn export_with_rust_sdk(
    url: String,
    experiment_id: String,
    protocol: opentelemetry_otlp::Protocol,
    gzip: bool,
) {
    use opentelemetry::trace::{Span as _, TraceContextExt, Tracer, TracerProvider as _};
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};

    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(format!("{url}/v1/traces"))
        .with_headers(std::collections::HashMap::from([(
            "x-mlflow-experiment-id".to_owned(),
            experiment_id,
        )]));
    if gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(builder.build().unwrap())
        .with_resource(
            opentelemetry_sdk::Resource::builder_empty()
                .with_service_name("rust-app")
                .build(),
        )
        .build();
    let tracer = provider.tracer("ferroflow-test");
    tracer.in_span("root", |context| {
        context
            .span()
            .set_attribute(opentelemetry::KeyValue::new("mlflow.spanType", "CHAIN"));
        let mut child = tracer.start("child");
        child.set_attribute(opentelemetry::KeyValue::new("rows", 7i64));
        child.end();
    });
    provider.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_opentelemetry_sdk_exports_to_v1_traces() {
    let app = test_app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    for (protocol, gzip) in [
        (opentelemetry_otlp::Protocol::HttpBinary, false),
        (opentelemetry_otlp::Protocol::HttpJson, true),
    ] {
        let experiment_id = app.experiment(&format!("rust-sdk-{protocol:?}")).await;
        let (sdk_url, sdk_experiment) = (url.clone(), experiment_id.clone());
        let exporter = std::thread::spawn(move || {
            export_with_rust_sdk(sdk_url, sdk_experiment, protocol, gzip)
        });
        tokio::task::spawn_blocking(move || exporter.join().unwrap())
            .await
            .unwrap();
        let found = app.search(&experiment_id, "").await;
        let traces = found["traces"].as_array().unwrap();
        assert_eq!(traces.len(), 1, "{protocol:?}: {found}");
        assert_eq!(traces[0]["state"], "OK");
        assert_eq!(traces[0]["tags"]["service.name"], "rust-app");
        let trace_id = traces[0]["trace_id"].as_str().unwrap();
        let answer = app
            .send(
                Method::GET,
                &format!("{V3}/traces/get?trace_id={trace_id}"),
                None,
            )
            .await;
        let spans = answer.json()["trace"]["spans"].clone();
        assert_eq!(spans[0]["name"], "root");
        assert_eq!(spans[1]["name"], "child");
        assert_eq!(spans[1]["parent_span_id"], spans[0]["span_id"]);
        assert_eq!(
            spans[1]["attributes"][0],
            json!({"key": "rows", "value": {"int_value": 7}})
        );
    }
}
