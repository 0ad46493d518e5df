import { useMemo } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { ChartControls, MetricChart, type XAxis } from "../components/MetricChart";
import { ErrorBox, Loading } from "../components/Feedback";
import { runName } from "../lib/runColumns";
import { useDocumentTitle } from "../lib/useDocumentTitle";
import { useRunIdsParam, useRuns } from "../lib/useRuns";

/** One metric of one or more runs: `/metric?runs=a,b&key=loss&x=step|wall|relative&smooth=0.6&log=1`. */
export function MetricPage() {
  const [search, setSearch] = useSearchParams();
  const runIds = useRunIdsParam(search);
  const metricKey = search.get("key") ?? "";
  const xAxis = (search.get("x") as XAxis | null) ?? "step";
  const smoothing = Number(search.get("smooth") ?? 0) || 0;
  const logScale = search.get("log") === "1";
  useDocumentTitle(metricKey ? `Metric ${metricKey}` : "Metric");
  const runs = useRuns(runIds);
  const metricKeys = useMemo(() => {
    const keys = new Set<string>();
    runs.data?.forEach((run) => run.data.metrics?.forEach((metric) => keys.add(metric.key)));
    return [...keys].sort();
  }, [runs.data]);

  function update(next: Record<string, string | undefined>) {
    const copy = new URLSearchParams(search);
    for (const [key, value] of Object.entries(next)) {
      if (value) copy.set(key, value);
      else copy.delete(key);
    }
    setSearch(copy, { replace: "smooth" in next });
  }

  const first = runs.data?.[0];
  return (
    <section className="page">
      <div className="breadcrumbs">
        <Link to="/experiments">Experiments</Link>
        {first ? (
          <>
            {" / "}
            <Link to={`/experiments/${first.info.experiment_id}`}>runs</Link>
            {runs.data?.length === 1 ? (
              <>
                {" / "}
                <Link to={`/experiments/${first.info.experiment_id}/runs/${first.info.run_id}`}>{runName(first)}</Link>
              </>
            ) : null}
          </>
        ) : null}
      </div>
      <div className="page-header">
        <h1>{metricKey || "Metric"}</h1>
        <span className="muted">{runIds.length} run{runIds.length === 1 ? "" : "s"}</span>
      </div>
      <ErrorBox error={runs.error} />
      {runs.loading && !runs.data ? <Loading /> : null}
      <div className="toolbar">
        <label>
          Metric
          <select aria-label="Metric" value={metricKey} onChange={(event) => update({ key: event.target.value })}>
            {metricKey && !metricKeys.includes(metricKey) ? <option value={metricKey}>{metricKey}</option> : null}
            {metricKeys.map((key) => (
              <option key={key} value={key}>
                {key}
              </option>
            ))}
          </select>
        </label>
        <ChartControls
          xAxis={xAxis}
          smoothing={smoothing}
          logScale={logScale}
          onChange={(next) =>
            update({
              ...(next.xAxis ? { x: next.xAxis === "step" ? undefined : next.xAxis } : {}),
              ...(next.smoothing !== undefined ? { smooth: next.smoothing ? String(next.smoothing) : undefined } : {}),
              ...(next.logScale !== undefined ? { log: next.logScale ? "1" : undefined } : {}),
            })
          }
        />
      </div>
      {metricKey && runIds.length ? (
        // The chart starts fetching from the ids in the URL at once; run names replace the ids when loaded.
        <MetricChart
          runs={runIds.map((id) => {
            const run = runs.data?.find((item) => item.info.run_id === id);
            return { run_id: id, name: run ? runName(run) : id };
          })}
          metricKey={metricKey}
          xAxis={xAxis}
          smoothing={smoothing}
          logScale={logScale}
          height={420}
        />
      ) : null}
      <p className="muted">Drag across the chart to zoom: the range is fetched again in full detail (on a time axis, the steps drawn in the window); double-click to reset.</p>
    </section>
  );
}
