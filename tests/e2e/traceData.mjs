// Data for the registry, prompt and trace journeys, created the way clients create it: registry rows
// through the REST API, spans through OTLP JSON (`POST /v1/traces`), assessments through the v3 API.
import { randomBytes } from "node:crypto";

const hex = (bytes) => randomBytes(bytes).toString("hex");

/** A registered model with versions (one per `sources` entry), each from a new run of `experimentId`. */
export async function createModel(api, name, { experimentId, versions = 1, description, tags = [] } = {}) {
  await api.post("/registered-models/create", { name, description, tags });
  const created = [];
  for (let index = 0; index < versions; index++) {
    const runId = experimentId ? await api.createRun(experimentId, { name: `train-${name}-${index + 1}` }) : undefined;
    const answer = await api.post("/model-versions/create", {
      name,
      source: runId ? `runs:/${runId}/model` : `s3://models-bucket/${name}/${index + 1}`,
      run_id: runId,
    });
    created.push({ version: answer.model_version.version, runId });
  }
  return created;
}

/** A prompt as MLflow's client registers one: a tagged registered model and a version per template. */
export async function createPrompt(api, name, templates, { chat = false, messages = [] } = {}) {
  await api.post("/registered-models/create", { name, tags: [{ key: "mlflow.prompt.is_prompt", value: "true" }] });
  for (const [index, template] of templates.entries()) {
    await api.post("/model-versions/create", {
      name,
      source: "prompt-template",
      description: messages[index],
      tags: [
        { key: "mlflow.prompt.is_prompt", value: "true" },
        { key: "mlflow.prompt.text", value: chat ? JSON.stringify(template) : template },
        { key: "_mlflow_prompt_type", value: chat ? "chat" : "text" },
      ],
    });
  }
}

const attribute = (key, value) => ({ key, value: { stringValue: JSON.stringify(value) } });

/**
 * Sends one trace as OTLP JSON: `spans` is a list of {name, parent (index), startMs, endMs, type, inputs,
 * outputs, attributes, events, error, usage, cost, tags (root only)}. Returns MLflow's trace id.
 */
export async function sendTrace(url, experimentId, spans, { startMs = Date.now() - 60_000 } = {}) {
  const traceId = hex(16);
  const ids = spans.map(() => hex(8));
  const nanos = (ms) => String(BigInt(Math.round((startMs + ms) * 1000)) * 1000n);
  const otlpSpans = spans.map((span, index) => {
    const attributes = [attribute("mlflow.spanType", span.type ?? "UNKNOWN")];
    if (span.inputs !== undefined) attributes.push(attribute("mlflow.spanInputs", span.inputs));
    if (span.outputs !== undefined) attributes.push(attribute("mlflow.spanOutputs", span.outputs));
    if (span.usage) attributes.push(attribute("mlflow.chat.tokenUsage", span.usage));
    if (span.cost) attributes.push(attribute("mlflow.llm.cost", span.cost));
    for (const [key, value] of Object.entries(span.attributes ?? {})) attributes.push(attribute(key, value));
    for (const [key, value] of Object.entries(span.tags ?? {})) attributes.push({ key: `mlflow.traceTag.${key}`, value: { stringValue: value } });
    return {
      traceId,
      spanId: ids[index],
      parentSpanId: span.parent === undefined ? "" : ids[span.parent],
      name: span.name,
      kind: 1,
      startTimeUnixNano: nanos(span.startMs),
      endTimeUnixNano: nanos(span.endMs),
      attributes,
      events: (span.events ?? []).map((event) => ({
        name: event.name,
        timeUnixNano: nanos(event.atMs),
        attributes: Object.entries(event.attributes ?? {}).map(([key, value]) => ({ key, value: { stringValue: String(value) } })),
      })),
      status: span.error ? { code: 2, message: span.error } : { code: 1 },
    };
  });
  const body = { resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ scope: { name: "e2e" }, spans: otlpSpans }] }] };
  const response = await fetch(`${url}/v1/traces`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "x-mlflow-experiment-id": experimentId },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`POST /v1/traces: ${response.status} ${await response.text()}`);
  return `tr-${traceId}`;
}

/** Adds feedback or an expectation to a trace through the v3 assessments API. */
export async function addAssessment(url, traceId, assessment) {
  const response = await fetch(`${url}/api/3.0/mlflow/traces/${traceId}/assessments`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ assessment: { trace_id: traceId, ...assessment } }),
  });
  if (!response.ok) throw new Error(`create assessment: ${response.status} ${await response.text()}`);
  return (await response.json()).assessment;
}
