//! The trace store suite: StartTraceV3 and span ingest merging in either order, token usage, tags,
//! search, deletion, links and assessments, on MLflow's trace tables.

use crate::backends::{Backend, TestDatabase};
use ferroflow_core::model::{NewExperiment, NewRun};
use ferroflow_core::store::TrackingStore;
use ferroflow_core::trace_filter::{parse_trace_filter, parse_trace_order_bys};
use ferroflow_core::trace_json::OrderedJson;
use ferroflow_core::traces::{
    spans_from_otlp, AssessmentRecord, AssessmentWrite, LogSpans, NewTrace, OtlpResourceSpans,
    OtlpSpan, TraceAnalytics, TraceDeletion, TraceQuery, TraceStore,
};
use ferroflow_store::SqlStore;

struct Fixture {
    store: SqlStore,
    experiment_id: i64,
    run_id: String,
    _database: TestDatabase,
}

async fn fixture(backend: Backend) -> Option<Fixture> {
    let database = TestDatabase::create(backend).await?;
    let store = database.open().await.unwrap();
    let experiment_id = store
        .create_experiment(NewExperiment {
            name: "traces".into(),
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
        store,
        experiment_id: experiment_id.parse().unwrap(),
        run_id,
        _database: database,
    })
}

fn otel_trace_id(number: u8) -> Vec<u8> {
    let mut id = vec![0xab; 16];
    id[15] = number;
    id
}

fn trace_id(number: u8) -> String {
    format!("tr-{}{:02x}", "ab".repeat(15), number)
}

fn text(value: &str) -> OrderedJson {
    OrderedJson::String(value.to_owned())
}

/// A span of trace `number`: `span` its last id byte, `parent` its parent's (0 for the root).
fn span(number: u8, span: u8, parent: u8, start_ms: u64, end_ms: u64) -> OtlpSpan {
    OtlpSpan {
        trace_id: otel_trace_id(number),
        span_id: vec![0, 0, 0, 0, 0, 0, 0, span],
        parent_span_id: if parent == 0 {
            Vec::new()
        } else {
            vec![0, 0, 0, 0, 0, 0, 0, parent]
        },
        name: if parent == 0 { "root" } else { "child" }.to_owned(),
        start_time_unix_nano: start_ms * 1_000_000,
        end_time_unix_nano: end_ms * 1_000_000,
        status_code: 1,
        status_message: String::new(),
        attributes: vec![
            (
                "mlflow.spanType".into(),
                text(if parent == 0 { "CHAIN" } else { "LLM" }),
            ),
            (
                "mlflow.spanInputs".into(),
                OrderedJson::Object(vec![("q".into(), OrderedJson::Int(i64::from(span)))]),
            ),
        ],
        events: Vec::new(),
        links: Vec::new(),
    }
}

fn with_usage(mut span: OtlpSpan, tokens: i64) -> OtlpSpan {
    span.attributes.push((
        "mlflow.chat.tokenUsage".into(),
        OrderedJson::Object(vec![
            ("input_tokens".into(), OrderedJson::Int(tokens)),
            ("output_tokens".into(), OrderedJson::Int(1)),
            ("total_tokens".into(), OrderedJson::Int(tokens + 1)),
        ]),
    ));
    span
}

fn batch(fixture: &Fixture, spans: Vec<OtlpSpan>) -> LogSpans {
    batch_in(fixture.experiment_id, spans)
}

fn batch_in(experiment_id: i64, spans: Vec<OtlpSpan>) -> LogSpans {
    LogSpans {
        experiment_id,
        experiment_artifact_location: format!("mlflow-artifacts:/{experiment_id}"),
        traces: spans_from_otlp(&[OtlpResourceSpans {
            resource_attributes: vec![("service.name".into(), text("svc"))],
            spans,
        }])
        .unwrap(),
    }
}

