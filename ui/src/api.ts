// The one module that talks to the server. Every page calls these functions instead of `fetch`, so
// errors arrive as `ApiError` (MLflow's `error_code` and `message`) and paths live in one place.

export const API = "/ajax-api/2.0/mlflow";
export const API_V3 = "/ajax-api/3.0/mlflow";

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

type Query = Record<string, string | number | boolean | undefined | null | (string | number)[]>;

export function queryString(params: Query): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((item) => search.append(key, String(item)));
    else search.append(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function request<T>(method: string, url: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const response = await fetch(url, {
    method,
    signal,
    headers: body === undefined ? undefined : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const error = (json ?? {}) as { error_code?: string; message?: string };
    throw new ApiError(response.status, error.error_code ?? `HTTP_${response.status}`, error.message ?? (text || response.statusText));
  }
  return (json ?? {}) as T;
}

export const get = <T>(path: string, params: Query = {}, signal?: AbortSignal, base = API) =>
  request<T>("GET", `${base}${path}${queryString(params)}`, undefined, signal);
export const post = <T>(path: string, body: unknown = {}, signal?: AbortSignal, base = API) =>
  request<T>("POST", `${base}${path}`, body, signal);
export const patch = <T>(path: string, body: unknown = {}, base = API) => request<T>("PATCH", `${base}${path}`, body);
export const del = <T>(path: string, body?: unknown, base = API) => request<T>("DELETE", `${base}${path}`, body);

// ---- Wire types (MLflow's JSON) ------------------------------------------------------------------------

export interface Tag {
  key: string;
  value: string;
}
export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage: "active" | "deleted";
  last_update_time?: number;
  creation_time?: number;
  tags?: Tag[];
}
export interface Metric {
  key: string;
  value: number | string;
  timestamp: number;
  step: number;
  run_id?: string;
}
export interface RunInfo {
  run_id: string;
  run_uuid?: string;
  run_name?: string;
  experiment_id: string;
  user_id?: string;
  status: string;
  start_time?: number;
  end_time?: number;
  artifact_uri?: string;
  lifecycle_stage: string;
}
export interface DatasetInput {
  tags?: Tag[];
  dataset: { name: string; digest: string; source_type: string; source: string; schema?: string; profile?: string };
}
export interface Run {
  info: RunInfo;
  data: { metrics?: Metric[]; params?: Tag[]; tags?: Tag[] };
  inputs?: { dataset_inputs?: DatasetInput[]; model_inputs?: unknown[] };
  outputs?: unknown;
}
export interface FileInfo {
  path: string;
  is_dir: boolean;
  file_size?: number;
}

export type ViewType = "ACTIVE_ONLY" | "DELETED_ONLY" | "ALL";

// ---- Experiments ---------------------------------------------------------------------------------------

export function searchExperiments(args: { filter?: string; view_type?: ViewType; max_results?: number; page_token?: string; order_by?: string[] }) {
  return post<{ experiments?: Experiment[]; next_page_token?: string }>("/experiments/search", {
    filter: args.filter || undefined,
    view_type: args.view_type ?? "ACTIVE_ONLY",
    max_results: args.max_results ?? 1000,
    page_token: args.page_token,
    order_by: args.order_by ?? ["last_update_time DESC"],
  });
}
export const getExperiment = (experiment_id: string) =>
  get<{ experiment: Experiment }>("/experiments/get", { experiment_id }).then((answer) => answer.experiment);
export const createExperiment = (name: string) => post<{ experiment_id: string }>("/experiments/create", { name });
export const renameExperiment = (experiment_id: string, new_name: string) =>
  post("/experiments/update", { experiment_id, new_name });
export const deleteExperiment = (experiment_id: string) => post("/experiments/delete", { experiment_id });
export const restoreExperiment = (experiment_id: string) => post("/experiments/restore", { experiment_id });
export const setExperimentTag = (experiment_id: string, key: string, value: string) =>
  post("/experiments/set-experiment-tag", { experiment_id, key, value });

// ---- Runs ----------------------------------------------------------------------------------------------

export function searchRuns(
  args: { experiment_ids: string[]; filter?: string; order_by?: string[]; max_results?: number; page_token?: string; run_view_type?: ViewType },
  signal?: AbortSignal,
) {
  return post<{ runs?: Run[]; next_page_token?: string }>(
    "/runs/search",
    {
      experiment_ids: args.experiment_ids,
      filter: args.filter || undefined,
      order_by: args.order_by,
      max_results: args.max_results ?? 500,
      page_token: args.page_token,
      run_view_type: args.run_view_type ?? "ACTIVE_ONLY",
    },
    signal,
  );
}
export const getRun = (run_id: string) => get<{ run: Run }>("/runs/get", { run_id }).then((answer) => answer.run);
export const setRunTag = (run_id: string, key: string, value: string) => post("/runs/set-tag", { run_id, key, value });
export const deleteRunTag = (run_id: string, key: string) => post("/runs/delete-tag", { run_id, key });
export const renameRun = (run_id: string, run_name: string) => post("/runs/update", { run_id, run_name });
export const deleteRun = (run_id: string) => post("/runs/delete", { run_id });
export const restoreRun = (run_id: string) => post("/runs/restore", { run_id });

// ---- Metrics -------------------------------------------------------------------------------------------

export async function getMetricHistory(run_id: string, metric_key: string): Promise<Metric[]> {
  const all: Metric[] = [];
  let page_token: string | undefined;
  do {
    const page = await get<{ metrics?: Metric[]; next_page_token?: string }>("/metrics/get-history", {
      run_id,
      metric_key,
      max_results: 25000,
      page_token,
    });
    all.push(...(page.metrics ?? []));
    page_token = page.next_page_token;
  } while (page_token);
  return all;
}

/** Server-side sampled history of several runs (at most `max_results` points a run, ends kept). */
export function getMetricHistorySampled(
  run_ids: string[],
  metric_key: string,
  max_results: number,
  steps?: [number, number],
  signal?: AbortSignal,
) {
  return get<{ metrics?: Metric[] }>(
    "/metrics/get-history-bulk-interval",
    { run_ids, metric_key, max_results, start_step: steps?.[0], end_step: steps?.[1] },
    signal,
  ).then((answer) => answer.metrics ?? []);
}

// ---- Artifacts -----------------------------------------------------------------------------------------

export async function listArtifacts(run_id: string, path?: string): Promise<FileInfo[]> {
  const files: FileInfo[] = [];
  let page_token: string | undefined;
  do {
    const page = await get<{ files?: FileInfo[]; next_page_token?: string }>("/artifacts/list", { run_id, path, page_token });
    files.push(...(page.files ?? []));
    page_token = page.next_page_token;
  } while (page_token);
  return files;
}
export const artifactUrl = (run_id: string, path: string) => `/get-artifact${queryString({ path, run_uuid: run_id })}`;

// ---- Helpers -------------------------------------------------------------------------------------------

export const tagValue = (tags: Tag[] | undefined, key: string) => tags?.find((tag) => tag.key === key)?.value;

export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}
