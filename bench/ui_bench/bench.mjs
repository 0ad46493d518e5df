// UI first-paint benchmark (not a test): ferroflow's UI and MLflow's UI (`mlflow server`) on the same
// SQLite file, in headless Chromium. Two figures per server, each the median of REPEATS cold loads (a new
// browser context, so no cache):
//   runs table   navigation start → the first rows of an experiment with 10,000 runs are in the page
//   metric chart navigation start → a 1,000,000-point metric of one run is drawn
//
// Environment: FERROFLOW_BIN, MLFLOW_BIN (default .venv/bin/mlflow), PYTHON (default .venv/bin/python),
// CHROMIUM_PATH, REPEATS (default 5), RUNS (10000), POINTS (1000000), BENCH_OUT (results JSON path).
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "../..");
const require = createRequire(join(ROOT, "tests", "e2e", "package.json"));
const { chromium } = require("playwright-core");
const { freePort } = await import(join(ROOT, "tests", "e2e", "harness.mjs"));

const FERROFLOW_BIN = process.env.FERROFLOW_BIN ?? join(ROOT, "target", "release", "ferroflow");
const MLFLOW_BIN = process.env.MLFLOW_BIN ?? join(ROOT, ".venv", "bin", "mlflow");
const PYTHON = process.env.PYTHON ?? join(ROOT, ".venv", "bin", "python");
const REPEATS = Number(process.env.REPEATS ?? 5);
const RUNS = Number(process.env.RUNS ?? 10000);
const POINTS = Number(process.env.POINTS ?? 1000000);
const TIMEOUT = 120_000;

function log(message) {
  console.log(`[ui-bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

async function waitHealthy(url, child, name) {
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((done) => setTimeout(done, 200));
  }
  throw new Error(`${name} did not become healthy`);
}

async function startProcess(name, command, args, url) {
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"], detached: false });
  child.stderr.on("data", () => {});
  await waitHealthy(url, child, name);
  return {
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((done) => child.once("exit", done));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function startFerroflow(db, artifacts) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = ["server", "--host", "127.0.0.1", "--port", String(port), "--backend-store-uri", `sqlite:///${db}`, "--artifacts-destination", artifacts];
  return { url, ...(await startProcess("ferroflow", FERROFLOW_BIN, args, url)) };
}

async function startMlflow(db, artifacts) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = ["server", "--host", "127.0.0.1", "--port", String(port), "--backend-store-uri", `sqlite:///${db}`, "--artifacts-destination", artifacts, "--workers", "1"];
  return { url, ...(await startProcess("mlflow", MLFLOW_BIN, args, url)) };
}