fn new_trace(fixture: &Fixture, number: u8, request_time: i64) -> NewTrace {
    NewTrace {
        trace_id: trace_id(number),
        experiment_id: fixture.experiment_id,
        request_time,
        execution_duration: Some(50),
        state: "OK".into(),
        client_request_id: None,
        request_preview: Some("{\"q\": 1}".into()),
        response_preview: None,
        trace_name: Some(format!("trace-{number}")),
        analytics: TraceAnalytics::default(),
        tags: vec![
            (
                "team".into(),
                if number.is_multiple_of(2) {
                    "even"
                } else {
                    "odd"
                }
                .into(),
            ),
            (
                "mlflow.artifactLocation".into(),
                format!(
                    "mlflow-artifacts:/{}/traces/{}/artifacts",
                    fixture.experiment_id,
                    trace_id(number)
                ),
            ),
            ("mlflow.trace.spansLocation".into(), "TRACKING_STORE".into()),
        ],
        metadata: vec![
            ("mlflow.trace.infoFinalized".into(), "true".into()),
            ("mlflow.user".into(), format!("user-{number}")),
        ],
    }
}

async fn start_trace_then_spans_merge(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    let mut started = new_trace(&fixture, 1, 1_000);
    started.analytics.tokens = [Some(3), Some(4), Some(7), None, None, None];
    let info = fixture.store.start_trace(started).await.unwrap();
    assert_eq!(info.trace_id, trace_id(1));
    assert_eq!(info.experiment_id, fixture.experiment_id.to_string());
    assert_eq!(info.request_time, 1_000);
    assert_eq!(info.execution_duration, Some(50));
    assert_eq!(info.tags["mlflow.traceName"], "trace-1");
    assert_eq!(info.tags["team"], "odd");
    assert_eq!(
        info.trace_metadata["mlflow.trace.tokenUsage"],
        "{\"input_tokens\": 3, \"output_tokens\": 4, \"total_tokens\": 7}"
    );

    fixture
        .store
        .log_spans(batch(
            &fixture,
            vec![
                span(1, 1, 0, 1_000, 1_050),
                with_usage(span(1, 2, 1, 1_010, 1_020), 100),
            ],
        ))
        .await
        .unwrap();
    let info = &fixture.store.trace_infos(&[trace_id(1)]).await.unwrap()[0];
    // StartTraceV3's values are authoritative: time, duration, tokens and preview are kept.
    assert_eq!(info.request_time, 1_000);
    assert_eq!(info.execution_duration, Some(50));
    assert_eq!(info.request_preview.as_deref(), Some("{\"q\": 1}"));
    assert_eq!(info.response_preview, None);
    assert_eq!(
        info.trace_metadata["mlflow.trace.tokenUsage"],
        "{\"input_tokens\": 3, \"output_tokens\": 4, \"total_tokens\": 7}"
    );
    assert_eq!(info.tags["mlflow.trace.spansLocation"], "TRACKING_STORE");
    assert_eq!(info.tags["service.name"], "svc");
    let spans = fixture.store.trace_spans(&[trace_id(1)]).await.unwrap();
    assert_eq!(spans.len(), 2);
    assert!(spans
        .iter()
        .any(|span| span.parent_span_id.as_deref() == Some("0000000000000001")));
    assert!(spans[0].content.contains("\"mlflow.spanType\": \"\\\"")); // dumped attribute values
}

