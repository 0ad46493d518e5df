// The e2e harness: starts a ferroflow server on a free port with a fresh SQLite database and artifact
// folder, creates data through its REST API, drives headless Chromium through playwright-core, saves
// screenshots, and stops what it started.
//
// Environment:
//   FERROFLOW_BIN     the ferroflow binary (default: target/debug/ferroflow)
//   CHROMIUM_PATH     the Chromium executable (default: /usr/bin/chromium)
//   E2E_HEADED=1      show the browser
//   E2E_DOCS=0        don't copy screenshots to docs/ui/ (default: copy, except under CI=true)
//   E2E_SLOW_WRITES_MS=N  hold every write the page sends to the API (POST, PATCH, DELETE) for N ms, as a
//                     loaded machine does: a journey that checks the API before the page saw the answer fails
//   E2E_SLOW_READS_MS=N   the same for the page's GET requests: a journey that reads a table before it loaded fails
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(HERE, "../..");
export const OUTPUT = join(HERE, "output");
const DOCS = join(ROOT, "docs", "ui");
const COPY_TO_DOCS = process.env.E2E_DOCS ? process.env.E2E_DOCS === "1" : process.env.CI !== "true";

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** A ferroflow server on 127.0.0.1 with its own temporary database and artifacts; `stop()` ends it. */
export async function startServer() {
  const bin = process.env.FERROFLOW_BIN ?? join(ROOT, "target", "debug", "ferroflow");
  const dir = mkdtempSync(join(tmpdir(), "ferroflow-e2e-"));
  const port = await freePort();
  const child = spawn(
    bin,
    [
      "server",
      "--host", "127.0.0.1",
      "--port", String(port),
      "--backend-store-uri", `sqlite:///${join(dir, "mlflow.db")}`,
      "--artifacts-destination", join(dir, "artifacts"),
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`ferroflow exited with ${child.exitCode}: ${stderr}`);
    try {
      const response = await fetch(`${url}/health`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`ferroflow did not answer /health within 30 s: ${stderr}`);
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  return {
    url,
    api: new Api(url),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((done) => child.once("exit", done));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The REST API, as a client would call it, to create the data a journey needs. */
export class Api {
  constructor(url) {
    this.url = url;
  }
  async call(method, path, body) {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : {};
  }
  post(path, body) {
    return this.call("POST", `/api/2.0/mlflow${path}`, body);
  }
  get(path, query = {}) {
    const search = new URLSearchParams(query).toString();
    return this.call("GET", `/api/2.0/mlflow${path}${search ? `?${search}` : ""}`);
  }
  async createExperiment(name, tags = []) {
    return (await this.post("/experiments/create", { name, tags })).experiment_id;
  }
  async createRun(experiment_id, { name, start_time = Date.now(), tags = [] } = {}) {
    const answer = await this.post("/runs/create", { experiment_id, run_name: name, start_time, tags });
    return answer.run.info.run_id;
  }
  logBatch(run_id, { metrics = [], params = [], tags = [] }) {
    return this.post("/runs/log-batch", { run_id, metrics, params, tags });
  }
  finishRun(run_id, status = "FINISHED") {
    return this.post("/runs/update", { run_id, status, end_time: Date.now() });
  }
  /** Uploads `content` as an artifact of the run through the proxied artifact API. */
  async uploadArtifact(run_id, path, content) {
    const run = (await this.get("/runs/get", { run_id })).run;
    const root = run.info.artifact_uri.replace(/^mlflow-artifacts:\/?/, "").replace(/^\/+/, "");
    const response = await fetch(`${this.url}/api/2.0/mlflow-artifacts/artifacts/${root}/${path}`, {
      method: "PUT",
      body: content,
    });
    if (!response.ok) throw new Error(`upload ${path}: ${response.status} ${await response.text()}`);
  }
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: process.env.E2E_HEADED !== "1",
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
}

/** A fresh page of 1400x900 that fails the test on any uncaught page error or console error. */
export async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const slowWrites = Number(process.env.E2E_SLOW_WRITES_MS || 0);
  const slowReads = Number(process.env.E2E_SLOW_READS_MS || 0);
  if (slowWrites > 0 || slowReads > 0) {
    await context.route("**/ajax-api/**", async (route) => {
      const delay = route.request().method() === "GET" ? slowReads : slowWrites;
      if (delay > 0) await new Promise((done) => setTimeout(done, delay));
      await route.continue();
    });
  }
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().includes("Failed to load resource")) problems.push(`console: ${message.text()}`);
  });
  page.problems = problems;
  return page;
}

/** Saves a full-page screenshot as output/<name>.png and, outside CI, docs/ui/<name>.png. */
export async function screenshot(page, name) {
  mkdirSync(OUTPUT, { recursive: true });
  const file = join(OUTPUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  if (COPY_TO_DOCS) {
    mkdirSync(DOCS, { recursive: true });
    copyFileSync(file, join(DOCS, `${name}.png`));
  }
  return file;
}

/**
 * Text inside `selector` whose contrast with its background is under WCAG AA's 4.5:1 (disabled controls
 * are exempt, as WCAG exempts inactive components). Each entry names the text and its ratio.
 */
export function lowContrast(page, selector) {
  return page.evaluate((root) => {
    const parse = (color) => {
      const parts = color.match(/[\d.]+/g)?.map(Number) ?? [0, 0, 0, 0];
      return { rgb: parts.slice(0, 3), alpha: parts.length > 3 ? parts[3] : 1 };
    };
    const luminance = ([r, g, b]) => {
      const channel = (value) => {
        const c = value / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    const background = (element) => {
      for (let node = element; node; node = node.parentElement) {
        const color = parse(getComputedStyle(node).backgroundColor);
        if (color.alpha > 0.5) return color.rgb;
      }
      return [255, 255, 255];
    };
    const found = [];
    for (const container of document.querySelectorAll(root)) {
      const walker = document.createTreeWalker(container, NodeFilter.SHOW_TEXT);
      for (let text = walker.nextNode(); text; text = walker.nextNode()) {
        const element = text.parentElement;
        if (!text.textContent.trim() || !element || element.closest(":disabled, option")) continue;
        const box = element.getBoundingClientRect();
        if (!box.width || !box.height) continue;
        const front = luminance(parse(getComputedStyle(element).color).rgb);
        const back = luminance(background(element));
        const ratio = (Math.max(front, back) + 0.05) / (Math.min(front, back) + 0.05);
        if (ratio < 4.5) found.push(`${text.textContent.trim().slice(0, 40)}: ${ratio.toFixed(2)}`);
      }
    }
    return found;
  }, selector);
}
