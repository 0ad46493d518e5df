import { useMemo } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { ParallelCoordinates, ScatterPlot } from "../components/CompareCharts";
import { ErrorBox, Loading } from "../components/Feedback";
import { ChartControls, MetricChart, runColor, type XAxis } from "../components/MetricChart";
import { TabBar } from "../components/Tabs";
import { formatNumber } from "../lib/format";
import { availableKeys, type Column, columnId, columnLabel, parseColumn, runName } from "../lib/runColumns";
import { useDocumentTitle } from "../lib/useDocumentTitle";
import { useRunIdsParam, useRuns } from "../lib/useRuns";

const TABS = ["table", "charts", "parallel", "scatter"] as const;
const TAB_LABELS = { table: "Params & metrics", charts: "Metric charts", parallel: "Parallel coordinates", scatter: "Scatter" };

/** Compare runs: `/compare?runs=a,b&tab=table|charts|parallel|scatter&axes=params.lr,metrics.loss&sx=&sy=`. */
export function ComparePage() {
  const [search, setSearch] = useSearchParams();
  const runIds = useRunIdsParam(search);
  useDocumentTitle(`Compare ${runIds.length} runs`);
  const runs = useRuns(runIds);
  const loaded = runs.data ?? [];
  const keys = useMemo(() => availableKeys(loaded), [loaded]);
  const tabParam = search.get("tab");
  const tab = TABS.includes(tabParam as (typeof TABS)[number]) ? (tabParam as string) : "table";

  function update(next: Record<string, string | undefined>, replace = false) {
    const copy = new URLSearchParams(search);
    for (const [key, value] of Object.entries(next)) {
      if (value) copy.set(key, value);
      else copy.delete(key);
    }
    setSearch(copy, { replace });
  }

  const allColumns = [...keys.params.map((key) => columnId("params", key)), ...keys.metrics.map((key) => columnId("metrics", key))];
  const axesParam = search.get("axes");
  const axes: Column[] = (axesParam ? axesParam.split(",") : allColumns.slice(0, 8)).map(parseColumn).filter((column): column is Column => !!column);
  const scatterX = parseColumn(search.get("sx") ?? "") ?? parseColumn(allColumns[0] ?? "");
  const scatterY = parseColumn(search.get("sy") ?? "") ?? parseColumn(keys.metrics.length ? columnId("metrics", keys.metrics[0]) : allColumns[1] ?? "");
  const xAxis = (search.get("x") as XAxis | null) ?? "step";
  const smoothing = Number(search.get("smooth") ?? 0) || 0;
  const logScale = search.get("log") === "1";

  const first = loaded[0];
  return (
    <section className="page">
      <div className="breadcrumbs">
        <Link to="/experiments">Experiments</Link>
        {first ? (
          <>
            {" / "}
            <Link to={`/experiments/${[...new Set(loaded.map((run) => run.info.experiment_id))].join(",")}`}>runs</Link>
          </>
        ) : null}
      </div>
      <div className="page-header">
        <h1>Compare {runIds.length} runs</h1>
      </div>
      <ErrorBox error={runs.error} />
      {runs.loading && !runs.data ? <Loading /> : null}
      <div className="legend" aria-label="Runs">
        {loaded.map((run, index) => (
          <Link key={run.info.run_id} to={`/experiments/${run.info.experiment_id}/runs/${run.info.run_id}`}>
            <span className="swatch" style={{ background: runColor(index) }} />
            {runName(run)}
          </Link>
        ))}
      </div>
      <TabBar tabs={TABS} current={tab} labels={TAB_LABELS} onSelect={(next) => update({ tab: next })} />
      {tab === "table" && loaded.length ? (
        <div style={{ overflow: "auto" }}>
          <table className="data-table" aria-label="Params and metrics of the compared runs">
            <thead>
              <tr>
                <th scope="col">Key</th>
                {loaded.map((run) => (
                  <th scope="col" key={run.info.run_id}>
                    {runName(run)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {(
                [
                  ["Parameters", keys.params.map((key) => columnId("params", key))],
                  ["Metrics", keys.metrics.map((key) => columnId("metrics", key))],
                ] as [string, string[]][]
              ).map(([section, ids]) => [
                <tr key={section}>
                  <th colSpan={loaded.length + 1} scope="rowgroup">
                    {section}
                  </th>
                </tr>,
                ...ids.map((id) => {
                  const column = parseColumn(id) as Column;
                  const values = loaded.map((run) =>
                    column.kind === "params"
                      ? run.data.params?.find((param) => param.key === column.key)?.value
                      : run.data.metrics?.find((metric) => metric.key === column.key)?.value,
                  );
                  const differs = new Set(values.map(String)).size > 1;
                  return (
                    <tr key={id} className={differs ? "differs" : undefined}>
                      <th scope="row">
                        {column.kind === "metrics" ? (
                          <Link to={`/metric?runs=${runIds.join(",")}&key=${encodeURIComponent(column.key)}`}>{column.key}</Link>
                        ) : (
                          column.key
                        )}
                        {differs ? <span className="visually-hidden"> (differs)</span> : null}
                      </th>
                      {values.map((value, index) => (
                        <td key={loaded[index].info.run_id}>{value === undefined ? "—" : column.kind === "metrics" ? formatNumber(value) : String(value)}</td>
                      ))}
                    </tr>
                  );
                }),
              ])}
            </tbody>
          </table>
        </div>
      ) : null}
      {tab === "charts" && loaded.length ? (
        <>
          <ChartControls
            xAxis={xAxis}
            smoothing={smoothing}
            logScale={logScale}
            onChange={(next) =>
              update(
                {
                  ...(next.xAxis ? { x: next.xAxis === "step" ? undefined : next.xAxis } : {}),
                  ...(next.smoothing !== undefined ? { smooth: next.smoothing ? String(next.smoothing) : undefined } : {}),
                  ...(next.logScale !== undefined ? { log: next.logScale ? "1" : undefined } : {}),
                },
                true,
              )
            }
          />
          <div className="chart-grid">
            {keys.metrics.map((key) => (
              <MetricChart
                key={key}
                runs={loaded.map((run) => ({ run_id: run.info.run_id, name: runName(run) }))}
                metricKey={key}
                xAxis={xAxis}
                smoothing={smoothing}
                logScale={logScale}
                height={260}
              />
            ))}
          </div>
        </>
      ) : null}
      {tab === "parallel" && loaded.length ? (
        <>
          <fieldset className="column-picker">
            <legend>Axes</legend>
            {allColumns.map((id) => {
              const column = parseColumn(id) as Column;
              const checked = axes.some((axis) => axis.id === id);
              return (
                <label key={id}>
                  <input
                    type="checkbox"
                    checked={checked}
                    onChange={() =>
                      update({ axes: (checked ? axes.filter((axis) => axis.id !== id).map((axis) => axis.id) : [...axes.map((axis) => axis.id), id]).join(",") }, true)
                    }
                  />
                  {column.kind === "params" ? "param" : "metric"}: {columnLabel(column)}
                </label>
              );
            })}
          </fieldset>
          <div style={{ overflow: "auto" }}>
            <ParallelCoordinates runs={loaded} columns={axes} />
          </div>
        </>
      ) : null}
      {tab === "scatter" && loaded.length ? (
        <>
          <div className="toolbar">
            {(
              [
                ["X axis", "sx", scatterX],
                ["Y axis", "sy", scatterY],
              ] as [string, string, Column | undefined][]
            ).map(([label, param, current]) => (
              <label key={param}>
                {label}
                <select aria-label={label} value={current?.id ?? ""} onChange={(event) => update({ [param]: event.target.value }, true)}>
                  {allColumns.map((id) => (
                    <option key={id} value={id}>
                      {id.startsWith("params.") ? "param" : "metric"}: {id.slice(id.indexOf(".") + 1)}
                    </option>
                  ))}
                </select>
              </label>
            ))}
          </div>
          {scatterX && scatterY ? <ScatterPlot runs={loaded} xColumn={scatterX} yColumn={scatterY} /> : <div className="empty">Nothing to plot.</div>}
        </>
      ) : null}
    </section>
  );
}