async fn spans_then_start_trace_merge(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    // A child first: the trace is in progress, timed by what it has seen.
    fixture
        .store
        .log_spans(batch(
            &fixture,
            vec![with_usage(span(2, 2, 1, 2_010, 2_020), 10)],
        ))
        .await
        .unwrap();
    let info = &fixture.store.trace_infos(&[trace_id(2)]).await.unwrap()[0];
    assert_eq!(info.state, "IN_PROGRESS");
    assert_eq!(info.request_time, 2_010);
    assert_eq!(info.execution_duration, Some(10));
    assert_eq!(
        info.tags["mlflow.artifactLocation"],
        format!(
            "mlflow-artifacts:/{}/traces/{}/artifacts",
            fixture.experiment_id,
            trace_id(2)
        )
    );
    // The root in another batch: state, time, duration, preview and usage over both batches.
    fixture
        .store
        .log_spans(batch(
            &fixture,
            vec![with_usage(span(2, 1, 0, 2_000, 2_100), 5)],
        ))
        .await
        .unwrap();
    let info = &fixture.store.trace_infos(&[trace_id(2)]).await.unwrap()[0];
    assert_eq!(info.state, "OK");
    assert_eq!(info.request_time, 2_000);
    assert_eq!(info.execution_duration, Some(100));
    assert_eq!(info.request_preview.as_deref(), Some("{\"q\": 1}"));
    // The root carries usage, so its child's is a part of it (MLflow's tree-aware sum).
    assert_eq!(
        info.trace_metadata["mlflow.trace.tokenUsage"],
        "{\"input_tokens\": 5, \"output_tokens\": 1, \"total_tokens\": 6}"
    );
    // Then StartTraceV3: its info wins, the spans stay.
    let mut started = new_trace(&fixture, 2, 1_999);
    started.request_preview = None;
    started.state = "ERROR".into();
    let info = fixture.store.start_trace(started).await.unwrap();
    assert_eq!(info.state, "ERROR");
    assert_eq!(info.request_time, 1_999);
    assert_eq!(info.request_preview.as_deref(), Some("{\"q\": 1}"));
    assert_eq!(info.trace_metadata["mlflow.user"], "user-2");
    assert_eq!(info.trace_metadata["mlflow.trace.infoFinalized"], "true");
    assert_eq!(
        fixture
            .store
            .trace_spans(&[trace_id(2)])
            .await
            .unwrap()
            .len(),
        2
    );
    // A span twice in one batch: the last one is kept (PostgreSQL refuses to update a row twice in
    // one statement).
    let mut renamed = span(2, 2, 1, 2_010, 2_020);
    renamed.name = "renamed".into();
    fixture
        .store
        .log_spans(batch(&fixture, vec![span(2, 2, 1, 2_010, 2_020), renamed]))
        .await
        .unwrap();
    let spans = fixture.store.trace_spans(&[trace_id(2)]).await.unwrap();
    assert_eq!(spans.len(), 2);
    assert!(spans
        .iter()
        .any(|span| span.content.contains("\"name\": \"renamed\"")));
    // Spans re-sent replace their rows.
    fixture
        .store
        .log_spans(batch(&fixture, vec![span(2, 1, 0, 2_000, 2_100)]))
        .await
        .unwrap();
    assert_eq!(
        fixture
            .store
            .trace_spans(&[trace_id(2)])
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn a_failing_batch_stores_nothing(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    // Experiment 987654 does not exist: the foreign keys refuse the batch, and none of it stays.
    let result = fixture
        .store
        .log_spans(batch_in(
            987_654,
            vec![span(3, 1, 0, 1, 2), span(4, 1, 0, 1, 2)],
        ))
        .await;
    assert!(result.is_err());
    assert!(fixture
        .store
        .trace_infos(&[trace_id(3), trace_id(4)])
        .await
        .unwrap()
        .is_empty());
    assert!(fixture
        .store
        .trace_spans(&[trace_id(3), trace_id(4)])
        .await
        .unwrap()
        .is_empty());
}

fn query(fixture: &Fixture, filter: &str, order_by: &[&str], max_results: usize) -> TraceQuery {
    TraceQuery {
        experiment_ids: vec![fixture.experiment_id],
        filter: parse_trace_filter(filter).unwrap(),
        order_by: parse_trace_order_bys(
            &order_by
                .iter()
                .map(|item| (*item).to_owned())
                .collect::<Vec<_>>(),
        )
        .unwrap(),
        max_results,
        offset: 0,
    }
}

async fn search(fixture: &Fixture, filter: &str, order_by: &[&str]) -> Vec<String> {
    fixture
        .store
        .search_traces(query(fixture, filter, order_by, 100))
        .await
        .unwrap()
        .traces
        .into_iter()
        .map(|info| info.trace_id)
        .collect()
}

fn assessment(
    trace: u8,
    id: &str,
    name: &str,
    value: &str,
    numeric: Option<f64>,
) -> AssessmentRecord {
    AssessmentRecord {
        assessment_id: id.to_owned(),
        trace_id: trace_id(trace),
        name: name.to_owned(),
        assessment_type: "feedback".into(),
        value: value.to_owned(),
        error: None,
        created_timestamp: 10,
        last_updated_timestamp: 10,
        source_type: "HUMAN".into(),
        source_id: Some("me".into()),
        run_id: None,
        span_id: None,
        rationale: None,
        overrides: None,
        valid: true,
        metadata: None,
        aggregate_value: numeric,
        is_numeric_value: numeric.is_some(),
    }
}

async fn search_filters_order_and_pages(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    for number in 1..=4u8 {
        let mut trace = new_trace(&fixture, number, i64::from(number) * 1_000);
        trace.execution_duration = Some(i64::from(number) * 10);
        if number == 2 {
            trace.analytics.tokens = [Some(3), Some(4), Some(7), None, None, None];
        }
        if number == 3 {
            trace.state = "ERROR".into();
            trace
                .metadata
                .push(("mlflow.sourceRun".into(), fixture.run_id.clone()));
        }
        fixture.store.start_trace(trace).await.unwrap();
        let start = u64::from(number) * 1_000;
        fixture
            .store
            .log_spans(batch(
                &fixture,
                vec![
                    span(number, 1, 0, start, start + 5),
                    span(number, 2, 1, start, start + 1),
                ],
            ))
            .await
            .unwrap();
    }
    fixture
        .store
        .link_traces(
            &[trace_id(4)],
            "run",
            std::slice::from_ref(&fixture.run_id),
            5,
        )
        .await
        .unwrap();
    assert_eq!(
        fixture
            .store
            .create_assessment(&assessment(2, "a-1", "rating", "5.0", Some(5.0)))
            .await
            .unwrap(),
        AssessmentWrite::Done
    );
    fixture
        .store
        .create_assessment(&assessment(4, "a-2", "rating", "2.0", Some(2.0)))
        .await
        .unwrap();

    let ids = |numbers: &[u8]| {
        numbers
            .iter()
            .map(|number| trace_id(*number))
            .collect::<Vec<_>>()
    };
    assert_eq!(search(&fixture, "", &[]).await, ids(&[4, 3, 2, 1]));
    assert_eq!(
        search(&fixture, "", &["timestamp_ms ASC"]).await,
        ids(&[1, 2, 3, 4])
    );
    assert_eq!(search(&fixture, "status = 'ERROR'", &[]).await, ids(&[3]));
    assert_eq!(
        search(&fixture, "status != 'ERROR'", &[]).await,
        ids(&[4, 2, 1])
    );
    assert_eq!(
        search(&fixture, "timestamp_ms >= 2000 AND timestamp <= 3000", &[]).await,
        ids(&[3, 2])
    );
    assert_eq!(
        search(&fixture, "execution_time > 25", &[]).await,
        ids(&[4, 3])
    );
    assert_eq!(search(&fixture, "end_time_ms = 2020", &[]).await, ids(&[2]));
    assert_eq!(
        search(&fixture, "tags.team = 'even'", &[]).await,
        ids(&[4, 2])
    );
    assert_eq!(
        search(&fixture, "tag.team LIKE 'ev%'", &[]).await,
        ids(&[4, 2])
    );
    assert_eq!(
        search(&fixture, "tag.team LIKE 'EV%'", &[]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        search(&fixture, "tag.team ILIKE 'EV%'", &[]).await,
        ids(&[4, 2])
    );
    assert_eq!(
        search(&fixture, "tag.missing IS NULL", &[]).await,
        ids(&[4, 3, 2, 1])
    );
    assert_eq!(search(&fixture, "name = 'trace-1'", &[]).await, ids(&[1]));
    assert_eq!(
        search(&fixture, "name IN ('trace-1', 'trace-2')", &[]).await,
        ids(&[2, 1])
    );
    assert_eq!(
        search(&fixture, "metadata.`mlflow.user` = 'user-2'", &[]).await,
        ids(&[2])
    );
    assert_eq!(
        search(&fixture, &format!("run_id = '{}'", fixture.run_id), &[]).await,
        ids(&[4, 3])
    );
    assert_eq!(
        search(&fixture, &format!("request_id = '{}'", trace_id(1)), &[]).await,
        ids(&[1])
    );
    assert_eq!(
        search(&fixture, "span.type = 'LLM'", &[]).await,
        ids(&[4, 3, 2, 1])
    );
    assert_eq!(
        search(&fixture, "span.name = 'nope'", &[]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        search(
            &fixture,
            "span.attributes.mlflow.spanType LIKE '%LLM%'",
            &[]
        )
        .await
        .len(),
        4
    );
    assert!(search(
        &fixture,
        "span.attributes.`mlflow.spanType` LIKE '%EMBEDDING%'",
        &[]
    )
    .await
    .is_empty());
    assert_eq!(
        search(&fixture, "feedback.rating >= 3", &[]).await,
        ids(&[2])
    );
    assert_eq!(
        search(&fixture, "feedback.rating = 2", &[]).await,
        ids(&[4])
    );
    assert_eq!(
        search(&fixture, "feedback.rating IS NOT NULL", &[]).await,
        ids(&[4, 2])
    );
    assert_eq!(
        search(&fixture, "name ILIKE 'TRACE-%' AND tag.team = 'odd'", &[]).await,
        ids(&[3, 1])
    );
    assert_eq!(
        search(&fixture, "", &["tag.team DESC", "timestamp_ms ASC"]).await,
        ids(&[1, 3, 2, 4])
    );
    assert_eq!(
        search(&fixture, "", &["name DESC"]).await,
        ids(&[4, 3, 2, 1])
    );

    // Pages of two, each knowing whether another follows.
    let mut paged = query(&fixture, "", &[], 2);
    let first = fixture.store.search_traces(paged.clone()).await.unwrap();
    assert!(first.has_more);
    assert_eq!(first.traces.len(), 2);
    paged.offset = 2;
    let second = fixture.store.search_traces(paged).await.unwrap();
    assert!(!second.has_more);
    assert_eq!(second.traces[1].trace_id, trace_id(1));
    assert_eq!(second.traces[0].assessments.len(), 1);
}

async fn tags_set_and_delete(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    fixture
        .store
        .start_trace(new_trace(&fixture, 1, 1))
        .await
        .unwrap();
    assert!(fixture
        .store
        .set_trace_tag(&trace_id(1), "k", "v1")
        .await
        .unwrap());
    assert!(fixture
        .store
        .set_trace_tag(&trace_id(1), "k", "v2")
        .await
        .unwrap());
    assert!(fixture
        .store
        .set_trace_tag(&trace_id(1), "mlflow.traceName", "renamed")
        .await
        .unwrap());
    assert!(!fixture
        .store
        .set_trace_tag(&trace_id(9), "k", "v")
        .await
        .unwrap());
    let info = &fixture.store.trace_infos(&[trace_id(1)]).await.unwrap()[0];
    assert_eq!(info.tags["k"], "v2");
    assert_eq!(info.tags["mlflow.traceName"], "renamed");
    assert_eq!(
        fixture
            .store
            .delete_trace_tag(&trace_id(1), "k")
            .await
            .unwrap(),
        Some(true)
    );
    assert_eq!(
        fixture
            .store
            .delete_trace_tag(&trace_id(1), "k")
            .await
            .unwrap(),
        Some(false)
    );
    assert_eq!(
        fixture
            .store
            .delete_trace_tag(&trace_id(1), "mlflow.traceName")
            .await
            .unwrap(),
        Some(true)
    );
    assert_eq!(
        fixture
            .store
            .delete_trace_tag(&trace_id(1), "mlflow.traceName")
            .await
            .unwrap(),
        Some(false)
    );
    assert_eq!(
        fixture
            .store
            .delete_trace_tag(&trace_id(9), "k")
            .await
            .unwrap(),
        None
    );
    let info = &fixture.store.trace_infos(&[trace_id(1)]).await.unwrap()[0];
    assert!(!info.tags.contains_key("k"));
    assert!(!info.tags.contains_key("mlflow.traceName"));
}

async fn delete_traces_with_everything_attached(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    for number in 1..=5u8 {
        fixture
            .store
            .start_trace(new_trace(&fixture, number, i64::from(number) * 100))
            .await
            .unwrap();
        fixture
            .store
            .log_spans(batch(&fixture, vec![span(number, 1, 0, 1, 2)]))
            .await
            .unwrap();
    }
    fixture
        .store
        .create_assessment(&assessment(1, "a-1", "rating", "1.0", Some(1.0)))
        .await
        .unwrap();
    let deleted = fixture
        .store
        .delete_traces(
            fixture.experiment_id,
            TraceDeletion::Ids(vec![trace_id(1), trace_id(9)]),
        )
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    // The two oldest of those at or before 400.
    let deleted = fixture
        .store
        .delete_traces(
            fixture.experiment_id,
            TraceDeletion::OlderThan {
                max_timestamp_millis: 400,
                max_traces: Some(2),
            },
        )
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    let left: Vec<String> = fixture
        .store
        .trace_infos(&(1..=5).map(trace_id).collect::<Vec<_>>())
        .await
        .unwrap()
        .into_iter()
        .map(|info| info.trace_id)
        .collect();
    assert_eq!(left, vec![trace_id(4), trace_id(5)]);
    assert!(fixture
        .store
        .trace_spans(&[trace_id(1), trace_id(2)])
        .await
        .unwrap()
        .is_empty());
    assert!(fixture
        .store
        .get_assessment(&trace_id(1), "a-1")
        .await
        .unwrap()
        .is_none());
    // Another experiment's traces are not touched.
    let deleted = fixture
        .store
        .delete_traces(
            fixture.experiment_id + 1,
            TraceDeletion::Ids(vec![trace_id(4)]),
        )
        .await
        .unwrap();
    assert_eq!(deleted, 0);
}

async fn assessments_override_update_and_delete(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    fixture
        .store
        .start_trace(new_trace(&fixture, 1, 77))
        .await
        .unwrap();
    assert_eq!(
        fixture
            .store
            .create_assessment(&assessment(9, "a-0", "x", "1.0", None))
            .await
            .unwrap(),
        AssessmentWrite::TraceNotFound
    );
    fixture
        .store
        .create_assessment(&assessment(1, "a-1", "rating", "1.0", Some(1.0)))
        .await
        .unwrap();
    let mut overriding = assessment(1, "a-2", "rating", "4.0", Some(4.0));
    overriding.overrides = Some("a-1".into());
    fixture.store.create_assessment(&overriding).await.unwrap();
    let mut bad = assessment(1, "a-3", "rating", "4.0", Some(4.0));
    bad.overrides = Some("a-missing".into());
    assert_eq!(
        fixture.store.create_assessment(&bad).await.unwrap(),
        AssessmentWrite::OverriddenNotFound
    );
    assert!(fixture
        .store
        .get_assessment(&trace_id(1), "a-3")
        .await
        .unwrap()
        .is_none());
    assert!(
        !fixture
            .store
            .get_assessment(&trace_id(1), "a-1")
            .await
            .unwrap()
            .unwrap()
            .valid
    );
    let mut updated = fixture
        .store
        .get_assessment(&trace_id(1), "a-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.overrides.as_deref(), Some("a-1"));
    updated.value = "\"great\"".into();
    updated.rationale = Some("because".into());
    updated.last_updated_timestamp = 99;
    fixture.store.update_assessment(&updated).await.unwrap();
    assert_eq!(
        fixture
            .store
            .get_assessment(&trace_id(1), "a-2")
            .await
            .unwrap()
            .unwrap(),
        updated
    );
    fixture
        .store
        .delete_assessment(&trace_id(1), "a-2")
        .await
        .unwrap();
    fixture
        .store
        .delete_assessment(&trace_id(1), "a-2")
        .await
        .unwrap();
    assert!(
        fixture
            .store
            .get_assessment(&trace_id(1), "a-1")
            .await
            .unwrap()
            .unwrap()
            .valid
    );
    let info = &fixture.store.trace_infos(&[trace_id(1)]).await.unwrap()[0];
    assert_eq!(info.assessments.len(), 1);
    assert_eq!(info.assessments[0].assessment_id, "a-1");
}

async fn links_are_kept_once(backend: Backend) {
    let Some(fixture) = fixture(backend).await else {
        return;
    };
    fixture
        .store
        .start_trace(new_trace(&fixture, 1, 1))
        .await
        .unwrap();
    for _ in 0..2 {
        fixture
            .store
            .link_traces(
                &[trace_id(1), trace_id(9)],
                "prompt_version",
                &["p/1".to_owned(), "p/2".to_owned()],
                5,
            )
            .await
            .unwrap();
    }
    assert_eq!(
        search(&fixture, "prompt = 'p/2'", &[]).await,
        vec![trace_id(1)]
    );
    assert!(search(&fixture, "prompt = 'p/3'", &[]).await.is_empty());
}

on_every_backend!(
    start_trace_then_spans_merge,
    spans_then_start_trace_merge,
    a_failing_batch_stores_nothing,
    search_filters_order_and_pages,
    tags_set_and_delete,
    delete_traces_with_everything_attached,
    assessments_override_update_and_delete,
    links_are_kept_once,
);
