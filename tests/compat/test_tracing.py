"""MLflow 3 tracing through the official client: decorated and manual spans, get and search, tags,
deletion, run links, assessments, and OTLP from the OpenTelemetry SDK's own exporter."""

import os
import time

# Traces are exported synchronously, so a trace is on the server when the traced call returns (the
# async queue would add a flush wait per test). Read when the client first sets up tracing.
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")

import mlflow  # noqa: E402
import pytest  # noqa: E402
from mlflow.entities import AssessmentSource, SpanStatusCode, SpanType  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402


def now_ms():
    return int(time.time() * 1000)


def flush():
    mlflow.flush_trace_async_logging(terminate=False)


@pytest.fixture
def traced_experiment(experiment_id):
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


@mlflow.trace(span_type=SpanType.LLM)
def ask_model(question):
    span = mlflow.get_current_active_span()
    span.set_attributes({"count": 3, "ratio": 0.5, "labels": ["a", "b"], "ok": True})
    span.set_attribute(
        "mlflow.chat.tokenUsage", {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}
    )
    return f"answer to {question}"


@mlflow.trace(name="agent", span_type=SpanType.CHAIN)
def agent(question, tag=None):
    if tag:
        mlflow.update_current_trace(tags={"team": tag})
    return {"answer": ask_model(question)}


def test_decorated_functions_with_nested_spans(server, traced_experiment):
    before = now_ms()
    result = agent("why?")
    assert result == {"answer": "answer to why?"}
    flush()
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id.startswith("tr-") and len(trace_id) == 35

    trace = mlflow.get_trace(trace_id)
    info = trace.info
    assert info.trace_id == trace_id
    assert info.experiment_id == traced_experiment
    assert info.state.value == "OK"
    assert before - 5000 <= info.request_time <= now_ms() + 5000
    assert info.execution_duration is not None and info.execution_duration >= 0
    assert info.tags["mlflow.traceName"] == "agent"
    assert info.tags["mlflow.trace.spansLocation"] == "TRACKING_STORE"
    assert info.tags["mlflow.artifactLocation"].endswith(f"/traces/{trace_id}/artifacts")
    assert info.request_preview == '{"question": "why?", "tag": null}'
    assert info.response_preview == '{"answer": "answer to why?"}'
    assert info.trace_metadata["mlflow.trace_schema.version"] == "3"
    assert info.token_usage == {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}

    spans = trace.data.spans
    assert [span.name for span in spans] == ["agent", "ask_model"]
    root, child = spans
    assert root.parent_id is None
    assert child.parent_id == root.span_id
    assert root.span_type == SpanType.CHAIN
    assert child.span_type == SpanType.LLM
    assert root.inputs == {"question": "why?", "tag": None}
    assert root.outputs == {"answer": "answer to why?"}
    assert child.inputs == {"question": "why?"}
    assert child.outputs == "answer to why?"
    assert child.attributes["count"] == 3
    assert child.attributes["ratio"] == 0.5
    assert child.attributes["labels"] == ["a", "b"]
    assert child.attributes["ok"] is True
    assert child.status.status_code == SpanStatusCode.OK
    assert root.start_time_ns <= child.start_time_ns <= child.end_time_ns <= root.end_time_ns
    assert child.request_id == trace_id


def test_manual_spans_and_errors(server, traced_experiment):
    with mlflow.start_span(name="pipeline", span_type=SpanType.CHAIN) as root:
        root.set_inputs({"doc": "text"})
        with mlflow.start_span(name="retrieve", span_type=SpanType.RETRIEVER) as retrieve:
            retrieve.set_outputs(["d1", "d2"])
        with pytest.raises(ValueError):
            with mlflow.start_span(name="fail", span_type=SpanType.TOOL) as failing:
                failing.set_attribute("attempt", 1)
                raise ValueError("tool broke")
        root.set_outputs("done")
    flush()
    trace_id = root.trace_id
    trace = mlflow.get_trace(trace_id)
    assert trace.info.state.value == "OK"
    by_name = {span.name: span for span in trace.data.spans}
    assert set(by_name) == {"pipeline", "retrieve", "fail"}
    assert trace.data.spans[0].name == "pipeline"
    assert by_name["retrieve"].span_type == SpanType.RETRIEVER
    assert by_name["retrieve"].outputs == ["d1", "d2"]
    assert by_name["fail"].status.status_code == SpanStatusCode.ERROR
    assert by_name["fail"].attributes["attempt"] == 1
    events = by_name["fail"].events
    assert [event.name for event in events] == ["exception"]
    assert events[0].attributes["exception.message"] == "tool broke"
    assert by_name["pipeline"].inputs == {"doc": "text"}

    @mlflow.trace
    def broken():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        broken()
    flush()
    failed = mlflow.get_trace(mlflow.get_last_active_trace_id())
    assert failed.info.state.value == "ERROR"
    assert failed.data.spans[0].status.status_code == SpanStatusCode.ERROR


