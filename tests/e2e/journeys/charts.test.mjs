// Metric charts (server-side sampling, several runs overlaid, x axes, smoothing, log scale, zoom) and the
// compare view (params and metrics side by side, parallel coordinates, scatter).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, newPage, screenshot, startServer } from "../harness.mjs";

let server;
let browser;
let experimentId;
const runIds = [];
const STEPS = 5000;
let startTime;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  experimentId = await server.api.createExperiment("long-training");
  const start = Date.now() - STEPS * 100;
  startTime = start;
  for (const [index, lr] of [0.1, 0.03, 0.01].entries()) {
    const runId = await server.api.createRun(experimentId, { name: `lr-${lr}`, start_time: start });
    runIds.push(runId);
    for (let first = 0; first < STEPS; first += 1000) {
      const metrics = [];
      for (let step = first; step < first + 1000; step++) {
        const noise = Math.sin(step * 12.9898 + index) * 0.05;
        metrics.push({ key: "loss", value: (index + 1) * Math.exp(-step / 1500) + 0.1 + noise, timestamp: start + step * 100, step });
      }
      await server.api.logBatch(runId, { metrics });
    }
    await server.api.logBatch(runId, {
      params: [
        { key: "lr", value: String(lr) },
        { key: "layers", value: String(12 + index * 12) },
        { key: "optimizer", value: index === 2 ? "sgd" : "adam" },
      ],
      metrics: [{ key: "accuracy", value: 0.8 + index * 0.05, timestamp: Date.now(), step: STEPS }],
    });
    await server.api.finishRun(runId);
  }
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test("a long metric of three runs is sampled by the server and drawn overlaid", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/metric?runs=${runIds.join(",")}&key=loss`);
  const chart = page.getByTestId("chart-loss");
  await chart.locator("canvas").waitFor();
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="chart-loss"]')?.getAttribute("data-points")) > 0);
  const points = Number(await chart.getAttribute("data-points"));
  // 1000 samples a run out of 5000 points, both ends kept.
  assert.ok(points <= 3000 && points >= 2900, `points ${points}`);
  // The chart starts with the run ids from the URL; the legend names the runs once they have loaded.
  await page.waitForFunction(() =>
    [...document.querySelectorAll('[data-testid="chart-loss"] .u-legend .u-series th')].map((cell) => cell.textContent.trim()).join("|") === "step|lr-0.1|lr-0.03|lr-0.01",
  );
  await screenshot(page, "metric-chart");

  // Log scale, wall time and smoothing are in the URL.
  await page.getByLabel("Log scale").check();
  await page.waitForURL(/log=1/);
  await page.getByLabel("X axis").selectOption("wall");
  await page.waitForURL(/x=wall/);
  await chart.locator(".u-axis").first().waitFor();
  await page.getByLabel("X axis").selectOption("relative");
  await page.waitForURL(/x=relative/);
  await page.getByLabel("Smoothing").fill("0.9");
  await page.waitForURL(/smooth=0.9/);
  await screenshot(page, "metric-chart-smoothed-log");
  await page.getByLabel("X axis").selectOption("step");
  await page.waitForURL((url) => !url.search.includes("x="));

  // Dragging across the plot zooms in and fetches that step range again in detail.
  await chart.locator("canvas").waitFor();
  const over = chart.locator(".u-over");
  const box = await over.boundingBox();
  await page.mouse.move(box.x + box.width * 0.1, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => document.querySelector('[data-testid="chart-loss"]')?.getAttribute("data-zoomed") === "true");
  const range = await chart.getByText(/^Steps \d+–\d+$/).innerText();
  const [low, high] = range.match(/\d+/g).map(Number);
  assert.ok(low >= 300 && low <= 700 && high > low && high <= 1300, range);
  // Fewer than 1000 steps in range: every point of it comes back.
  await page.waitForFunction(
    (expected) => Number(document.querySelector('[data-testid="chart-loss"]')?.getAttribute("data-points")) === expected,
    3 * (high - low + 1),
  );
  await chart.getByRole("button", { name: "Reset zoom" }).click();
  await page.waitForFunction(() => document.querySelector('[data-testid="chart-loss"]')?.getAttribute("data-zoomed") === "false");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

/** Drags across the chart's plot from `from` to `to` (fractions of its width). */
async function dragAcross(page, chart, from, to) {
  const box = await chart.locator(".u-over").boundingBox();
  await page.mouse.move(box.x + box.width * from, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * to, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
}
const chartNumber = (page, name) => page.evaluate((attribute) => Number(document.querySelector('[data-testid="chart-loss"]')?.getAttribute(attribute)), name);

for (const axis of ["wall", "relative"]) {
  test(`zooming on the ${axis}-time axis fetches the steps drawn in the window in detail`, async () => {
    const page = await newPage(browser);
    await page.goto(`${server.url}/metric?runs=${runIds.join(",")}&key=loss&x=${axis}`);
    const chart = page.getByTestId("chart-loss");
    await chart.locator("canvas").waitFor();
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="chart-loss"]')?.getAttribute("data-visible-points")) > 0);
    const sampled = await chartNumber(page, "data-points");
    assert.ok(sampled <= 3000 && sampled >= 2900, `points ${sampled}`);
    assert.equal(await chartNumber(page, "data-visible-points"), sampled);

    // A tenth of the width: about a tenth of the 1,000 samples a run are drawn there before the zoom.
    await dragAcross(page, chart, 0.1, 0.2);
    await page.waitForFunction(() => document.querySelector('[data-testid="chart-loss"]')?.getAttribute("data-zoomed") === "true");
    const before = await chartNumber(page, "data-window-points-before");
    assert.ok(before >= 200 && before <= 400, `points in the window before the zoom: ${before}`);
    const range = await chart.getByText(/^Zoomed to steps \d+–\d+$/).innerText();
    const [low, high] = range.match(/\d+/g).map(Number);
    // Steps and time run together here (a step every 100 ms), so the window is about steps 500–1000.
    assert.ok(low >= 300 && low <= 700 && high > low + 300 && high <= 1300, range);
    // Under 1,000 steps: every point of the range comes back, and all of them are drawn.
    await page.waitForFunction(
      (expected) => Number(document.querySelector('[data-testid="chart-loss"]')?.getAttribute("data-points")) === expected,
      3 * (high - low + 1),
    );
    await page.waitForFunction(
      (expected) => Number(document.querySelector('[data-testid="chart-loss"]')?.getAttribute("data-visible-points")) === expected,
      3 * (high - low + 1),
    );
    const after = await chartNumber(page, "data-visible-points");
    assert.ok(after > 3 * before, `points in the window: ${before} before the zoom, ${after} after`);
    // Relative time still counts from each run's first point, which the zoomed fetch left out.
    const [xMin] = (await chart.getAttribute("data-x-range")).split(",").map(Number);
    const expectedMin = axis === "relative" ? low / 10 : (startTime + low * 100) / 1000;
    assert.ok(Math.abs(xMin - expectedMin) < 1, `x axis starts at ${xMin}, expected ${expectedMin}`);
    if (axis === "wall") await screenshot(page, "metric-chart-time-zoom");

    await chart.getByRole("button", { name: "Reset zoom" }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid="chart-loss"]')?.getAttribute("data-zoomed") === "false");
    await page.waitForFunction((expected) => Number(document.querySelector('[data-testid="chart-loss"]')?.getAttribute("data-points")) === expected, sampled);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });
}

test("compare view: table, charts, parallel coordinates and scatter", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/experiments/${experimentId}`);
  for (const name of ["lr-0.1", "lr-0.03", "lr-0.01"]) await page.getByLabel(`Select ${name}`).check();
  await page.getByRole("button", { name: "Compare 3 selected" }).click();
  await page.getByRole("heading", { name: "Compare 3 runs" }).waitFor();
  const table = page.getByRole("table", { name: "Params and metrics of the compared runs" });
  await table.waitFor();
  const layers = await table.locator("tr", { has: page.getByRole("rowheader", { name: /^layers/ }) }).locator("td").allInnerTexts();
  assert.equal(layers.length, 3);
  assert.deepEqual([...layers].sort(), ["12", "24", "36"]);
  assert.equal(await table.locator("tr.differs").count(), 5);
  await screenshot(page, "compare-table");

  await page.getByRole("tab", { name: "Metric charts" }).click();
  await page.waitForURL(/tab=charts/);
  await page.locator('[data-testid="chart-loss"] canvas').waitFor();
  await page.locator('[data-testid="chart-accuracy"] canvas').waitFor();

  await page.getByRole("tab", { name: "Parallel coordinates" }).click();
  const parallel = page.getByTestId("parallel-coordinates");
  await parallel.waitFor();
  assert.equal(await parallel.locator("polyline").count(), 3);
  await screenshot(page, "compare-parallel-coordinates");

  await page.getByRole("tab", { name: "Scatter" }).click();
  await page.getByLabel("X axis").selectOption("params.lr");
  await page.getByLabel("Y axis").selectOption("metrics.accuracy");
  const scatter = page.getByTestId("scatter-plot");
  await scatter.waitFor();
  assert.equal(await scatter.locator("circle").count(), 3);
  // The run with the largest lr sits furthest right, the best accuracy highest.
  const circles = await scatter.locator("circle").evaluateAll((nodes) => nodes.map((node) => ({ x: Number(node.getAttribute("cx")), y: Number(node.getAttribute("cy")), title: node.textContent })));
  const byX = [...circles].sort((a, b) => a.x - b.x).map((circle) => circle.title.split(":")[0]);
  assert.deepEqual(byX, ["lr-0.01", "lr-0.03", "lr-0.1"]);
  const byY = [...circles].sort((a, b) => a.y - b.y).map((circle) => circle.title.split(":")[0]);
  assert.deepEqual(byY, ["lr-0.01", "lr-0.03", "lr-0.1"]);
  await screenshot(page, "compare-scatter");
  await page.goBack();
  await page.waitForURL(/tab=parallel/);
  await parallel.waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
