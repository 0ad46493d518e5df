// Typed calls of the MLflow 3 trace API, and the decoding of the OpenTelemetry span JSON that
// `GET /traces/get` answers into plain values the trace page shows.
import { API_V3, get, post } from "./api";

export const TOKEN_USAGE = "mlflow.trace.tokenUsage";
export const COST = "mlflow.trace.cost";

export interface AssessmentJson {
  assessment_id?: string;
  assessment_name?: string;
  span_id?: string;
  source?: { source_type?: string; source_id?: string };
  create_time?: string;
  feedback?: { value?: unknown; error?: unknown };
  expectation?: { value?: unknown; serialized_value?: unknown };
  rationale?: string;
  metadata?: Record<string, string>;
  valid?: boolean;
}
export interface TraceInfo {
  trace_id: string;
  client_request_id?: string;
  trace_location?: { type?: string; mlflow_experiment?: { experiment_id?: string } };
  request_preview?: string;
  response_preview?: string;
  request_time: string;
  execution_duration?: string;
  state: string;
  trace_metadata?: Record<string, string>;
  assessments?: AssessmentJson[];
  tags?: Record<string, string>;
}
interface AnyValue {
  string_value?: string;
  bool_value?: boolean;
  int_value?: string | number;
  double_value?: number;
  array_value?: { values?: AnyValue[] };
  kvlist_value?: { values?: { key: string; value: AnyValue }[] };
  bytes_value?: string;
}
interface SpanJson {
  trace_id: string;
  span_id: string;
  parent_span_id?: string;
  name: string;
  start_time_unix_nano?: string | number;
  end_time_unix_nano?: string | number;
  attributes?: { key: string; value: AnyValue }[];
  events?: { name: string; time_unix_nano?: string | number; attributes?: { key: string; value: AnyValue }[] }[];
  status?: { code?: string; message?: string };
}

/** A span as the trace page uses it: times in ms, attributes as plain values. */
export interface Span {
  id: string;
  parentId?: string;
  name: string;
  startMs: number;
  endMs: number;
  type?: string;
  status: string;
  statusMessage?: string;
  inputs?: unknown;
  outputs?: unknown;
  attributes: Record<string, unknown>;
  events: { name: string; timeMs: number; attributes: Record<string, unknown> }[];
}

export function searchTraces(args: { experiment_ids: string[]; filter?: string; order_by?: string[]; max_results?: number; page_token?: string }) {
  return post<{ traces?: TraceInfo[]; next_page_token?: string }>(
    "/traces/search",
    {
      locations: args.experiment_ids.map((experiment_id) => ({ type: "MLFLOW_EXPERIMENT", mlflow_experiment: { experiment_id } })),
      filter: args.filter || undefined,
      order_by: args.order_by ?? ["timestamp_ms DESC"],
      max_results: args.max_results ?? 100,
      page_token: args.page_token,
    },
    undefined,
    API_V3,
  );
}

export async function getTrace(trace_id: string): Promise<{ info: TraceInfo; spans: Span[] }> {
  const answer = await get<{ trace: { trace_info: TraceInfo; spans?: SpanJson[] } }>(
    "/traces/get",
    { trace_id, allow_partial: true },
    undefined,
    API_V3,
  );
  return { info: answer.trace.trace_info, spans: (answer.trace.spans ?? []).map(decodeSpan) };
}

export function anyValue(value: AnyValue | undefined): unknown {
  if (!value) return null;
  if (value.string_value !== undefined) return value.string_value;
  if (value.bool_value !== undefined) return value.bool_value;
  if (value.int_value !== undefined) return Number(value.int_value);
  if (value.double_value !== undefined) return value.double_value;
  if (value.array_value) return (value.array_value.values ?? []).map(anyValue);
  if (value.kvlist_value) return Object.fromEntries((value.kvlist_value.values ?? []).map((entry) => [entry.key, anyValue(entry.value)]));
  if (value.bytes_value !== undefined) return value.bytes_value;
  return null;
}

/** MLflow keeps span attributes as JSON text; a string that is JSON becomes its value. */
function parsed(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

const nanosToMs = (value: string | number | undefined) => (value === undefined ? NaN : Number(BigInt(String(value)) / 1000n) / 1000);

function decodeSpan(span: SpanJson): Span {
  const attributes: Record<string, unknown> = {};
  for (const attribute of span.attributes ?? []) attributes[attribute.key] = parsed(anyValue(attribute.value));
  const { ["mlflow.spanInputs"]: inputs, ["mlflow.spanOutputs"]: outputs, ["mlflow.spanType"]: type, ...rest } = attributes;
  const code = span.status?.code ?? "STATUS_CODE_UNSET";
  return {
    id: span.span_id,
    parentId: span.parent_span_id || undefined,
    name: span.name,
    startMs: nanosToMs(span.start_time_unix_nano),
    endMs: nanosToMs(span.end_time_unix_nano),
    type: typeof type === "string" ? type : undefined,
    status: code.replace(/^STATUS_CODE_/, ""),
    statusMessage: span.status?.message || undefined,
    inputs,
    outputs,
    attributes: rest,
    events: (span.events ?? []).map((event) => ({
      name: event.name,
      timeMs: nanosToMs(event.time_unix_nano),
      // Event attributes are plain values (MLflow does not JSON-encode them).
      attributes: Object.fromEntries((event.attributes ?? []).map((attribute) => [attribute.key, anyValue(attribute.value)])),
    })),
  };
}

/** Token totals and cost of a trace from its metadata (`mlflow.trace.tokenUsage`, `mlflow.trace.cost`). */
export function usage(info: TraceInfo): { input?: number; output?: number; total?: number; cost?: number } {
  const read = (key: string) => {
    try {
      return JSON.parse(info.trace_metadata?.[key] ?? "null") as Record<string, number> | null;
    } catch {
      return null;
    }
  };
  const tokens = read(TOKEN_USAGE);
  const cost = read(COST);
  return { input: tokens?.input_tokens, output: tokens?.output_tokens, total: tokens?.total_tokens, cost: cost?.total_cost };
}

/** "0.250s" (protobuf Duration) → 250. */
export const durationMs = (duration?: string) => (duration ? Number(duration.replace(/s$/, "")) * 1000 : undefined);
