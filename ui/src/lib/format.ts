// Formatting shared by every page.

export function formatTime(ms?: number | string | null): string {
  if (ms === undefined || ms === null || ms === "") return "—";
  const date = new Date(Number(ms));
  if (Number.isNaN(date.getTime())) return "—";
  const pad = (value: number) => String(value).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export function formatDuration(ms?: number | null): string {
  if (ms === undefined || ms === null || !Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = seconds / 60;
  if (minutes < 60) return `${minutes.toFixed(1)} min`;
  return `${(minutes / 60).toFixed(1)} h`;
}

export function formatBytes(bytes?: number | null): string {
  if (bytes === undefined || bytes === null) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function formatNumber(value: unknown): string {
  if (value === undefined || value === null || value === "") return "";
  const number = typeof value === "number" ? value : Number(value);
  if (typeof value === "string" && Number.isNaN(number)) return value;
  if (!Number.isFinite(number)) return String(value);
  if (Number.isInteger(number)) return String(number);
  const abs = Math.abs(number);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e6)) return number.toExponential(4);
  return String(Number(number.toPrecision(6)));
}