def make_traces(tags):
    ids = []
    for tag in tags:
        agent(f"q-{tag}", tag=tag)
        ids.append(mlflow.get_last_active_trace_id())
        time.sleep(0.01)
    flush()
    return ids


def test_search_traces_filters_order_and_pages(server, client, traced_experiment):
    ids = make_traces(["red", "blue", "red"])
    found = mlflow.search_traces(locations=[traced_experiment], return_type="list")
    assert [trace.info.trace_id for trace in found] == ids[::-1]
    assert all(len(trace.data.spans) == 2 for trace in found)
    frame = mlflow.search_traces(locations=[traced_experiment])
    assert list(frame["trace_id"]) == ids[::-1]
    assert frame["request"][0] == {"question": "q-red", "tag": "red"}
    assert frame["response"][0] == {"answer": "answer to q-red"}
    assert list(frame["state"]) == ["OK"] * 3

    def search(filter_string=None, order_by=None):
        traces = mlflow.search_traces(locations=[traced_experiment], filter_string=filter_string,
                                      order_by=order_by, return_type="list", include_spans=False)
        return [trace.info.trace_id for trace in traces]

    assert search("tags.team = 'red'") == [ids[2], ids[0]]
    assert search("tag.team != 'red'") == [ids[1]]
    assert search("tags.team LIKE 'bl%'") == [ids[1]]
    assert search("tags.team RLIKE '^r.d$'") == [ids[2], ids[0]]
    assert search("trace.status = 'OK' AND tags.team = 'red'") == [ids[2], ids[0]]
    assert search("name = 'agent'") == ids[::-1]
    assert search("name = 'other'") == []
    assert search("status = 'ERROR'") == []
    first = mlflow.get_trace(ids[0]).info.request_time
    assert search(f"timestamp_ms > {first}") == [ids[2], ids[1]]
    assert search("execution_time_ms >= 0") == ids[::-1]
    assert search(f"request_id = '{ids[1]}'") == [ids[1]]
    assert search("span.type = 'LLM'") == ids[::-1]
    assert search("span.name = 'ask_model'") == ids[::-1]
    assert search("metadata.`mlflow.trace_schema.version` = '3'") == ids[::-1]
    usage = '{"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}'
    assert search(f"metadata.`mlflow.trace.tokenUsage` = '{usage}'") == ids[::-1]
    assert search("metadata.`mlflow.trace.tokenUsage` IS NULL") == []
    assert search(order_by=["timestamp_ms ASC"]) == ids

    page = client.search_traces(locations=[traced_experiment], max_results=2)
    assert [trace.info.trace_id for trace in page] == [ids[2], ids[1]]
    assert page.token
    rest = client.search_traces(locations=[traced_experiment], max_results=2, page_token=page.token)
    assert [trace.info.trace_id for trace in rest] == [ids[0]]

    with pytest.raises(MlflowException, match="INVALID_PARAMETER_VALUE|Invalid"):
        search("bogus = 'x'")


def test_trace_tags(server, client, traced_experiment):
    (trace_id,) = make_traces(["green"])
    mlflow.set_trace_tag(trace_id, "reviewed", "yes")
    client.set_trace_tag(trace_id, "reviewed", "twice")
    assert mlflow.get_trace(trace_id).info.tags["reviewed"] == "twice"
    mlflow.delete_trace_tag(trace_id, "reviewed")
    assert "reviewed" not in mlflow.get_trace(trace_id).info.tags
    with pytest.raises(MlflowException, match="No trace tag with key 'reviewed'"):
        client.delete_trace_tag(trace_id, "reviewed")
    # Refused (the client logs the server's message as a warning): the trace keeps its spans location.
    client.set_trace_tag(trace_id, "mlflow.trace.spansLocation", "ARTIFACT_REPO")
    assert mlflow.get_trace(trace_id).info.tags["mlflow.trace.spansLocation"] == "TRACKING_STORE"


def test_delete_traces(server, client, traced_experiment):
    ids = make_traces(["a", "b", "c", "d"])
    assert client.delete_traces(traced_experiment, trace_ids=[ids[0]]) == 1
    cutoff = mlflow.get_trace(ids[2]).info.request_time
    assert client.delete_traces(traced_experiment, max_timestamp_millis=cutoff, max_traces=1) == 1
    remaining = mlflow.search_traces(locations=[traced_experiment], return_type="list")
    assert [trace.info.trace_id for trace in remaining] == [ids[3], ids[2]]
    with pytest.raises(MlflowException, match="max_timestamp_millis"):
        client.delete_traces(traced_experiment)


