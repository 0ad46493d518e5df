import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import * as api from "../api";
import { ErrorBox } from "../components/Feedback";
import {
  ATTRIBUTE_COLUMNS,
  availableKeys,
  cellText,
  cellValue,
  type Column,
  columnId,
  columnLabel,
  parseColumn,
  runName,
  sortKey,
} from "../lib/runColumns";
import { useAsync } from "../lib/useAsync";
import { useDocumentTitle } from "../lib/useDocumentTitle";

const FIRST_PAGE = 100;
const NEXT_PAGE = 1000;
const ROW_HEIGHT = 32;
const DEFAULT_ATTRIBUTES = ["attributes.start_time", "attributes.duration", "attributes.status"];

type GridRow = { type: "run"; run: api.Run } | { type: "group"; label: string; count: number; key: string };

/**
 * Runs of one or more experiments: a virtualized table filled page by page from the server as it scrolls,
 * sorted and filtered by the server (MLflow's grammar), with chosen columns, grouping and selection.
 * Everything but the selection lives in the URL: `?filter=&order=&col=&group=&view=`.
 */
export function RunsPage() {
  const { experimentIds = "" } = useParams();
  const ids = useMemo(() => experimentIds.split(",").filter(Boolean), [experimentIds]);
  const navigate = useNavigate();
  const [search, setSearch] = useSearchParams();
  const filter = search.get("filter") ?? "";
  const order = search.get("order") ?? "attributes.start_time DESC";
  const group = search.get("group") ?? "";
  const view = (search.get("view") as api.ViewType | null) ?? "ACTIVE_ONLY";
  const chosenColumns = search.getAll("col");

  const experiments = useAsync(() => Promise.all(ids.map((id) => api.getExperiment(id))), [experimentIds]);
  const title = experiments.data?.map((experiment) => experiment.name).join(", ") ?? "Runs";
  useDocumentTitle(title);

  // Runs, loaded page by page: the first page small for a fast first paint, then larger ones on demand.
  const [runs, setRuns] = useState<api.Run[]>([]);
  const [nextToken, setNextToken] = useState<string | undefined>();
  const [loading, setLoading] = useState(false);
  const [loadError, setLoadError] = useState<unknown>();
  const [done, setDone] = useState(false);
  const generation = useRef(0);
  const loadingRef = useRef(false);

  async function loadPage(token: string | undefined, reset: boolean) {
    const mine = reset ? ++generation.current : generation.current;
    loadingRef.current = true;
    setLoading(true);
    try {
      const page = await api.searchRuns({
        experiment_ids: ids,
        filter,
        order_by: [order],
        max_results: token ? NEXT_PAGE : FIRST_PAGE,
        page_token: token,
        run_view_type: view,
      });
      if (mine !== generation.current) return;
      setRuns((previous) => (reset ? page.runs ?? [] : [...previous, ...(page.runs ?? [])]));
      setNextToken(page.next_page_token);
      setDone(!page.next_page_token);
      setLoadError(undefined);
    } catch (failure) {
      if (mine !== generation.current) return;
      // The previous rows stay, under the error, so a typo in the filter does not blank the table.
      setLoadError(failure);
      setDone(true);
    } finally {
      if (mine === generation.current) {
        loadingRef.current = false;
        setLoading(false);
      }
    }
  }

  const [reloadTick, setReloadTick] = useState(0);
  useEffect(() => {
    setSelected(new Set());
    setNextToken(undefined);
    setDone(false);
    loadPage(undefined, true);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [experimentIds, filter, order, view, reloadTick]);

  // Grouping needs every run: load the rest in the background.
  useEffect(() => {
    if (group && nextToken && !loadingRef.current) loadPage(nextToken, false);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [group, nextToken]);

  const keys = useMemo(() => availableKeys(runs), [runs]);
  const columns: Column[] = useMemo(() => {
    if (chosenColumns.length) return chosenColumns.map(parseColumn).filter((column): column is Column => !!column);
    const defaults = [...DEFAULT_ATTRIBUTES];
    if (ids.length > 1) defaults.push("attributes.experiment_id");
    defaults.push(...keys.metrics.slice(0, 4).map((key) => columnId("metrics", key)));
    defaults.push(...keys.params.slice(0, 4).map((key) => columnId("params", key)));
    return defaults.map(parseColumn).filter((column): column is Column => !!column);
  }, [chosenColumns.join("\u0000"), keys, ids.length]);

  const groupColumn = group ? parseColumn(group) : undefined;
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const rows: GridRow[] = useMemo(() => {
    if (!groupColumn) return runs.map((run) => ({ type: "run", run }));
    const groups = new Map<string, api.Run[]>();
    for (const run of runs) {
      const value = cellValue(run, groupColumn);
      const label = value === undefined ? "(none)" : String(value);
      const members = groups.get(label) ?? [];
      members.push(run);
      groups.set(label, members);
    }
    const out: GridRow[] = [];
    for (const [label, members] of [...groups.entries()].sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }))) {
      out.push({ type: "group", label, count: members.length, key: label });
      if (!collapsed.has(label)) members.forEach((run) => out.push({ type: "run", run }));
    }
    return out;
  }, [runs, groupColumn?.id, collapsed]);

  const [selected, setSelected] = useState<Set<string>>(new Set());
  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });
  const items = virtualizer.getVirtualItems();
  const lastIndex = items.length ? items[items.length - 1].index : 0;
  useEffect(() => {
    if (!group && nextToken && !loadingRef.current && lastIndex >= rows.length - 30) loadPage(nextToken, false);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [lastIndex, rows.length, nextToken, group]);

  function update(next: Record<string, string | string[] | undefined>) {
    const copy = new URLSearchParams(search);
    for (const [key, value] of Object.entries(next)) {
      copy.delete(key);
      if (Array.isArray(value)) value.forEach((item) => copy.append(key, item));
      else if (value) copy.set(key, value);
    }
    setSearch(copy);
  }

  const [filterDraft, setFilterDraft] = useState(filter);
  useEffect(() => setFilterDraft(filter), [filter]);
  const [showColumns, setShowColumns] = useState(false);

  const [orderKey, orderDirection] = useMemo(() => {
    const match = order.match(/^(.*?)(?:\s+(ASC|DESC))?$/i);
    return [match?.[1] ?? order, (match?.[2] ?? "ASC").toUpperCase()];
  }, [order]);
  function toggleSort(column: Column) {
    const key = sortKey(column);
    if (!key) return;
    const direction = key === orderKey && orderDirection === "DESC" ? "ASC" : "DESC";
    update({ order: `${key} ${direction}` });
  }
  function toggleColumn(id: string) {
    const current = columns.map((column) => column.id);
    update({ col: current.includes(id) ? current.filter((item) => item !== id) : [...current, id] });
  }

  const template = `40px minmax(180px, 260px) ${columns.map((column) => (column.kind === "attributes" && column.key === "run_id" ? "280px" : "140px")).join(" ")}`;
  const filterError = loadError instanceof api.ApiError && loadError.status === 400 ? loadError : undefined;
  const selectedIds = [...selected];

  return (
    <section className="page">
      <div className="breadcrumbs">
        <Link to="/experiments">Experiments</Link> /
      </div>
      <div className="page-header">
        <h1>{title}</h1>
        <span className="muted" aria-live="polite" data-testid="run-count">
          {runs.length} run{runs.length === 1 ? "" : "s"}
          {done ? "" : "+"} loaded
        </span>
        <span className="spacer" />
        <Link className="button" to={`/traces?experiment=${ids.join(",")}`}>
          Traces
        </Link>
        <button disabled={selected.size < 1} onClick={() => navigate(`/compare?runs=${selectedIds.join(",")}`)}>
          Compare {selected.size || ""} selected
        </button>
        <button
          disabled={selected.size < 1 || keys.metrics.length === 0}
          onClick={() => navigate(`/metric?runs=${selectedIds.join(",")}&key=${encodeURIComponent(keys.metrics[0] ?? "")}`)}
        >
          Chart metrics
        </button>
      </div>
      <ErrorBox error={experiments.error} />
      <div className="runs-layout">
        <form
          className="filter-row"
          role="search"
          onSubmit={(event) => {
            event.preventDefault();
            if (filterDraft.trim() === filter) setReloadTick((tick) => tick + 1);
            else update({ filter: filterDraft.trim() });
          }}
        >
          <input
            className={filterError ? "filter invalid" : "filter"}
            aria-label="Filter runs"
            aria-invalid={!!filterError}
            aria-describedby={filterError ? "filter-error" : undefined}
            placeholder={"metrics.rmse < 1 and params.model = 'tree' and tags.team = 'a'"}
            value={filterDraft}
            onChange={(event) => setFilterDraft(event.target.value)}
          />
          <button type="submit" className="primary">
            Search
          </button>
          <label>
            Group by
            <select aria-label="Group by" value={group} onChange={(event) => update({ group: event.target.value })}>
              <option value="">None</option>
              {keys.params.map((key) => (
                <option key={`p${key}`} value={columnId("params", key)}>
                  param: {key}
                </option>
              ))}
              {keys.tags.map((key) => (
                <option key={`t${key}`} value={columnId("tags", key)}>
                  tag: {key}
                </option>
              ))}
            </select>
          </label>
          <label>
            Show
            <select value={view} onChange={(event) => update({ view: event.target.value === "ACTIVE_ONLY" ? "" : event.target.value })}>
              <option value="ACTIVE_ONLY">Active</option>
              <option value="DELETED_ONLY">Deleted</option>
              <option value="ALL">All</option>
            </select>
          </label>
          <button type="button" aria-expanded={showColumns} onClick={() => setShowColumns(!showColumns)}>
            Columns
          </button>
        </form>
        {filterError ? (
          <div id="filter-error" className="error-box" role="alert">
            Invalid filter: {filterError.message}
          </div>
        ) : (
          <ErrorBox error={loadError} />
        )}
        {showColumns ? (
          <div className="column-picker" aria-label="Columns">
            {(
              [
                ["Attributes", Object.keys(ATTRIBUTE_COLUMNS).map((key) => columnId("attributes", key))],
                ["Metrics", keys.metrics.map((key) => columnId("metrics", key))],
                ["Parameters", keys.params.map((key) => columnId("params", key))],
                ["Tags", keys.tags.map((key) => columnId("tags", key))],
              ] as [string, string[]][]
            ).map(([legend, ids]) => (
              <fieldset key={legend}>
                <legend>{legend}</legend>
                {ids.map((id) => {
                  const column = parseColumn(id);
                  return column ? (
                    <label key={id}>
                      <input type="checkbox" checked={columns.some((item) => item.id === id)} onChange={() => toggleColumn(id)} />
                      {columnLabel(column)}
                    </label>
                  ) : null;
                })}
                {ids.length === 0 ? <span className="muted">none</span> : null}
              </fieldset>
            ))}
          </div>
        ) : null}
        <div className="grid-scroller" ref={scroller} role="grid" aria-label="Runs" aria-rowcount={rows.length + 1}>
          <div className="grid-header" role="row" style={{ gridTemplateColumns: template }}>
            <span role="columnheader">
              <input
                type="checkbox"
                aria-label="Select all loaded runs"
                checked={runs.length > 0 && selected.size === runs.length}
                onChange={(event) => setSelected(event.target.checked ? new Set(runs.map((run) => run.info.run_id)) : new Set())}
              />
            </span>
            <span role="columnheader">Run name</span>
            {columns.map((column) => {
              const key = sortKey(column);
              const active = key === orderKey;
              return (
                <span
                  role="columnheader"
                  key={column.id}
                  title={column.id}
                  aria-sort={active ? (orderDirection === "DESC" ? "descending" : "ascending") : undefined}
                >
                  {key ? (
                    <button className="sort" onClick={() => toggleSort(column)}>
                      {columnLabel(column)}
                      {active ? (orderDirection === "DESC" ? " ▼" : " ▲") : ""}
                    </button>
                  ) : (
                    columnLabel(column)
                  )}
                  {column.kind !== "attributes" ? <span className="col-kind">{column.kind === "params" ? "param" : column.kind.slice(0, -1)}</span> : null}
                </span>
              );
            })}
          </div>
          <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
            {items.map((item) => {
              const row = rows[item.index];
              if (row.type === "group") {
                const open = !collapsed.has(row.key);
                return (
                  <div key={`g-${row.key}`} className="grid-row group-row" role="row" style={{ transform: `translateY(${item.start}px)`, gridTemplateColumns: "1fr" }}>
                    <button
                      className="link"
                      aria-expanded={open}
                      onClick={() => {
                        const next = new Set(collapsed);
                        if (open) next.add(row.key);
                        else next.delete(row.key);
                        setCollapsed(next);
                      }}
                    >
                      {open ? "▾" : "▸"} {groupColumn ? columnLabel(groupColumn) : ""} = {row.label} ({row.count})
                    </button>
                  </div>
                );
              }
              const run = row.run;
              const isSelected = selected.has(run.info.run_id);
              return (
                <div
                  key={run.info.run_id}
                  className={isSelected ? "grid-row selected" : "grid-row"}
                  role="row"
                  aria-rowindex={item.index + 2}
                  aria-selected={isSelected}
                  data-run-id={run.info.run_id}
                  style={{ transform: `translateY(${item.start}px)`, gridTemplateColumns: template }}
                >
                  <span role="gridcell">
                    <input
                      type="checkbox"
                      aria-label={`Select ${runName(run)}`}
                      checked={isSelected}
                      onChange={() => {
                        const next = new Set(selected);
                        if (isSelected) next.delete(run.info.run_id);
                        else next.add(run.info.run_id);
                        setSelected(next);
                      }}
                    />
                  </span>
                  <span role="gridcell">
                    <Link to={`/experiments/${run.info.experiment_id}/runs/${run.info.run_id}`}>{runName(run)}</Link>
                  </span>
                  {columns.map((column) => {
                    const text = cellText(run, column);
                    return (
                      <span role="gridcell" key={column.id} title={text} className={column.key === "status" ? `status-${text}` : undefined}>
                        {text}
                      </span>
                    );
                  })}
                </div>
              );
            })}
          </div>
          {!loading && done && runs.length === 0 && !loadError ? <div className="empty">No runs match.</div> : null}
        </div>
        <div className="muted" aria-live="polite">
          {loading ? "Loading runs…" : done ? "All runs loaded." : "Scroll to load more."}
        </div>
      </div>
    </section>
  );
}