async function api(url, path, body) {
  const response = await fetch(`${url}/api/2.0/mlflow${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** Loads `url` in a fresh context and returns ms from navigation start until `ready()` holds at a frame. */
async function firstPaint(browser, url, ready, arg) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  try {
    await page.goto(url, { waitUntil: "commit", timeout: TIMEOUT });
    const handle = await page.waitForFunction(
      ([source, value]) => {
        const check = new Function("value", `return (${source})(value);`);
        return check(value) ? performance.now() : false;
      },
      [ready.toString(), arg],
      { polling: "raf", timeout: TIMEOUT },
    );
    return await handle.jsonValue();
  } finally {
    await context.close();
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function measure(browser, name, url, ready, arg) {
  try {
    await firstPaint(browser, url, ready, arg); // warm the server (not the browser: each load is a new context)
  } catch (error) {
    log(`${name}: not shown within ${TIMEOUT / 1000} s (${error.message.split("\n")[0]})`);
    return { median_ms: null, timed_out_after_ms: TIMEOUT };
  }
  const times = [];
  for (let repeat = 0; repeat < REPEATS; repeat++) times.push(await firstPaint(browser, url, ready, arg));
  const result = { median_ms: Math.round(median(times)), runs_ms: times.map(Math.round) };
  log(`${name}: median ${result.median_ms} ms (${result.runs_ms.join(", ")})`);
  return result;
}

// Page conditions, evaluated in the browser.
const ferroflowRunsReady = () => document.querySelectorAll('[role="row"][data-run-id]').length >= 10;
const ferroflowChartReady = () => document.querySelector('[data-testid="chart-loss"]')?.getAttribute("data-drawn") === "true";
const mlflowRunsReady = () => document.querySelectorAll(".ag-center-cols-container .ag-row").length >= 10;
const mlflowChartReady = () => {
  const lines = document.querySelectorAll(".js-plotly-plot .scatterlayer path.js-line");
  return [...lines].some((line) => (line.getAttribute("d") ?? "").length > 100);
};

const dir = mkdtempSync(join(tmpdir(), "ferroflow-ui-bench-"));
const db = join(dir, "mlflow.db");
const artifacts = join(dir, "artifacts");
mkdirSync(artifacts);
const results = { runs: RUNS, points: POINTS, repeats: REPEATS, ferroflow_bin: FERROFLOW_BIN, servers: {} };
let browser;
try {
  log(`filling ${db}: ${RUNS} runs, a ${POINTS}-point metric`);
  const setup = await startFerroflow(db, artifacts);
  const runsExperiment = (await api(setup.url, "/experiments/create", { name: "bench-10k-runs" })).experiment_id;
  const metricExperiment = (await api(setup.url, "/experiments/create", { name: "bench-1m-metric" })).experiment_id;
  // MLflow 3's UI opens an experiment as a GenAI one unless this tag says it holds model-training runs.
  for (const experiment_id of [runsExperiment, metricExperiment]) {
    await api(setup.url, "/experiments/set-experiment-tag", { experiment_id, key: "mlflow.experimentKind", value: "custom_model_development" });
  }
  const metricRun = (await api(setup.url, "/runs/create", { experiment_id: metricExperiment, run_name: "long-run", start_time: Date.now() })).run.info.run_id;
  await setup.stop();
  const filled = spawnSync(PYTHON, [join(HERE, "fill.py"), db, runsExperiment, metricRun, String(RUNS), String(POINTS)], { stdio: "inherit" });
  if (filled.status !== 0) throw new Error("fill.py failed");
  results.data = { runs_experiment: runsExperiment, metric_experiment: metricExperiment, metric_run: metricRun };

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
  results.chromium = browser.version();

  log("ferroflow");
  const ferroflow = await startFerroflow(db, artifacts);
  try {
    results.servers.ferroflow = {
      runs_table: await measure(browser, "ferroflow runs table", `${ferroflow.url}/experiments/${runsExperiment}`, ferroflowRunsReady),
      metric_chart: await measure(browser, "ferroflow metric chart", `${ferroflow.url}/metric?runs=${metricRun}&key=loss`, ferroflowChartReady),
    };
  } finally {
    await ferroflow.stop();
  }

  log("mlflow server");
  const mlflow = await startMlflow(db, artifacts);
  try {
    results.servers.mlflow = {
      runs_table: await measure(browser, "mlflow runs table", `${mlflow.url}/#/experiments/${runsExperiment}/runs`, mlflowRunsReady),
      metric_chart: await measure(
        browser,
        "mlflow metric chart",
        // The URL MLflow's own links build (getMetricPageRoute).
        `${mlflow.url}/#/metric?runs=${JSON.stringify([metricRun])}&metric=${encodeURIComponent('"loss"')}&experiments=${JSON.stringify([metricExperiment])}` +
          `&plot_metric_keys=${encodeURIComponent('["loss"]')}&plot_layout={}&x_axis=step&y_axis_scale=linear&line_smoothness=1&show_point=false&deselected_curves=[]&last_linear_y_axis_range=[]`,
        mlflowChartReady,
      ),
    };
  } finally {
    await mlflow.stop();
  }
} finally {
  await browser?.close();
  if (process.env.BENCH_KEEP_DIR === "1") log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
const out = process.env.BENCH_OUT ?? join(ROOT, "bench", "results", "ui_bench.json");
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
log(`wrote ${out}`);
