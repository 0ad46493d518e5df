import { useEffect, useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import * as api from "../api";
import { Empty, ErrorBox, Loading } from "../components/Feedback";
import { formatDuration, formatNumber, formatTime } from "../lib/format";
import { useAsync } from "../lib/useAsync";
import { useDocumentTitle } from "../lib/useDocumentTitle";
import * as traces from "../tracesApi";
import "../registry.css";

const STATUSES = ["", "OK", "ERROR", "IN_PROGRESS"] as const;
const FILTER_KEYS = ["status", "from", "to", "tag", "usage", "min_tokens", "max_cost", "filter"] as const;
const PAGE = 100;

const quote = (value: string) => `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
const backtick = (key: string) => `\`${key.replace(/`/g, "")}\``;

/** `YYYY-MM-DDTHH:MM` (datetime-local, local time) ↔ epoch ms. */
const localToMs = (text: string) => (text ? new Date(text).getTime() : NaN);

/** The server filter (MLflow's trace search grammar) for the form's fields. */
export function traceFilter(search: URLSearchParams): string {
  const parts: string[] = [];
  const status = search.get("status");
  if (status) parts.push(`trace.status = ${quote(status)}`);
  const from = localToMs(search.get("from") ?? "");
  if (Number.isFinite(from)) parts.push(`trace.timestamp_ms >= ${from}`);
  const to = localToMs(search.get("to") ?? "");
  if (Number.isFinite(to)) parts.push(`trace.timestamp_ms <= ${to}`);
  for (const pair of search.getAll("tag")) {
    const at = pair.indexOf("=");
    if (at > 0) parts.push(`tag.${backtick(pair.slice(0, at).trim())} = ${quote(pair.slice(at + 1).trim())}`);
  }
  if (search.get("usage") === "1") parts.push(`metadata.${backtick(traces.TOKEN_USAGE)} IS NOT NULL`);
  const raw = search.get("filter")?.trim();
  if (raw) parts.push(raw);
  return parts.join(" AND ");
}

/**
 * Traces of one or more experiments (`?experiment=1,2`; all experiments when absent) with filters kept in
 * the URL: status, time range, tags, "has token usage" and a free filter go to the server; the minimum
 * total tokens and maximum total cost refine the loaded traces (MLflow's grammar only compares those
 * totals for equality).
 */
