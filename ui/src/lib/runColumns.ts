import type { Run } from "../api";
import { formatDuration, formatNumber, formatTime } from "./format";

/** A runs-table column: `attributes.status`, `metrics.loss`, `params.lr` or `tags.team` (MLflow's prefixes). */
export type ColumnKind = "attributes" | "metrics" | "params" | "tags";
export interface Column {
  id: string;
  kind: ColumnKind;
  key: string;
}

export const ATTRIBUTE_COLUMNS: Record<string, { label: string; sortKey?: string }> = {
  start_time: { label: "Created", sortKey: "attributes.start_time" },
  duration: { label: "Duration" },
  status: { label: "Status", sortKey: "attributes.status" },
  user_id: { label: "User", sortKey: "attributes.user_id" },
  run_id: { label: "Run ID", sortKey: "attributes.run_id" },
  experiment_id: { label: "Experiment", sortKey: "attributes.experiment_id" },
};

export function parseColumn(id: string): Column | undefined {
  const dot = id.indexOf(".");
  if (dot < 0) return undefined;
  const kind = id.slice(0, dot) as ColumnKind;
  if (!["attributes", "metrics", "params", "tags"].includes(kind)) return undefined;
  const key = id.slice(dot + 1);
  if (kind === "attributes" && !(key in ATTRIBUTE_COLUMNS)) return undefined;
  return { id, kind, key };
}

export const columnId = (kind: ColumnKind, key: string) => `${kind}.${key}`;

export function columnLabel(column: Column): string {
  return column.kind === "attributes" ? ATTRIBUTE_COLUMNS[column.key]?.label ?? column.key : column.key;
}

/** The `order_by` term MLflow's search accepts for a column, or undefined when it cannot sort by it. */
export function sortKey(column: Column): string | undefined {
  if (column.kind === "attributes") return ATTRIBUTE_COLUMNS[column.key]?.sortKey;
  return `${column.kind}.\`${column.key.replace(/`/g, "")}\``;
}

/** A run's raw value for a column (numbers stay numbers, for sorting and charts). */
export function cellValue(run: Run, column: Column): string | number | undefined {
  switch (column.kind) {
    case "metrics": {
      const metric = run.data.metrics?.find((item) => item.key === column.key);
      return metric === undefined ? undefined : Number(metric.value);
    }
    case "params":
      return run.data.params?.find((item) => item.key === column.key)?.value;
    case "tags":
      return run.data.tags?.find((item) => item.key === column.key)?.value;
    case "attributes": {
      const info = run.info;
      if (column.key === "duration") return info.end_time && info.start_time ? Number(info.end_time) - Number(info.start_time) : undefined;
      return (info as unknown as Record<string, string | number | undefined>)[column.key];
    }
  }
}

export function cellText(run: Run, column: Column): string {
  const value = cellValue(run, column);
  if (value === undefined) return "";
  if (column.kind === "attributes") {
    if (column.key === "start_time") return formatTime(value as number);
    if (column.key === "duration") return formatDuration(value as number);
    return String(value);
  }
  if (column.kind === "metrics") return formatNumber(value);
  return String(value);
}

/** Every key seen in the loaded runs, per kind, sorted; system tags (`mlflow.*`) left out. */
export function availableKeys(runs: Run[]) {
  const metrics = new Set<string>();
  const params = new Set<string>();
  const tags = new Set<string>();
  for (const run of runs) {
    run.data.metrics?.forEach((item) => metrics.add(item.key));
    run.data.params?.forEach((item) => params.add(item.key));
    run.data.tags?.forEach((item) => {
      if (!item.key.startsWith("mlflow.")) tags.add(item.key);
    });
  }
  const sorted = (set: Set<string>) => [...set].sort((a, b) => a.localeCompare(b));
  return { metrics: sorted(metrics), params: sorted(params), tags: sorted(tags) };
}

export const runName = (run: Run) =>
  run.info.run_name || run.data.tags?.find((tag) => tag.key === "mlflow.runName")?.value || run.info.run_id;