def test_traces_of_a_run(server, client, traced_experiment):
    with mlflow.start_run() as run:
        agent("inside")
        inside = mlflow.get_last_active_trace_id()
    (outside,) = make_traces(["x"])
    flush()
    assert mlflow.get_trace(inside).info.trace_metadata["mlflow.sourceRun"] == run.info.run_id
    found = mlflow.search_traces(run_id=run.info.run_id, return_type="list")
    assert [trace.info.trace_id for trace in found] == [inside]
    client.link_traces_to_run([outside], run.info.run_id)
    found = mlflow.search_traces(run_id=run.info.run_id, return_type="list")
    assert [trace.info.trace_id for trace in found] == [outside, inside]


def test_assessments(server, traced_experiment):
    (trace_id,) = make_traces(["judge"])
    feedback = mlflow.log_feedback(
        trace_id=trace_id, name="helpful", value=4, rationale="mostly",
        source=AssessmentSource(source_type="HUMAN", source_id="alice"),
    )
    assert feedback.assessment_id.startswith("a-")
    assert feedback.value == 4
    expectation = mlflow.log_expectation(trace_id=trace_id, name="expected",
                                         value={"answer": ["x", 1]})
    label = mlflow.log_expectation(trace_id=trace_id, name="label", value="yes")

    fetched = mlflow.get_assessment(trace_id, feedback.assessment_id)
    assert fetched.name == "helpful"
    assert fetched.value == 4
    assert fetched.rationale == "mostly"
    assert fetched.source.source_type == "HUMAN"
    assert fetched.source.source_id == "alice"
    assert fetched.valid is True
    assert mlflow.get_assessment(trace_id, expectation.assessment_id).value == {"answer": ["x", 1]}
    assert mlflow.get_assessment(trace_id, label.assessment_id).value == "yes"

    updated = mlflow.update_assessment(
        trace_id=trace_id, assessment_id=feedback.assessment_id,
        assessment=mlflow.entities.Feedback(name="helpful", value=5, rationale="on reflection"),
    )
    assert updated.value == 5
    assert updated.rationale == "on reflection"
    assert mlflow.get_assessment(trace_id, feedback.assessment_id).value == 5

    override = mlflow.override_feedback(trace_id=trace_id, assessment_id=feedback.assessment_id,
                                        value=2, rationale="corrected")
    assert override.overrides == feedback.assessment_id
    assert mlflow.get_assessment(trace_id, feedback.assessment_id).valid is False

    names = sorted(a.name for a in mlflow.get_trace(trace_id).info.assessments)
    assert names == ["expected", "helpful", "helpful", "label"]
    found = mlflow.search_traces(locations=[traced_experiment], filter_string="feedback.helpful < 3",
                                 return_type="list")
    assert [trace.info.trace_id for trace in found] == [trace_id]

    mlflow.delete_assessment(trace_id, override.assessment_id)
    assert mlflow.get_assessment(trace_id, feedback.assessment_id).valid is True
    with pytest.raises(MlflowException, match="not found"):
        mlflow.get_assessment(trace_id, override.assessment_id)


def test_otlp_from_the_opentelemetry_sdk(server, traced_experiment):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "otel-app"}))
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces",
                                headers={"x-mlflow-experiment-id": traced_experiment})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("compat")
    with tracer.start_as_current_span("request") as root:
        root.set_attribute("http.method", "GET")
        with tracer.start_as_current_span("db") as child:
            child.set_attribute("rows", 7)
        with tracer.start_as_current_span("chat") as llm:
            llm.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-x",
                                "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 5})
    provider.shutdown()
    trace_id = f"tr-{root.get_span_context().trace_id:032x}"

    found = mlflow.search_traces(locations=[traced_experiment], return_type="list")
    assert [trace.info.trace_id for trace in found] == [trace_id]
    trace = mlflow.get_trace(trace_id)
    assert trace.info.state.value == "OK"
    assert trace.info.tags["service.name"] == "otel-app"
    assert [span.name for span in trace.data.spans] == ["request", "db", "chat"]
    assert trace.data.spans[1].attributes["rows"] == 7
    assert trace.data.spans[0].attributes["http.method"] == "GET"
    assert trace.data.spans[1].parent_id == trace.data.spans[0].span_id
    # The OpenTelemetry GenAI conventions become MLflow's span type and token usage.
    assert trace.data.spans[2].span_type == SpanType.CHAT_MODEL
    assert trace.data.spans[2].attributes["mlflow.llm.model"] == "gpt-x"
    assert trace.info.token_usage == {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}


