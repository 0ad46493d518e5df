// Run page: overview, description, params, metrics with history, editable tags, datasets, parent and
// child runs, and the artifact browser with previews and downloads.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { gradientPng, MLMODEL } from "../fixtures.mjs";
import { launchBrowser, newPage, screenshot, startServer } from "../harness.mjs";

let server;
let browser;
let experimentId;
let runId;
let childId;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  const api = server.api;
  experimentId = await api.createExperiment("image-classifier");
  runId = await api.createRun(experimentId, { name: "resnet-baseline", tags: [{ key: "mlflow.user", value: "ada" }] });
  const start = Date.now() - 60_000;
  const metrics = [];
  for (let step = 0; step < 50; step++) {
    metrics.push({ key: "loss", value: 2 * Math.exp(-step / 10), timestamp: start + step * 1000, step });
    metrics.push({ key: "accuracy", value: 1 - Math.exp(-step / 12), timestamp: start + step * 1000, step });
  }
  await api.logBatch(runId, {
    params: [
      { key: "optimizer", value: "adam" },
      { key: "lr", value: "0.001" },
      { key: "epochs", value: "50" },
    ],
    metrics,
    tags: [{ key: "team", value: "vision" }],
  });
  await api.post("/runs/log-inputs", {
    run_id: runId,
    datasets: [
      {
        tags: [{ key: "mlflow.data.context", value: "training" }],
        dataset: {
          name: "cifar10-train",
          digest: "a1b2c3d4",
          source_type: "local",
          source: JSON.stringify({ uri: "/data/cifar10/train" }),
          schema: JSON.stringify({ mlflow_colspec: [{ type: "tensor", name: "image" }] }),
          profile: JSON.stringify({ num_rows: 50000 }),
        },
      },
    ],
  });
  childId = await api.createRun(experimentId, { name: "fold-1", tags: [{ key: "mlflow.parentRunId", value: runId }] });
  await api.uploadArtifact(runId, "notes/readme.txt", "Trained on CIFAR-10.\nSecond line.");
  await api.uploadArtifact(runId, "config.json", JSON.stringify({ layers: 50, pretrained: true }));
  await api.uploadArtifact(runId, "params.yaml", "lr: 0.001\noptimizer: adam\n");
  await api.uploadArtifact(runId, "eval/predictions.csv", 'id,label,score\n1,cat,0.91\n2,"dog, big",0.78\n');
  await api.uploadArtifact(runId, "plots/confusion.png", gradientPng());
  await api.uploadArtifact(runId, "model/MLmodel", MLMODEL.replace("RUN_ID", runId));
  await api.finishRun(runId);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test("overview, description, parent and child runs", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/experiments/${experimentId}/runs/${runId}`);
  await page.getByRole("heading", { name: "resnet-baseline" }).waitFor();
  const overview = page.getByRole("table", { name: "Run overview" });
  assert.match(await overview.innerText(), /Run ID\s+[0-9a-f]{32}/);
  assert.match(await overview.innerText(), /Status\s+FINISHED/);
  assert.match(await overview.innerText(), /Experiment ID\s+1/);
  await page.getByRole("list", { name: "Child runs" }).getByRole("link", { name: "fold-1" }).waitFor();

  await page.getByRole("button", { name: "Edit description" }).click();
  await page.getByLabel("Description").fill("Baseline with **ResNet-50**.");
  await page.getByRole("button", { name: "Save description" }).click();
  await page.getByTestId("description").waitFor();
  assert.equal(await page.getByTestId("description").innerText(), "Baseline with **ResNet-50**.");
  const stored = (await server.api.get("/runs/get", { run_id: runId })).run.data.tags.find((tag) => tag.key === "mlflow.note.content");
  assert.equal(stored.value, "Baseline with **ResNet-50**.");
  await screenshot(page, "run-overview");

  // The child names its parent.
  await page.getByRole("link", { name: "fold-1" }).click();
  await page.getByRole("heading", { name: "fold-1" }).waitFor();
  await page.getByRole("link", { name: "resnet-baseline" }).click();
  await page.getByRole("heading", { name: "resnet-baseline" }).waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("params, metrics with history, datasets", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/experiments/${experimentId}/runs/${runId}?tab=params`);
  const params = page.getByRole("table", { name: "Parameters" });
  await params.waitFor();
  assert.deepEqual(await params.locator("tbody tr td:first-child").allInnerTexts(), ["epochs", "lr", "optimizer"]);

  await page.getByRole("tab", { name: "Metrics" }).click();
  await page.waitForURL(/tab=metrics/);
  const metrics = page.getByRole("table", { name: "Metrics" });
  await metrics.waitFor();
  const rows = await metrics.locator("tbody tr").allInnerTexts();
  assert.match(rows[0], /^accuracy\s+0\.98\d*\s+49/);
  assert.match(rows[1], /^loss\s+0\.01489\d*\s+49/);
  // One history chart a metric, all 50 points (below the sampling limit).
  await page.waitForFunction(() => document.querySelector('[data-testid="chart-loss"]')?.getAttribute("data-points") === "50");
  await page.locator('[data-testid="chart-loss"] canvas').waitFor();
  await screenshot(page, "run-metrics");

  await page.getByRole("tab", { name: "Datasets" }).click();
  const datasets = page.getByRole("table", { name: "Datasets" });
  await datasets.waitFor();
  const text = await datasets.innerText();
  assert.match(text, /cifar10-train/);
  assert.match(text, /a1b2c3d4/);
  assert.match(text, /training/);
  assert.match(text, /\/data\/cifar10\/train/);
  await page.goBack();
  await page.waitForURL(/tab=metrics/);
  await metrics.waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("tags are added, edited and deleted", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/experiments/${experimentId}/runs/${runId}?tab=tags`);
  await page.getByRole("table", { name: "Tags" }).waitFor();
  // The run page uses the registry's tag editor: Enter in the new tag's fields adds it.
  await page.getByLabel("New tag key").fill("stage");
  await page.getByLabel("New tag value").fill("candidate");
  await page.getByLabel("New tag value").press("Enter");
  await page.locator('tr[data-tag="stage"]').waitFor();
  assert.equal(await page.getByLabel("New tag key").inputValue(), "");
  await page.getByRole("button", { name: "Edit tag stage" }).click();
  await page.getByLabel("Value of stage").fill("production");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.getByLabel("Value of stage").waitFor({ state: "detached" });
  await page.locator('tr[data-tag="stage"] td:nth-child(2)', { hasText: "production" }).waitFor();
  await page.getByRole("button", { name: "Delete tag team" }).click();
  await page.locator('tr[data-tag="team"]').waitFor({ state: "detached" });
  const tags = Object.fromEntries((await server.api.get("/runs/get", { run_id: runId })).run.data.tags.map((tag) => [tag.key, tag.value]));
  assert.equal(tags.stage, "production");
  assert.equal(tags.team, undefined);
  // System tags stay out of the editor, folded below it.
  assert.equal(await page.locator('tr[data-tag^="mlflow."]').count(), 0);
  assert.equal(tags["mlflow.user"], "ada");
  await page.getByText(/^System tags \(\d+\)$/).click();
  await page.getByRole("table", { name: "System tags" }).getByText("mlflow.user").waitFor();
  await screenshot(page, "run-tags");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("artifact browser previews text, JSON, YAML, CSV, images and MLmodel, and downloads", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/experiments/${experimentId}/runs/${runId}?tab=artifacts`);
  const tree = page.getByRole("navigation", { name: "Artifacts" });
  await tree.getByRole("button", { name: /config\.json/ }).click();
  await page.waitForURL(/path=config\.json/);
  const preview = page.getByTestId("artifact-preview");
  await page.locator('[data-testid="artifact-preview"][data-kind="json"] pre').waitFor();
  assert.deepEqual(JSON.parse(await preview.locator("pre").textContent()), { layers: 50, pretrained: true });

  await tree.getByRole("button", { name: /params\.yaml/ }).click();
  await page.locator('[data-testid="artifact-preview"][data-kind="yaml"] pre').waitFor();
  assert.equal(await preview.locator("pre").textContent(), "lr: 0.001\noptimizer: adam\n");

  await tree.getByRole("button", { name: /notes/ }).click();
  await tree.getByRole("button", { name: /readme\.txt/ }).click();
  await page.locator('[data-testid="artifact-preview"][data-kind="text"] pre').waitFor();
  assert.equal(await preview.locator("pre").textContent(), "Trained on CIFAR-10.\nSecond line.");

  await tree.getByRole("button", { name: /eval/ }).click();
  await tree.getByRole("button", { name: /predictions\.csv/ }).click();
  const table = page.getByRole("table", { name: "Table preview" });
  await table.waitFor();
  assert.deepEqual(await table.locator("thead th").allInnerTexts(), ["id", "label", "score"]);
  assert.deepEqual(await table.locator("tbody tr:nth-child(2) td").allInnerTexts(), ["2", "dog, big", "0.78"]);

  await tree.getByRole("button", { name: /plots/ }).click();
  await tree.getByRole("button", { name: /confusion\.png/ }).click();
  const image = preview.locator("img");
  await image.waitFor();
  await page.waitForFunction(() => document.querySelector('[data-testid="artifact-preview"] img')?.naturalWidth === 96);
  await screenshot(page, "run-artifacts-image");

  await tree.getByRole("button", { name: /model/ }).click();
  await tree.getByRole("button", { name: /MLmodel/ }).click();
  await page.getByTestId("mlmodel-flavors").waitFor();
  assert.equal(await page.getByTestId("mlmodel-flavors").innerText(), "python_function, sklearn");
  await screenshot(page, "run-artifacts-mlmodel");

  // The download link serves the file as stored; a deep link reopens the same preview.
  const href = await preview.getByRole("link", { name: "Download" }).getAttribute("href");
  const downloaded = await (await fetch(`${server.url}${href}`)).text();
  assert.equal(downloaded, MLMODEL.replace("RUN_ID", runId));
  await page.reload();
  await page.getByTestId("mlmodel-flavors").waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
