// Experiments page: list, search, create, rename, delete, restore, and the way into an experiment's runs.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, newPage, screenshot, startServer } from "../harness.mjs";

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  await server.api.createExperiment("fraud-detection");
  await server.api.createExperiment("churn-model");
  await server.api.createExperiment("churn-model-v2");
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const names = (page) => page.locator('table[aria-label="Experiments"] tbody tr td:nth-child(2)').allInnerTexts();

test("lists, searches, creates, renames, deletes and restores experiments", async () => {
  const page = await newPage(browser);
  page.on("dialog", (dialog) => dialog.accept());
  await page.goto(`${server.url}/experiments`);
  await page.getByRole("link", { name: "fraud-detection" }).waitFor();
  assert.deepEqual((await names(page)).sort(), ["Default", "churn-model", "churn-model-v2", "fraud-detection"]);
  await screenshot(page, "experiments");

  // Search goes to the URL, so it is a deep link and back undoes it.
  await page.getByLabel("Search experiments by name").fill("churn");
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.waitForURL(/q=churn/);
  await page.waitForFunction(() => document.querySelectorAll('table[aria-label="Experiments"] tbody tr').length === 2);
  assert.deepEqual((await names(page)).sort(), ["churn-model", "churn-model-v2"]);
  await page.goBack();
  await page.getByRole("link", { name: "fraud-detection" }).waitFor();

  // Create: the dialog refuses a duplicate name inline, then creates and opens the new experiment.
  await page.getByRole("button", { name: "Create experiment" }).click();
  const dialog = page.getByRole("dialog", { name: "Create experiment" });
  await dialog.getByLabel("Name").fill("churn-model");
  await dialog.getByRole("button", { name: "Create" }).click();
  await dialog.getByRole("alert").waitFor();
  assert.match(await dialog.getByRole("alert").innerText(), /RESOURCE_ALREADY_EXISTS/);
  await dialog.getByLabel("Name").fill("ranking");
  await dialog.getByRole("button", { name: "Create" }).click();
  await page.waitForURL(/\/experiments\/\d+$/);
  await page.getByRole("heading", { name: "ranking" }).waitFor();
  const created = (await server.api.post("/experiments/search", { filter: "name = 'ranking'", max_results: 10 })).experiments;
  assert.equal(created.length, 1);

  // Rename.
  await page.goto(`${server.url}/experiments`);
  await page.getByRole("button", { name: "Rename ranking" }).click();
  const rename = page.getByRole("dialog", { name: "Rename experiment" });
  await rename.getByLabel("New name").fill("ranking-v2");
  await rename.getByRole("button", { name: "Rename" }).click();
  await page.getByRole("link", { name: "ranking-v2" }).waitFor();
  assert.equal((await server.api.get("/experiments/get", { experiment_id: created[0].experiment_id })).experiment.name, "ranking-v2");

  // Delete, then find it among the deleted ones and restore it.
  await page.getByRole("button", { name: "Delete ranking-v2" }).click();
  await page.getByRole("link", { name: "ranking-v2" }).waitFor({ state: "detached" });
  assert.equal((await server.api.get("/experiments/get", { experiment_id: created[0].experiment_id })).experiment.lifecycle_stage, "deleted");
  await page.getByLabel("Show").selectOption("DELETED_ONLY");
  await page.getByRole("button", { name: "Restore ranking-v2" }).click();
  await page.getByRole("button", { name: "Restore ranking-v2" }).waitFor({ state: "detached" });
  assert.equal((await server.api.get("/experiments/get", { experiment_id: created[0].experiment_id })).experiment.lifecycle_stage, "active");

  // Select two experiments and open their runs together.
  await page.getByLabel("Show").selectOption("ACTIVE_ONLY");
  await page.getByLabel("Select churn-model", { exact: true }).check();
  await page.getByLabel("Select churn-model-v2").check();
  await page.getByRole("button", { name: /Compare runs of 2 selected/ }).click();
  await page.waitForURL(/\/experiments\/\d+,\d+$/);
  await page.getByRole("heading", { name: "churn-model, churn-model-v2" }).waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
