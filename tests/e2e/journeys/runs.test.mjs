// Runs table: paging from the server while scrolling, filter (with inline errors), sort, columns,
// grouping, selection, and the way to the run page and the compare view.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, newPage, screenshot, startServer } from "../harness.mjs";

let server;
let browser;
let experimentId;
const RUNS = 150;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  experimentId = await server.api.createExperiment("sweep");
  const base = Date.now() - RUNS * 1000;
  for (let index = 0; index < RUNS; index++) {
    const runId = await server.api.createRun(experimentId, { name: `run-${String(index).padStart(3, "0")}`, start_time: base + index * 1000 });
    await server.api.logBatch(runId, {
      params: [
        { key: "lr", value: String([0.1, 0.01, 0.001][index % 3]) },
        { key: "model", value: index % 2 ? "tree" : "linear" },
      ],
      metrics: [
        { key: "loss", value: 1 / (index + 1), timestamp: base + index * 1000, step: 0 },
        { key: "accuracy", value: index / RUNS, timestamp: base + index * 1000, step: 0 },
      ],
      tags: [{ key: "team", value: index % 4 === 0 ? "vision" : "ranking" }],
    });
    if (index % 5 !== 0) await server.api.finishRun(runId);
  }
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const visibleNames = (page) => page.locator('[role="grid"] [role="row"][data-run-id] [role="gridcell"]:nth-child(2)').allInnerTexts();

test("the table pages from the server as it scrolls and renders only visible rows", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/experiments/${experimentId}`);
  await page.getByRole("heading", { name: "sweep" }).waitFor();
  await page.getByText("run-149", { exact: true }).waitFor();
  // Newest first, first page of 100 runs, only a screenful of rows in the DOM.
  assert.match(await page.getByTestId("run-count").innerText(), /^100 runs\+ loaded$/);
  const rendered = await page.locator('[role="row"][data-run-id]').count();
  assert.ok(rendered > 10 && rendered < 60, `rendered ${rendered} rows`);
  assert.equal((await visibleNames(page))[0], "run-149");
  // Default columns: attributes, then metrics and params found in the runs.
  const headers = await page.locator(".grid-header [role=columnheader]").allInnerTexts();
  assert.deepEqual(headers.slice(1).map((text) => text.replace(/\s+/g, " ").trim()), [
    "Run name",
    "Created ▼",
    "Duration",
    "Status",
    "accuracy metric",
    "loss metric",
    "lr param",
    "model param",
  ]);
  await screenshot(page, "runs-table");
  // Scrolling to the end loads the rest.
  for (let attempt = 0; attempt < 20; attempt++) {
    await page.locator(".grid-scroller").evaluate((element) => element.scrollTo(0, element.scrollHeight));
    if ((await page.getByTestId("run-count").innerText()) === `${RUNS} runs loaded`) break;
    await page.waitForTimeout(200);
  }
  assert.equal(await page.getByTestId("run-count").innerText(), `${RUNS} runs loaded`);
  // The last page may have arrived after the last scroll: scroll to the new end before looking for the
  // oldest run (only rows in view are rendered).
  await page.locator(".grid-scroller").evaluate((element) => element.scrollTo(0, element.scrollHeight));
  await page.getByText("run-000", { exact: true }).waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("filter, inline filter errors, sort, columns, grouping and selection", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/experiments/${experimentId}`);
  await page.getByText("run-149", { exact: true }).waitFor();

  // MLflow's filter grammar runs on the server; the filter is in the URL.
  await page.getByLabel("Filter runs").fill("params.model = 'tree' and metrics.loss < 0.01");
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.waitForURL(/filter=/);
  await page.waitForFunction(() => document.querySelector('[data-testid="run-count"]')?.textContent?.startsWith("25 runs"));
  const names = await visibleNames(page);
  assert.ok(names.every((name) => Number(name.slice(4)) % 2 === 1 && Number(name.slice(4)) >= 100), names.join(","));

  // A bad filter shows the server's message under the box and marks it invalid.
  await page.getByLabel("Filter runs").fill("metrics.loss <<< 1");
  await page.getByRole("button", { name: "Search", exact: true }).click();
  const error = page.locator("#filter-error");
  await error.waitFor();
  assert.match(await error.innerText(), /Invalid filter/);
  assert.equal(await page.getByLabel("Filter runs").getAttribute("aria-invalid"), "true");
  await screenshot(page, "runs-filter-error");
  await page.goBack();
  await page.waitForFunction(() => document.querySelector('[data-testid="run-count"]')?.textContent?.startsWith("25 runs"));
  await page.goto(`${server.url}/experiments/${experimentId}`);
  await page.getByText("run-149", { exact: true }).waitFor();

  // Sort by a metric column on the server: lowest loss last when descending, so run-000 (loss 1) first.
  await page.getByRole("button", { name: "loss" }).click();
  await page.waitForURL(/order=metrics/);
  await page.waitForFunction(() => document.querySelector('[role="row"][data-run-id] [role="gridcell"]:nth-child(2)')?.textContent === "run-000");
  await page.getByRole("button", { name: /^loss/ }).click();
  await page.waitForFunction(() => document.querySelector('[role="row"][data-run-id] [role="gridcell"]:nth-child(2)')?.textContent === "run-149");

  // Columns: add the team tag, drop duration.
  await page.getByRole("button", { name: "Columns" }).click();
  await page.locator(".column-picker").getByLabel("team").check();
  await page.locator(".column-picker").getByLabel("Duration").uncheck();
  await page.waitForURL(/col=tags.team/);
  const headers = (await page.locator(".grid-header [role=columnheader]").allInnerTexts()).map((text) => text.replace(/\s+/g, " ").trim());
  assert.ok(headers.includes("team tag") && !headers.includes("Duration"), headers.join("|"));
  await page.getByRole("button", { name: "Columns" }).click();

  // Group by a tag: every run is loaded, and one header row per value with its count.
  await page.getByLabel("Group by").selectOption("tags.team");
  await page.getByRole("button", { name: /team = ranking \(112\)/ }).click();
  await page.getByRole("button", { name: /team = vision \(38\)/ }).waitFor();
  assert.equal(await page.getByRole("button", { name: /team = ranking/ }).getAttribute("aria-expanded"), "false");
  assert.equal(await page.getByRole("button", { name: /team = vision/ }).getAttribute("aria-expanded"), "true");
  await page.getByText("run-148", { exact: true }).waitFor();
  await screenshot(page, "runs-grouped");
  await page.getByLabel("Group by").selectOption("");

  // Select two runs and compare them.
  await page.getByLabel("Select run-149").check();
  await page.getByLabel("Select run-148").check();
  await page.getByRole("button", { name: "Compare 2 selected" }).click();
  await page.waitForURL(/\/compare\?runs=/);
  await page.getByRole("heading", { name: "Compare 2 runs" }).waitFor();
  await page.goBack();
  await page.getByText("run-149", { exact: true }).click();
  await page.waitForURL(/\/runs\//);
  await page.getByRole("heading", { name: "run-149" }).waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