def test_genai_evaluate_with_a_code_scorer(server, client, traced_experiment):
    from mlflow.genai.scorers import scorer

    @scorer
    def exact(outputs, expectations):
        return outputs == expectations["expected"]

    def predict(question):
        return question.upper()

    data = [{"inputs": {"question": "a"}, "expectations": {"expected": "A"}},
            {"inputs": {"question": "b"}, "expectations": {"expected": "x"}}]
    result = mlflow.genai.evaluate(data=data, predict_fn=predict, scorers=[exact])
    assert result.metrics["exact/mean"] == 0.5
    run = client.get_run(result.run_id)
    assert run.data.metrics["exact/mean"] == 0.5
    assert run.data.tags["mlflow.runType"] == "genai_evaluate"
    traces = mlflow.search_traces(run_id=result.run_id, return_type="list")
    assert len(traces) == 2
    by_question = {trace.data.spans[0].inputs["question"]: trace for trace in traces}
    assert set(by_question) == {"a", "b"}
    for question, passed, expected in [("a", True, "A"), ("b", False, "x")]:
        trace = by_question[question]
        assert trace.data.spans[0].outputs == question.upper()
        assessments = {assessment.name: assessment for assessment in trace.info.assessments}
        assert assessments["exact"].value is passed
        assert assessments["exact"].source.source_type == "CODE"
        assert assessments["expected"].value == expected


# ------------------------------------------------------------------------------------ interop


def _write_traces(url: str, name: str) -> tuple[str, list[str]]:
    """A traced call, a manual trace with an error span, a tag and assessments, through the client."""
    mlflow.set_tracking_uri(url)
    experiment_id = mlflow.set_experiment(name).experiment_id
    agent("interop?", tag="shared")
    first = mlflow.get_last_active_trace_id()
    with mlflow.start_span(name="manual") as root:
        root.set_inputs({"n": 1})
        with pytest.raises(KeyError):
            with mlflow.start_span(name="lookup"):
                raise KeyError("missing")
    second = root.trace_id
    flush()
    mlflow.set_trace_tag(second, "reviewed", "ünïcode ✓")
    mlflow.log_feedback(trace_id=first, name="helpful", value=True, rationale="fine")
    mlflow.log_expectation(trace_id=first, name="expected", value={"answer": [1, 2]})
    return experiment_id, [first, second]


def _read_traces(url: str, experiment_id: str, ids: list[str]) -> dict:
    """What a server answers for the traces, normalized for comparison across servers."""
    import requests

    api = f"{url}/api/3.0/mlflow"
    found = requests.post(f"{api}/traces/search", timeout=30, json={
        "locations": [{"type": "MLFLOW_EXPERIMENT",
                       "mlflow_experiment": {"experiment_id": experiment_id}}],
        "max_results": 100}).json()
    out = {"search": sorted(trace["trace_id"] for trace in found["traces"])}
    for trace_id in ids:
        trace = requests.get(f"{api}/traces/get", params={"trace_id": trace_id},
                             timeout=30).json()["trace"]
        for assessment in trace["trace_info"].get("assessments", []):
            assessment.pop("assessment_id")
        trace["trace_info"].get("assessments", []).sort(key=lambda a: a["assessment_name"])
        out[trace_id] = trace
    return out


@pytest.mark.interop
def test_traces_interop_between_servers(tmp_path):
    """ferroflow and `mlflow server` read each other's traces from one SQLite database."""
    import compat_servers as cs

    wanted = cs.requested_servers()
    if "ferroflow" not in wanted or "mlflow" not in wanted or "sqlite" not in cs.requested_backends():
        pytest.skip("TRACE INTEROP NOT RUN: needs COMPAT_SERVERS=ferroflow,mlflow and sqlite")
    for kind in ("ferroflow", "mlflow"):
        if problem := cs.binary_problem(kind):
            pytest.skip(f"TRACE INTEROP NOT RUN: {kind} unavailable: {problem}")
    database = cs.Database("sqlite", tmp_path).create()
    ferroflow = cs.Server("ferroflow", tmp_path, database).start()
    try:
        ff_experiment, ff_ids = _write_traces(ferroflow.url, "traces-by-ferroflow")
        ff_view = _read_traces(ferroflow.url, ff_experiment, ff_ids)
    finally:
        ferroflow.stop()
    reference = cs.Server("mlflow", tmp_path, database).start()
    try:
        assert _read_traces(reference.url, ff_experiment, ff_ids) == ff_view
        ml_experiment, ml_ids = _write_traces(reference.url, "traces-by-mlflow")
        ml_view = _read_traces(reference.url, ml_experiment, ml_ids)
    finally:
        reference.stop()
    ferroflow = cs.Server("ferroflow", tmp_path, database).start()
    try:
        assert _read_traces(ferroflow.url, ml_experiment, ml_ids) == ml_view
    finally:
        ferroflow.stop()
