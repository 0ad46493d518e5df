import { useMemo } from "react";
import type { Run } from "../api";
import { formatNumber } from "../lib/format";
import { cellValue, type Column, columnLabel, runName } from "../lib/runColumns";
import { runColor } from "./MetricChart";

/** An axis over the runs' values of one column: linear when every value is a number, else categorical. */
function makeAxis(runs: Run[], column: Column) {
  const values = runs.map((run) => cellValue(run, column));
  const present = values.filter((value) => value !== undefined && value !== "");
  const numeric = present.length > 0 && present.every((value) => Number.isFinite(Number(value)));
  if (numeric) {
    const numbers = present.map(Number);
    let min = Math.min(...numbers);
    let max = Math.max(...numbers);
    if (min === max) {
      min -= 1;
      max += 1;
    }
    return {
      numeric: true as const,
      ticks: [min, (min + max) / 2, max].map((value) => ({ value, label: formatNumber(value) })),
      position: (value: unknown) => (value === undefined || value === "" ? undefined : (Number(value) - min) / (max - min)),
    };
  }
  const categories = [...new Set(present.map(String))].sort();
  const step = categories.length > 1 ? 1 / (categories.length - 1) : 0;
  return {
    numeric: false as const,
    ticks: categories.map((label, index) => ({ value: index, label })),
    position: (value: unknown) => {
      if (value === undefined || value === "") return undefined;
      const index = categories.indexOf(String(value));
      return categories.length === 1 ? 0.5 : index * step;
    },
  };
}

/** Parallel coordinates: one vertical axis per column, one line per run (SVG, keyboard-readable titles). */
export function ParallelCoordinates({ runs, columns }: { runs: Run[]; columns: Column[] }) {
  const width = Math.max(600, columns.length * 160);
  const height = 360;
  const top = 30;
  const bottom = 30;
  const left = 60;
  const right = 60;
  const axes = useMemo(() => columns.map((column) => makeAxis(runs, column)), [runs, columns]);
  if (columns.length < 2) return <div className="empty">Choose at least two columns for parallel coordinates.</div>;
  const x = (index: number) => left + (index * (width - left - right)) / (columns.length - 1);
  const y = (fraction: number) => top + (1 - fraction) * (height - top - bottom);
  return (
    <svg width={width} height={height} role="img" aria-label="Parallel coordinates of the selected runs" data-testid="parallel-coordinates">
      {runs.map((run, runIndex) => {
        const points = columns
          .map((column, index) => {
            const fraction = axes[index].position(cellValue(run, column));
            return fraction === undefined ? undefined : `${x(index)},${y(fraction)}`;
          })
          .filter(Boolean);
        return (
          <polyline key={run.info.run_id} points={points.join(" ")} fill="none" stroke={runColor(runIndex)} strokeWidth={2} opacity={0.85}>
            <title>{runName(run)}</title>
          </polyline>
        );
      })}
      {columns.map((column, index) => (
        <g key={column.id}>
          <line x1={x(index)} x2={x(index)} y1={top} y2={height - bottom} stroke="#4f5b66" />
          <text x={x(index)} y={top - 10} textAnchor="middle" fontWeight={600} fontSize={12}>
            {columnLabel(column)}
          </text>
          {axes[index].ticks.map((tick) => {
            const fraction = axes[index].numeric ? axes[index].position(tick.value) : axes[index].position(tick.label);
            return fraction === undefined ? null : (
              <text key={tick.label} x={x(index) + 4} y={y(fraction) + 4} fontSize={11}>
                {tick.label}
              </text>
            );
          })}
        </g>
      ))}
    </svg>
  );
}

/** A scatter plot of two columns over the runs (e.g. a parameter against a metric). */
export function ScatterPlot({ runs, xColumn, yColumn }: { runs: Run[]; xColumn: Column; yColumn: Column }) {
  const width = 560;
  const height = 360;
  const margin = { top: 20, right: 20, bottom: 50, left: 70 };
  const xAxis = useMemo(() => makeAxis(runs, xColumn), [runs, xColumn]);
  const yAxis = useMemo(() => makeAxis(runs, yColumn), [runs, yColumn]);
  const px = (fraction: number) => margin.left + fraction * (width - margin.left - margin.right);
  const py = (fraction: number) => margin.top + (1 - fraction) * (height - margin.top - margin.bottom);
  return (
    <svg width={width} height={height} role="img" aria-label={`Scatter of ${columnLabel(yColumn)} against ${columnLabel(xColumn)}`} data-testid="scatter-plot">
      <rect x={margin.left} y={margin.top} width={width - margin.left - margin.right} height={height - margin.top - margin.bottom} fill="none" stroke="#c9d1d9" />
      {xAxis.ticks.map((tick) => {
        const fraction = xAxis.numeric ? xAxis.position(tick.value) : xAxis.position(tick.label);
        return fraction === undefined ? null : (
          <text key={`x${tick.label}`} x={px(fraction)} y={height - margin.bottom + 16} textAnchor="middle" fontSize={11}>
            {tick.label}
          </text>
        );
      })}
      {yAxis.ticks.map((tick) => {
        const fraction = yAxis.numeric ? yAxis.position(tick.value) : yAxis.position(tick.label);
        return fraction === undefined ? null : (
          <text key={`y${tick.label}`} x={margin.left - 6} y={py(fraction) + 4} textAnchor="end" fontSize={11}>
            {tick.label}
          </text>
        );
      })}
      <text x={(width + margin.left) / 2} y={height - 10} textAnchor="middle" fontWeight={600} fontSize={12}>
        {columnLabel(xColumn)}
      </text>
      <text x={14} y={(height - margin.bottom) / 2} textAnchor="middle" fontWeight={600} fontSize={12} transform={`rotate(-90 14 ${(height - margin.bottom) / 2})`}>
        {columnLabel(yColumn)}
      </text>
      {runs.map((run, index) => {
        const fx = xAxis.position(cellValue(run, xColumn));
        const fy = yAxis.position(cellValue(run, yColumn));
        if (fx === undefined || fy === undefined) return null;
        return (
          <circle key={run.info.run_id} cx={px(fx)} cy={py(fy)} r={6} fill={runColor(index)} data-run-id={run.info.run_id}>
            <title>
              {runName(run)}: {columnLabel(xColumn)} = {String(cellValue(run, xColumn))}, {columnLabel(yColumn)} = {String(cellValue(run, yColumn))}
            </title>
          </circle>
        );
      })}
    </svg>
  );
}
