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
 * zooms in and fetches that range again at full resolution (on a time axis, the steps of the points drawn
 * in the window); double-click resets.
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

  // Relative time counts from a run's first point of the whole history, which a zoomed fetch leaves out,
  // so the origins are kept from the last unzoomed fetch.
  const origins = useRef(new Map<string, number>());
  if (points && !steps) origins.current = firstTimestamps(points);
  const xOf = (point: api.Metric) =>
    xAxis === "step"
      ? Number(point.step)
      : xAxis === "wall"
        ? Number(point.timestamp) / 1000
        : (Number(point.timestamp) - (origins.current.get(point.run_id ?? "") ?? 0)) / 1000;

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
      const xs: number[] = [];
      const ys: (number | null)[] = [];
      let previous = Number.NEGATIVE_INFINITY;
      for (const point of list) {
        let x = xOf(point);
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
  const [windowBefore, setWindowBefore] = useState<number>();
  zoomHandler.current = (min, max) => {
    if (xAxis === "step") {
      setWindowBefore(countInWindow(points ?? [], xOf, min, max));
      setSteps([Math.floor(min), Math.ceil(max)]);
      return;
    }
    // get-history-bulk-interval filters by step only: the time window becomes the steps of the points
    // drawn inside it (widened to the drawn neighbours on either side, so the window's edges stay covered).
    const range = stepRangeOfWindow(points ?? [], xOf, min, max);
    if (range) {
      setWindowBefore(countInWindow(points ?? [], xOf, min, max));
      setSteps(range);
    }
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
        draw: [
          (chart: uPlot) => {
            const box = chart.root.parentElement?.parentElement;
            box?.setAttribute("data-drawn", "true");
            box?.setAttribute("data-visible-points", String(visiblePoints(chart)));
            box?.setAttribute("data-x-range", `${chart.scales.x.min},${chart.scales.x.max}`);
          },
        ],
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
    <div
      className="chart-box"
      data-testid={`chart-${metricKey}`}
      data-points={points?.length ?? 0}
      data-zoomed={steps ? "true" : "false"}
      data-window-points-before={steps ? windowBefore : undefined}
    >
      <ErrorBox error={error} />
      {!points && !error ? <div className="loading">Loading {metricKey}…</div> : null}
      {points && points.length === 0 ? <div className="empty">No values of {metricKey}.</div> : null}
      <div ref={container} role="img" aria-label={`Chart of ${metricKey} for ${runs.map((run) => run.name).join(", ")}`} />
      {steps ? (
        <div className="toolbar">
          <span className="muted">
            {xAxis === "step" ? "Steps" : "Zoomed to steps"} {steps[0]}–{steps[1]}
          </span>
          <button onClick={() => setSteps(undefined)}>Reset zoom</button>
        </div>
      ) : null}
    </div>
  );
}

/** Each run's earliest timestamp. */
function firstTimestamps(points: api.Metric[]): Map<string, number> {
  const first = new Map<string, number>();
  for (const point of points) {
    const run = point.run_id ?? "";
    const time = Number(point.timestamp);
    if (!(time >= (first.get(run) ?? Infinity))) first.set(run, time);
  }
  return first;
}

const countInWindow = (points: api.Metric[], xOf: (point: api.Metric) => number, min: number, max: number) =>
  points.filter((point) => {
    const x = xOf(point);
    return x >= min && x <= max;
  }).length;

/**
 * The steps to fetch for an x window of a time axis: from the step of the last point drawn before the window
 * to the step of the first point after it (or the window's own points at an end of the history).
 */
export function stepRangeOfWindow(points: api.Metric[], xOf: (point: api.Metric) => number, min: number, max: number): [number, number] | undefined {
  let low = Infinity;
  let high = -Infinity;
  let before: { x: number; step: number } | undefined;
  let after: { x: number; step: number } | undefined;
  for (const point of points) {
    const x = xOf(point);
    const step = Number(point.step);
    if (x < min) {
      if (!before || x > before.x) before = { x, step };
    } else if (x > max) {
      if (!after || x < after.x) after = { x, step };
    } else {
      low = Math.min(low, step);
      high = Math.max(high, step);
    }
  }
  if (before) low = Math.min(low, before.step);
  if (after) high = Math.max(high, after.step);
  return Number.isFinite(low) && Number.isFinite(high) ? [low, high] : undefined;
}

/** Points of all series drawn inside the x scale's current range. */
function visiblePoints(chart: uPlot): number {
  const { min, max } = chart.scales.x;
  const xs = chart.data[0];
  if (min === undefined || max === undefined || !xs) return 0;
  let count = 0;
  for (let series = 1; series < chart.data.length; series++) {
    const ys = chart.data[series];
    for (let index = 0; index < xs.length; index++) if (xs[index] >= min && xs[index] <= max && ys[index] !== null && ys[index] !== undefined) count++;
  }
  return count;
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
