// Model registry pages: model list and search, model page (description, stage transitions, aliases,
// tags), version page (source run link, tags, aliases, stage), deep links and the back button.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, newPage, screenshot, startServer } from "../harness.mjs";
import { createModel, createPrompt } from "../traceData.mjs";

let server;
let browser;
let experimentId;
let fraudVersions;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  experimentId = await server.api.createExperiment("training");
  fraudVersions = await createModel(server.api, "fraud-classifier", { experimentId, versions: 3, description: "Flags card fraud." });
  await createModel(server.api, "churn-model", { experimentId, versions: 1 });
  await createPrompt(server.api, "support-prompt", ["Answer {{question}}"]);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const model = async (name) => (await server.api.get("/registered-models/get", { name })).registered_model;
const version = async (name, v) => (await server.api.get("/model-versions/get", { name, version: v })).model_version;
/**
 * Waits for a saved description. Not `getByText`: the open editor's textarea already holds the new text
 * (under load the check then ran before the server stored it); the editor closes when the save answered.
 */
async function savedDescription(page, text) {
  await page.getByLabel("Description").waitFor({ state: "detached" });
  await page.getByTestId("description").filter({ hasText: text }).waitFor();
}
const rowNames = (page, label) => page.locator(`table[aria-label="${label}"] tbody tr td:first-child`).allInnerTexts();