export function TracesPage() {
  useDocumentTitle("Traces");
  const [search, setSearch] = useSearchParams();
  const experimentParam = search.get("experiment") ?? "";
  const experiments = useAsync(() => api.searchExperiments({ max_results: 1000 }).then((answer) => answer.experiments ?? []), []);
  const experimentIds = useMemo(
    () => (experimentParam ? experimentParam.split(",").filter(Boolean) : (experiments.data ?? []).map((experiment) => experiment.experiment_id)),
    [experimentParam, experiments.data],
  );
  const filter = traceFilter(search);
  const [extra, setExtra] = useState<{ key: string; rows: traces.TraceInfo[]; token?: string }>();
  const [moreError, setMoreError] = useState<unknown>();
  const key = `${experimentIds.join(",")}|${filter}`;
  const first = useAsync(
    () => (experimentIds.length ? traces.searchTraces({ experiment_ids: experimentIds, filter, max_results: PAGE }) : Promise.resolve({ traces: [] as traces.TraceInfo[], next_page_token: undefined })),
    [key],
  );
  useEffect(() => setExtra(undefined), [key]);
  const loaded = [...(first.data?.traces ?? []), ...(extra?.key === key ? extra.rows : [])];
  const nextToken = extra?.key === key ? extra.token : first.data?.next_page_token;
  const minTokens = Number(search.get("min_tokens") || NaN);
  const maxCost = Number(search.get("max_cost") || NaN);
  const rows = loaded.filter((info) => {
    const usage = traces.usage(info);
    if (Number.isFinite(minTokens) && !((usage.total ?? -1) >= minTokens)) return false;
    if (Number.isFinite(maxCost) && !((usage.cost ?? Infinity) <= maxCost)) return false;
    return true;
  });
  const totals = rows.reduce(
    (sum, info) => {
      const usage = traces.usage(info);
      return { input: sum.input + (usage.input ?? 0), output: sum.output + (usage.output ?? 0), total: sum.total + (usage.total ?? 0), cost: sum.cost + (usage.cost ?? 0) };
    },
    { input: 0, output: 0, total: 0, cost: 0 },
  );

  async function loadMore() {
    setMoreError(undefined);
    try {
      const page = await traces.searchTraces({ experiment_ids: experimentIds, filter, max_results: PAGE, page_token: nextToken });
      setExtra({ key, rows: [...(extra?.key === key ? extra.rows : []), ...(page.traces ?? [])], token: page.next_page_token });
    } catch (failure) {
      setMoreError(failure);
    }
  }

  const experimentName = (id?: string) => experiments.data?.find((experiment) => experiment.experiment_id === id)?.name ?? id ?? "";
  const runsLink = (ids: string) => `/experiments/${ids}`;
  return (
    <section className="page">
      {experimentParam ? (
        <nav className="breadcrumbs" aria-label="Breadcrumbs">
          <Link to="/experiments">Experiments</Link> /{" "}
          <Link to={runsLink(experimentParam)}>{experimentParam.split(",").map(experimentName).join(", ")}</Link> /
        </nav>
      ) : null}
      <div className="page-header">
        <h1>Traces</h1>
        {experimentParam ? (
          <Link className="button" to={runsLink(experimentParam)}>
            Runs
          </Link>
        ) : null}
        <span className="spacer" />
        <label>
          Experiment
          <select
            aria-label="Experiment"
            value={experimentParam}
            onChange={(event) => {
              const copy = new URLSearchParams(search);
              if (event.target.value) copy.set("experiment", event.target.value);
              else copy.delete("experiment");
              setSearch(copy);
            }}
          >
            <option value="">All experiments</option>
            {experimentParam && !experiments.data?.some((experiment) => experiment.experiment_id === experimentParam) ? (
              <option value={experimentParam}>{experimentParam}</option>
            ) : null}
            {(experiments.data ?? []).map((experiment) => (
              <option key={experiment.experiment_id} value={experiment.experiment_id}>
                {experiment.name}
              </option>
            ))}
          </select>
        </label>
      </div>
      <FilterForm search={search} setSearch={setSearch} />
      {filter ? (
        <p className="muted">
          Server filter: <code>{filter}</code>
        </p>
      ) : null}
      <ErrorBox error={first.error} />
      <ErrorBox error={moreError} />
      {first.loading && !first.data ? <Loading /> : null}
      {first.data && rows.length === 0 ? <Empty>No traces match.</Empty> : null}
      {rows.length > 0 ? (
        <table className="data-table" aria-label="Traces">
          <thead>
            <tr>
              <th scope="col">Trace</th>
              <th scope="col">Request</th>
              <th scope="col">Response</th>
              <th scope="col">Status</th>
              <th scope="col">Time</th>
              <th scope="col" className="num">
                Duration
              </th>
              <th scope="col" className="num">
                Input tokens
              </th>
              <th scope="col" className="num">
                Output tokens
              </th>
              <th scope="col" className="num">
                Total tokens
              </th>
              <th scope="col" className="num">
                Cost
              </th>
              <th scope="col">Tags</th>
              {experimentIds.length > 1 ? <th scope="col">Experiment</th> : null}
            </tr>
          </thead>
          <tbody>
            {rows.map((info) => {
              const usage = traces.usage(info);
              const tags = Object.entries(info.tags ?? {}).filter(([tagKey]) => !tagKey.startsWith("mlflow."));
              return (
                <tr key={info.trace_id} data-trace-id={info.trace_id}>
                  <td>
                    <Link to={`/traces/${encodeURIComponent(info.trace_id)}`}>{info.tags?.["mlflow.traceName"] || info.trace_id}</Link>
                  </td>
                  <td className="clip">{info.request_preview}</td>
                  <td className="clip">{info.response_preview}</td>
                  <td className={`status-${info.state}`}>{info.state}</td>
                  <td className="nowrap">{formatTime(Date.parse(info.request_time))}</td>
                  <td className="num">{formatDuration(traces.durationMs(info.execution_duration))}</td>
                  <td className="num">{formatNumber(usage.input)}</td>
                  <td className="num">{formatNumber(usage.output)}</td>
                  <td className="num">{formatNumber(usage.total)}</td>
                  <td className="num">{usage.cost === undefined ? "" : `$${usage.cost.toFixed(4)}`}</td>
                  <td>
                    {tags.map(([tagKey, value]) => (
                      <span key={tagKey} className="badge" style={{ marginRight: "0.25rem" }}>
                        {tagKey}={value}
                      </span>
                    ))}
                  </td>
                  {experimentIds.length > 1 ? (
                    <td>
                      {info.trace_location?.mlflow_experiment?.experiment_id ? (
                        <Link to={runsLink(info.trace_location.mlflow_experiment.experiment_id)}>{experimentName(info.trace_location.mlflow_experiment.experiment_id)}</Link>
                      ) : null}
                    </td>
                  ) : null}
                </tr>
              );
            })}
          </tbody>
          <tfoot>
            <tr>
              <td colSpan={6}>
                Total of {rows.length} trace{rows.length === 1 ? "" : "s"} shown
              </td>
              <td className="num" aria-label="Input tokens total">
                {formatNumber(totals.input)}
              </td>
              <td className="num" aria-label="Output tokens total">
                {formatNumber(totals.output)}
              </td>
              <td className="num" aria-label="Total tokens total">
                {formatNumber(totals.total)}
              </td>
              <td className="num" aria-label="Cost total">
                ${totals.cost.toFixed(4)}
              </td>
              <td colSpan={experimentIds.length > 1 ? 2 : 1} />
            </tr>
          </tfoot>
        </table>
      ) : null}
      {nextToken ? (
        <div>
          <button onClick={loadMore}>Load more traces</button>
        </div>
      ) : null}
    </section>
  );
}

