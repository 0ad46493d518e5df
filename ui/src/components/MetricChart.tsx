import { useEffect, useMemo, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import * as api from "../api";
import { ErrorBox } from "./Feedback";

export type XAxis = "step" | "wall" | "relative";
export interface ChartRun {
  run_id: string;
  name: string;
}

/** Points a run asks the server for: enough for a sharp line on any screen, few enough to draw at once. */
export const SAMPLES_PER_RUN = 1000;

const PALETTE = ["#0b5cad", "#c24e00", "#1a7f37", "#8250df", "#a4161a", "#0a7480", "#9a6700", "#bf3989", "#57606a", "#116329"];
export const runColor = (index: number) => PALETTE[index % PALETTE.length];

/** TensorBoard's debiased exponential moving average; `weight` 0 leaves the series as it is. */
export function smooth(values: (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) return values;
  let last = 0;
  let count = 0;
  return values.map((value) => {
    if (value === null || !Number.isFinite(value)) return value;
    last = last * weight + (1 - weight) * value;
    count += 1;
    return last / (1 - Math.pow(weight, count));
  });
}

/**
 * One metric of several runs overlaid, drawn with uPlot from server-side samples
 * (`get-history-bulk-interval`, at most SAMPLES_PER_RUN points per run). Dragging across the plot
 * zooms in and, on the step axis, fetches that step range again at full resolution; double-click resets.
 */
export function MetricChart(props: {
  runs: ChartRun[];
  metricKey: string;
  xAxis: XAxis;
  smoothing: number;
  logScale: boolean;
  height?: number;
  onPointsLoaded?: (count: number) => void;
}) {
  const { runs, metricKey, xAxis, smoothing, logScale } = props;
  const [steps, setSteps] = useState<[number, number] | undefined>();
  const [points, setPoints] = useState<api.Metric[] | undefined>();
  const [error, setError] = useState<unknown>();
  const runKey = runs.map((run) => run.run_id).join(",");
  const runNames = runs.map((run) => run.name).join("\u0000");

  useEffect(() => setSteps(undefined), [runKey, metricKey, xAxis]);
  useEffect(() => {
    const controller = new AbortController();
    setError(undefined);
    const batches: string[][] = [];
    for (let index = 0; index < runs.length; index += 100) batches.push(runs.slice(index, index + 100).map((run) => run.run_id));
    Promise.all(batches.map((ids) => api.getMetricHistorySampled(ids, metricKey, SAMPLES_PER_RUN, steps, controller.signal)))
      .then((parts) => {
        const all = parts.flat();
        setPoints(all);
        props.onPointsLoaded?.(all.length);
      })
      .catch((failure) => {
        if (!controller.signal.aborted) setError(failure);
      });
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runKey, metricKey, steps?.[0], steps?.[1]]);

  const data = useMemo(() => {
    if (!points) return undefined;
    const byRun = new Map<string, api.Metric[]>();
    for (const point of points) {
      const list = byRun.get(point.run_id ?? "") ?? [];
      list.push(point);
      byRun.set(point.run_id ?? "", list);
    }
    const tables: uPlot.AlignedData[] = runs.map((run) => {
      const list = (byRun.get(run.run_id) ?? []).slice();
      if (xAxis !== "step") list.sort((a, b) => Number(a.timestamp) - Number(b.timestamp));
      const first = list.length ? Number(list[0].timestamp) : 0;
      const xs: number[] = [];
      const ys: (number | null)[] = [];
      let previous = Number.NEGATIVE_INFINITY;
      for (const point of list) {
        let x = xAxis === "step" ? Number(point.step) : xAxis === "wall" ? Number(point.timestamp) / 1000 : (Number(point.timestamp) - first) / 1000;
        // uPlot needs increasing x within a series; points sharing an x keep the last value.
        if (x <= previous) {
          if (x === previous) {
            ys[ys.length - 1] = toNumber(point.value, logScale);
            continue;
          }
          x = previous;
          continue;
        }
        previous = x;
        xs.push(x);
        ys.push(toNumber(point.value, logScale));
      }
      return [xs, smooth(ys, smoothing)] as unknown as uPlot.AlignedData;
    });
    if (tables.length === 1) return tables[0];
    return uPlot.join(tables);
  }, [points, runKey, xAxis, smoothing, logScale]);

  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const zoomHandler = useRef<(min: number, max: number) => void>(() => {});
  zoomHandler.current = (min, max) => {
    if (xAxis === "step") setSteps([Math.floor(min), Math.ceil(max)]);
  };

  useEffect(() => {
    if (!container.current || !data) return;
    const width = Math.max(320, container.current.clientWidth || 600);
    const options: uPlot.Options = {
      width,
      height: props.height ?? 320,
      scales: {
        x: { time: xAxis === "wall" },
        y: logScale ? { distr: 3 } : {},
      },
      axes: [
        { label: xAxis === "step" ? "step" : xAxis === "wall" ? "time" : "seconds since start", stroke: "#1b1f24" },
        { label: metricKey, stroke: "#1b1f24", size: 70 },
      ],
      cursor: { drag: { x: true, y: false } },
      legend: { show: true, live: true },
      series: [
        { label: xAxis === "step" ? "step" : xAxis === "wall" ? "time" : "seconds" },
        ...runs.map((run, index) => ({ label: run.name, stroke: runColor(index), width: 1.5, spanGaps: true, points: { show: false } })),
      ],
      hooks: {
        // Marks the chart as drawn, for the e2e tests and the first-paint benchmark.
        draw: [(chart: uPlot) => chart.root.parentElement?.parentElement?.setAttribute("data-drawn", "true")],
        setSelect: [
          (chart: uPlot) => {
            if (chart.select.width > 4) {
              const min = chart.posToVal(chart.select.left, "x");
              const max = chart.posToVal(chart.select.left + chart.select.width, "x");
              zoomHandler.current(min, max);
            }
          },
        ],
      },
    };
    plot.current?.destroy();
    plot.current = new uPlot(options, data, container.current);
    const element = container.current;
    const reset = () => setSteps(undefined);
    element.addEventListener("dblclick", reset);
    const resize = new ResizeObserver(() => {
      if (plot.current && element.clientWidth) plot.current.setSize({ width: element.clientWidth, height: props.height ?? 320 });
    });
    resize.observe(element);
    return () => {
      element.removeEventListener("dblclick", reset);
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [data, logScale, xAxis, runNames]);

  return (
    <div className="chart-box" data-testid={`chart-${metricKey}`} data-points={points?.length ?? 0} data-zoomed={steps ? "true" : "false"}>
      <ErrorBox error={error} />
      {!points && !error ? <div className="loading">Loading {metricKey}…</div> : null}
      {points && points.length === 0 ? <div className="empty">No values of {metricKey}.</div> : null}
      <div ref={container} role="img" aria-label={`Chart of ${metricKey} for ${runs.map((run) => run.name).join(", ")}`} />
      {steps ? (
        <div className="toolbar">
          <span className="muted">
            Steps {steps[0]}–{steps[1]}
          </span>
          <button onClick={() => setSteps(undefined)}>Reset zoom</button>
        </div>
      ) : null}
    </div>
  );
}

function toNumber(value: number | string, logScale: boolean): number | null {
  const number = typeof value === "number" ? value : Number(value);
  if (!Number.isFinite(number)) return null;
  if (logScale && number <= 0) return null;
  return number;
}

export function ChartControls(props: {
  xAxis: XAxis;
  smoothing: number;
  logScale: boolean;
  onChange: (next: { xAxis?: XAxis; smoothing?: number; logScale?: boolean }) => void;
}) {
  return (
    <div className="chart-controls">
      <label>
        X axis
        <select aria-label="X axis" value={props.xAxis} onChange={(event) => props.onChange({ xAxis: event.target.value as XAxis })}>
          <option value="step">Step</option>
          <option value="wall">Wall time</option>
          <option value="relative">Relative time</option>
        </select>
      </label>
      <label>
        Smoothing
        <input
          type="range"
          aria-label="Smoothing"
          min={0}
          max={0.99}
          step={0.01}
          value={props.smoothing}
          onChange={(event) => props.onChange({ smoothing: Number(event.target.value) })}
        />
        <span>{props.smoothing.toFixed(2)}</span>
      </label>
      <label>
        <input type="checkbox" checked={props.logScale} onChange={(event) => props.onChange({ logScale: event.target.checked })} />
        Log scale
      </label>
    </div>
  );
}