test("model list searches by name, keeps prompts out and deep-links the search", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/models`);
  await page.getByRole("link", { name: "fraud-classifier" }).waitFor();
  assert.deepEqual(await rowNames(page, "Models"), ["churn-model", "fraud-classifier"]);
  assert.equal(await page.getByRole("link", { name: "Version 3" }).getAttribute("href"), "/models/fraud-classifier/versions/3");
  await screenshot(page, "models");

  // Keyboard: the search box is reachable by Tab from the nav, Enter submits it.
  await page.getByLabel("Search models by name").focus();
  await page.keyboard.type("FRAUD");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/models\?q=FRAUD$/);
  await page.waitForFunction(() => document.querySelectorAll('table[aria-label="Models"] tbody tr').length === 1);
  assert.deepEqual(await rowNames(page, "Models"), ["fraud-classifier"]);

  // Back undoes the search; the deep link opens it again.
  await page.goBack();
  await page.waitForFunction(() => document.querySelectorAll('table[aria-label="Models"] tbody tr').length === 2);
  await page.goto(`${server.url}/models?q=nothing-like-this`);
  await page.getByText("No models match").waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("model page edits description, transitions stages, sets aliases and tags", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/models`);
  await page.getByRole("link", { name: "fraud-classifier" }).click();
  await page.waitForURL(/\/models\/fraud-classifier$/);
  await page.getByRole("heading", { name: "fraud-classifier" }).waitFor();
  // The heading comes from the URL at once; the versions table only when the model has loaded (reading it
  // right after the heading found no rows when the server was slow: the flake of this journey).
  await page.locator('table[aria-label="Versions"] tbody tr').first().waitFor();
  assert.deepEqual(await rowNames(page, "Versions"), ["Version 3", "Version 2", "Version 1"]);
  await page.getByText("Flags card fraud.").waitFor();

  // Description.
  await page.getByRole("button", { name: "Edit description" }).click();
  await page.getByLabel("Description").fill("Flags card fraud in real time.");
  await page.getByRole("button", { name: "Save description" }).click();
  await savedDescription(page, "Flags card fraud in real time.");
  assert.equal((await model("fraud-classifier")).description, "Flags card fraud in real time.");

  // Stage transition from the versions table.
  await page.getByLabel("Stage of version 2").selectOption("Production");
  await page.waitForFunction(() => document.querySelector('select[aria-label="Stage of version 2"]')?.value === "Production");
  assert.equal((await version("fraud-classifier", "2")).current_stage, "Production");
  // The select is controlled: it shows the new stage only once the page has reloaded the model after the
  // transition answered, so waiting for it (not a fixed number of polls) orders the API check after it.
  await page.getByLabel("Stage of version 3").selectOption("Staging");
  await page.waitForFunction(() => document.querySelector('select[aria-label="Stage of version 3"]')?.value === "Staging");
  assert.equal((await version("fraud-classifier", "3")).current_stage, "Staging");
  await screenshot(page, "model");

  // Aliases tab (a deep link), set one and move it, then remove it.
  await page.getByRole("tab", { name: "Aliases" }).click();
  await page.waitForURL(/tab=aliases/);
  await page.getByLabel("Alias name").fill("champion");
  await page.getByLabel("Alias version").selectOption("2");
  await page.getByRole("button", { name: "Set alias" }).click();
  await page.getByText("@champion → v2").waitFor();
  assert.deepEqual((await model("fraud-classifier")).aliases, [{ alias: "champion", version: "2" }]);
  await page.getByLabel("Alias name").fill("challenger");
  await page.getByLabel("Alias version").selectOption("3");
  await page.getByRole("button", { name: "Set alias" }).click();
  await page.getByText("@challenger → v3").waitFor();
  await page.getByRole("button", { name: "Remove alias champion" }).click();
  await page.getByText("@champion → v2").waitFor({ state: "detached" });
  assert.deepEqual((await model("fraud-classifier")).aliases, [{ alias: "challenger", version: "3" }]);

  // An invalid alias shows MLflow's error inline.
  await page.getByLabel("Alias name").fill("v7");
  await page.getByRole("button", { name: "Set alias" }).click();
  await page.getByRole("alert").waitFor();
  assert.match(await page.getByRole("alert").innerText(), /INVALID_PARAMETER_VALUE/);

  // Tags tab: add, edit, delete.
  await page.getByRole("tab", { name: "Tags" }).click();
  await page.waitForURL(/tab=tags/);
  await page.getByLabel("New tag key").fill("team");
  await page.getByLabel("New tag value").fill("risk");
  await page.getByRole("button", { name: "Add tag" }).click();
  await page.locator('tr[data-tag="team"]').waitFor();
  await page.getByRole("button", { name: "Edit tag team" }).click();
  await page.getByLabel("Value of team").fill("fraud-ops");
  await page.getByLabel("Value of team").press("Enter");
  // The cell of the open editor already names "fraud-ops" (a text field's value is part of its cell's
  // accessible name), so wait for the editor to close, which happens when the server has stored it.
  await page.getByLabel("Value of team").waitFor({ state: "detached" });
  await page.getByRole("cell", { name: "fraud-ops", exact: true }).waitFor();
  assert.deepEqual((await model("fraud-classifier")).tags, [{ key: "team", value: "fraud-ops" }]);
  await page.getByRole("button", { name: "Delete tag team" }).click();
  await page.getByRole("button", { name: "Delete tag team" }).waitFor({ state: "detached" });
  assert.equal((await model("fraud-classifier")).tags, undefined);

  // Back walks the tabs.
  await page.goBack();
  await page.waitForURL(/tab=aliases/);
  await page.getByText("@challenger → v3").waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("version page links its source run and edits tags, aliases, stage and description", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/models/fraud-classifier`);
  // The versions table links each source run by id; /runs/<id> finds its experiment and replaces itself.
  await page.getByRole("link", { name: fraudVersions[1].runId }).click();
  await page.waitForURL(new RegExp(`/experiments/${experimentId}/runs/${fraudVersions[1].runId}$`));
  await page.getByRole("heading", { name: "train-fraud-classifier-2" }).waitFor();
  await page.goBack();
  await page.waitForURL(/\/models\/fraud-classifier$/);
  await page.getByRole("link", { name: "Version 1" }).click();
  await page.waitForURL(/\/models\/fraud-classifier\/versions\/1$/);
  await page.getByRole("heading", { name: "fraud-classifier · Version 1" }).waitFor();
  const runLink = page.getByRole("link", { name: "train-fraud-classifier-1" });
  assert.equal(await runLink.getAttribute("href"), `/experiments/${experimentId}/runs/${fraudVersions[0].runId}`);
  await page.getByText(`runs:/${fraudVersions[0].runId}/model`).waitFor();

  await page.getByLabel("New tag key").fill("validated");
  await page.getByLabel("New tag value").fill("yes");
  await page.getByRole("button", { name: "Add tag" }).click();
  await page.locator('tr[data-tag="validated"]').waitFor();
  assert.deepEqual((await version("fraud-classifier", "1")).tags, [{ key: "validated", value: "yes" }]);

  await page.getByLabel("Alias name").fill("baseline");
  await page.getByRole("button", { name: "Set alias" }).click();
  await page.getByText("@baseline → v1").waitFor();
  assert.deepEqual((await version("fraud-classifier", "1")).aliases, ["baseline"]);

  await page.getByRole("button", { name: "Edit description" }).click();
  await page.getByLabel("Description").fill("First model trained on 2025 data.");
  await page.getByRole("button", { name: "Save description" }).click();
  await savedDescription(page, "First model trained on 2025 data.");
  assert.equal((await version("fraud-classifier", "1")).description, "First model trained on 2025 data.");

  // Transition to Production archiving the version that is there (version 2 from the previous test).
  await page.getByLabel("Archive other versions in that stage").check();
  await page.getByLabel("Stage of version 1").selectOption("Production");
  // The controlled select shows the stage once the page reloaded after the transition answered.
  await page.waitForFunction(() => document.querySelector('select[aria-label="Stage of version 1"]')?.value === "Production");
  assert.equal((await version("fraud-classifier", "1")).current_stage, "Production");
  assert.equal((await version("fraud-classifier", "2")).current_stage, "Archived");
  await screenshot(page, "model-version");

  // The run link opens the run page; back returns here.
  await runLink.click();
  await page.waitForURL(new RegExp(`/runs/${fraudVersions[0].runId}`));
  await page.goBack();
  await page.getByRole("heading", { name: "fraud-classifier · Version 1" }).waitFor();

  // A missing version is an error, not a blank page.
  await page.goto(`${server.url}/models/fraud-classifier/versions/99`);
  await page.getByRole("alert").waitFor();
  assert.match(await page.getByRole("alert").innerText(), /RESOURCE_DOES_NOT_EXIST/);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