function FilterForm({ search, setSearch }: { search: URLSearchParams; setSearch: (next: URLSearchParams) => void }) {
  const [draft, setDraft] = useState(() => readDraft(search));
  const searchText = search.toString();
  useEffect(() => setDraft(readDraft(new URLSearchParams(searchText))), [searchText]);
  const set = (field: keyof Draft, value: string | boolean) => setDraft({ ...draft, [field]: value });
  return (
    <form
      className="trace-filters"
      role="search"
      aria-label="Trace filters"
      onSubmit={(event) => {
        event.preventDefault();
        const copy = new URLSearchParams(search);
        for (const field of FILTER_KEYS) copy.delete(field);
        if (draft.status) copy.set("status", draft.status);
        if (draft.from) copy.set("from", draft.from);
        if (draft.to) copy.set("to", draft.to);
        for (const pair of draft.tags.split(/[,\n]/).map((item) => item.trim()).filter(Boolean)) copy.append("tag", pair);
        if (draft.usage) copy.set("usage", "1");
        if (draft.minTokens) copy.set("min_tokens", draft.minTokens);
        if (draft.maxCost) copy.set("max_cost", draft.maxCost);
        if (draft.filter.trim()) copy.set("filter", draft.filter.trim());
        setSearch(copy);
      }}
    >
      <label>
        Status
        <select value={draft.status} onChange={(event) => set("status", event.target.value)}>
          {STATUSES.map((status) => (
            <option key={status} value={status}>
              {status || "Any"}
            </option>
          ))}
        </select>
      </label>
      <label>
        From
        <input type="datetime-local" value={draft.from} onChange={(event) => set("from", event.target.value)} />
      </label>
      <label>
        To
        <input type="datetime-local" value={draft.to} onChange={(event) => set("to", event.target.value)} />
      </label>
      <label>
        Tags (key=value, comma separated)
        <input value={draft.tags} placeholder="env=prod" onChange={(event) => set("tags", event.target.value)} />
      </label>
      <label style={{ flexDirection: "row", alignItems: "center" }}>
        <input type="checkbox" checked={draft.usage} onChange={(event) => set("usage", event.target.checked)} />
        Has token usage
      </label>
      <label>
        Min total tokens
        <input type="number" min={0} value={draft.minTokens} style={{ width: "8rem" }} onChange={(event) => set("minTokens", event.target.value)} />
      </label>
      <label>
        Max total cost ($)
        <input type="number" min={0} step="any" value={draft.maxCost} style={{ width: "8rem" }} onChange={(event) => set("maxCost", event.target.value)} />
      </label>
      <label className="wide">
        More filter (MLflow trace search grammar)
        <input value={draft.filter} placeholder="span.type = 'LLM'" onChange={(event) => set("filter", event.target.value)} />
      </label>
      <button type="submit" className="primary">
        Apply filters
      </button>
    </form>
  );
}

interface Draft {
  status: string;
  from: string;
  to: string;
  tags: string;
  usage: boolean;
  minTokens: string;
  maxCost: string;
  filter: string;
}
function readDraft(search: URLSearchParams): Draft {
  return {
    status: search.get("status") ?? "",
    from: search.get("from") ?? "",
    to: search.get("to") ?? "",
    tags: search.getAll("tag").join(", "),
    usage: search.get("usage") === "1",
    minTokens: search.get("min_tokens") ?? "",
    maxCost: search.get("max_cost") ?? "",
    filter: search.get("filter") ?? "",
  };
}
