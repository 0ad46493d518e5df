// Creating in the registry from the UI: a registered model (name, description, tags), a model version from
// a run's model folder ("Register model" in the artifact browser), a prompt (text template) and a new chat
// version of it. The prompt is read back with MLflow's own Python client (`mlflow.genai.load_prompt`), so
// the UI writes prompts as `register_prompt` does. Every form is walked with the keyboard.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { launchBrowser, lowContrast, newPage, ROOT, screenshot, startServer } from "../harness.mjs";
import { MLMODEL } from "../fixtures.mjs";

let server;
let browser;
let experimentId;
let runId;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  experimentId = await server.api.createExperiment("fraud-training");
  runId = await server.api.createRun(experimentId, { name: "xgb-v3" });
  await server.api.uploadArtifact(runId, "model/MLmodel", MLMODEL.replace("RUN_ID", runId));
  await server.api.uploadArtifact(runId, "model/model.pkl", "pickle bytes");
  await server.api.uploadArtifact(runId, "notes.txt", "not a model");
  await server.api.finishRun(runId);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const model = async (name) => (await server.api.get("/registered-models/get", { name })).registered_model;
const version = async (name, v) => (await server.api.get("/model-versions/get", { name, version: v })).model_version;
const tagMap = (tags = []) => Object.fromEntries(tags.map((tag) => [tag.key, tag.value]));

/** What the focused element is called: its aria-label, its label's text, or its own text. */
const focusedName = (page) =>
  page.evaluate(() => {
    const element = document.activeElement;
    if (!element || element === document.body) return "";
    const label = element.getAttribute("aria-label") || element.labels?.[0]?.innerText || element.innerText || element.getAttribute("placeholder") || "";
    return label.trim().split("\n")[0].trim();
  });

/** Presses Tab `count` times and returns the name of each element reached. */
async function tabWalk(page, count) {
  const names = [];
  for (let index = 0; index < count; index++) {
    await page.keyboard.press("Tab");
    names.push(await focusedName(page));
  }
  return names;
}

/** Presses Tab from the top of the page until `name` has focus; fails after `limit` presses. */
async function tabTo(page, name, limit = 60) {
  await page.locator("body").focus();
  for (let press = 1; press <= limit; press++) {
    await page.keyboard.press("Tab");
    if ((await focusedName(page)) === name) return press;
  }
  throw new Error(`${name} not reached by Tab in ${limit} presses`);
}

/** Every field of the open dialog has a label (a <label>, aria-label or aria-labelledby). */
const unlabelledFields = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll('[role="dialog"] input, [role="dialog"] select, [role="dialog"] textarea, [role="dialog"] button')]
      .filter((element) => !(element.getAttribute("aria-label") || element.getAttribute("aria-labelledby") || element.labels?.length || (element.tagName === "BUTTON" && element.innerText.trim())))
      .map((element) => element.outerHTML.slice(0, 120)),
  );

/** Runs Python with MLflow's client against the server and returns what the snippet prints (JSON). */
function python(snippet) {
  const interpreter = [join(ROOT, ".venv", "bin", "python"), "/usr/bin/python3"].find((path) => existsSync(path));
  const output = execFileSync(interpreter, ["-c", `import json, mlflow\nmlflow.set_tracking_uri(${JSON.stringify(server.url)})\n${snippet}`], {
    encoding: "utf8",
    env: { ...process.env, MLFLOW_TRACKING_URI: server.url, PYTHONWARNINGS: "ignore" },
    timeout: 120_000,
  });
  return JSON.parse(output.trim().split("\n").pop());
}

test("create a registered model with a description and tags, by keyboard", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/models`);
  await page.getByText("No models yet.").waitFor();
  await tabTo(page, "Create model");
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: "Create model" });
  await dialog.waitFor();
  // Focus starts in the first field; Tab walks every field in reading order and stays inside the dialog.
  assert.equal(await focusedName(page), "Name");
  await page.keyboard.type("fraud-detector");
  assert.deepEqual(await tabWalk(page, 6), ["Description", "Add a tag", "Cancel", "Create model", "Name", "Description"]);
  await page.keyboard.type("Scores card payments for fraud.");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter"); // Add a tag
  await page.keyboard.press("Enter"); // and another (focus stays on the button)
  await dialog.getByLabel("Tag 1 key").fill("team");
  await dialog.getByLabel("Tag 1 value").fill("risk");
  await dialog.getByLabel("Tag 2 key").fill("tier");
  await dialog.getByLabel("Tag 2 value").fill("gold");
  assert.deepEqual(await unlabelledFields(page), []);
  assert.deepEqual(await lowContrast(page, '[role="dialog"]'), []);
  await screenshot(page, "model-create");
  await dialog.getByLabel("Tag 2 value").press("Enter");
  await page.waitForURL(/\/models\/fraud-detector$/);
  await page.getByRole("heading", { name: "fraud-detector" }).waitFor();
  await page.getByText("Scores card payments for fraud.").waitFor();
  const stored = await model("fraud-detector");
  assert.equal(stored.description, "Scores card payments for fraud.");
  assert.deepEqual(tagMap(stored.tags), { team: "risk", tier: "gold" });

  // A second model of the same name answers MLflow's error inside the dialog.
  await page.goto(`${server.url}/models`);
  await page.getByRole("button", { name: "Create model" }).click();
  await page.getByRole("dialog", { name: "Create model" }).getByLabel("Name", { exact: true }).fill("fraud-detector");
  await page.getByRole("dialog", { name: "Create model" }).getByRole("button", { name: "Create model" }).click();
  await page.getByRole("dialog").getByRole("alert").waitFor();
  assert.match(await page.getByRole("dialog").getByRole("alert").innerText(), /RESOURCE_ALREADY_EXISTS/);
  // Escape closes it and gives focus back to the button that opened it.
  await page.keyboard.press("Escape");
  await page.getByRole("dialog").waitFor({ state: "detached" });
  assert.equal(await focusedName(page), "Create model");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("register a run's model folder as a model version from the artifact browser", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/experiments/${experimentId}/runs/${runId}?tab=artifacts`);
  const tree = page.getByRole("navigation", { name: "Artifacts" });
  // A folder without an MLmodel file offers no registration; the model folder does.
  await tree.getByRole("button", { name: /notes\.txt/ }).click();
  await page.locator('[data-testid="artifact-preview"][data-kind="text"]').waitFor();
  await tree.getByRole("button", { name: /📁 model/ }).click();
  await page.waitForURL(/path=model$/);
  await page.getByTestId("mlmodel-flavors").waitFor();
  assert.equal(await page.getByTestId("mlmodel-flavors").innerText(), "python_function, sklearn");
  const register = page.getByRole("button", { name: "Register model" });
  await tabTo(page, "Register model");
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: "Register model" });
  await dialog.waitFor();
  await dialog.getByText(`runs:/${runId}/model`).waitFor();
  // The first version goes to a new model, typed by keyboard.
  assert.equal(await focusedName(page), "Model");
  assert.deepEqual(await tabWalk(page, 3), ["Model name", "Cancel", "Model"]);
  await dialog.getByLabel("Model name").fill("fraud-xgb");
  assert.deepEqual(await unlabelledFields(page), []);
  assert.deepEqual(await lowContrast(page, '[role="dialog"]'), []);
  await screenshot(page, "register-model");
  await dialog.getByLabel("Model name").press("Enter");
  await page.getByRole("link", { name: "fraud-xgb version 1" }).waitFor();
  const first = await version("fraud-xgb", "1");
  assert.equal(first.source, `runs:/${runId}/model`);
  assert.equal(first.run_id, runId);

  // The second goes to an existing model, chosen from the list.
  await register.click();
  await dialog.waitFor();
  await page.waitForFunction(() => [...document.querySelectorAll('[role="dialog"] select option')].some((option) => option.textContent === "fraud-detector"));
  await dialog.getByRole("combobox").selectOption("fraud-detector");
  await dialog.getByRole("button", { name: "Register" }).click();
  await page.getByRole("link", { name: "fraud-detector version 1" }).waitFor();
  assert.equal((await version("fraud-detector", "1")).run_id, runId);

  // The version page links back to the run.
  await page.getByRole("link", { name: "fraud-detector version 1" }).click();
  await page.getByRole("heading", { name: "fraud-detector · Version 1" }).waitFor();
  assert.equal(await page.getByRole("link", { name: "xgb-v3" }).getAttribute("href"), `/experiments/${experimentId}/runs/${runId}`);
  await page.getByText(`runs:/${runId}/model`).waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("create a prompt and a chat version of it, read back by mlflow.genai.load_prompt", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/prompts`);
  await page.getByText("No prompts yet.").waitFor();
  await tabTo(page, "Create prompt");
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: "Create prompt" });
  await dialog.waitFor();
  assert.equal(await focusedName(page), "Name");
  // Tab order: name, the format (one radio group: one stop), template, commit message, tags, then Cancel
  // (Create is disabled while the form is empty) and back to the name.
  assert.deepEqual(await tabWalk(page, 6), ["Text", "Template", "Commit message", "Add a tag", "Cancel", "Name"]);

  // MLflow's name rule is checked before anything is written.
  await dialog.getByLabel("Name", { exact: true }).fill("fraud triage");
  await dialog.getByLabel("Template").fill("Classify {{transaction}} as fraud or not.");
  await dialog.getByRole("button", { name: "Create prompt" }).click();
  await dialog.getByRole("alert").waitFor();
  assert.match(await dialog.getByRole("alert").innerText(), /INVALID_PARAMETER_VALUE: Prompt name can only contain/);

  await dialog.getByLabel("Name", { exact: true }).fill("fraud-triage");
  await dialog.getByLabel("Template").fill("Classify {{transaction}} as fraud or not.\nAnswer in {{language}}.");
  await dialog.getByLabel("Commit message").fill("First triage prompt");
  await dialog.getByRole("button", { name: "Add a tag" }).click();
  await dialog.getByLabel("Tag 1 key").fill("owner");
  await dialog.getByLabel("Tag 1 value").fill("risk-team");
  assert.deepEqual(await unlabelledFields(page), []);
  assert.deepEqual(await lowContrast(page, '[role="dialog"]'), []);
  await screenshot(page, "prompt-create");
  await dialog.getByRole("button", { name: "Create prompt" }).click();
  await page.waitForURL(/\/prompts\/fraud-triage\?version=1$/);
  await page.getByRole("heading", { name: "Version 1" }).waitFor();
  assert.equal(await page.getByLabel("Template").innerText(), "Classify {{transaction}} as fraud or not.\nAnswer in {{language}}.");
  await page.getByText("First triage prompt").waitFor();

  // The wire form is MLflow's: the prompt tag on the model, the template and its type on the version.
  const stored = await model("fraud-triage");
  assert.equal(stored.description, "First triage prompt");
  assert.deepEqual(tagMap(stored.tags), { "mlflow.prompt.is_prompt": "true", owner: "risk-team" });
  const v1 = await version("fraud-triage", "1");
  assert.equal(v1.source, "dummy-source");
  assert.equal(v1.description, "First triage prompt");
  assert.deepEqual(tagMap(v1.tags), {
    owner: "risk-team",
    "mlflow.prompt.is_prompt": "true",
    _mlflow_prompt_type: "text",
    "mlflow.prompt.text": "Classify {{transaction}} as fraud or not.\nAnswer in {{language}}.",
  });

  // New version: chat messages, started from the shown version's template.
  await tabTo(page, "New version");
  await page.keyboard.press("Enter");
  const next = page.getByRole("dialog", { name: "New version of fraud-triage" });
  await next.waitFor();
  assert.equal(await next.getByLabel("Template").inputValue(), "Classify {{transaction}} as fraud or not.\nAnswer in {{language}}.");
  await next.getByLabel("Chat messages", { exact: true }).check();
  await next.getByLabel("Role of message 1").selectOption("system");
  await next.getByLabel("Content of message 1").fill("You triage card transactions. Answer in {{language}}.");
  await next.getByLabel("Content of message 2").fill("Is {{transaction}} fraud? Café prices count.");
  await next.getByRole("button", { name: "Add a message" }).click();
  await next.getByLabel("Role of message 3").selectOption("assistant");
  await next.getByLabel("Content of message 3").fill("Answer: ");
  await next.getByRole("button", { name: "Remove message 3" }).click();
  await next.getByLabel("Commit message").fill("Chat form");
  assert.deepEqual(await unlabelledFields(page), []);
  assert.deepEqual(await lowContrast(page, '[role="dialog"]'), []);
  await screenshot(page, "prompt-new-version");
  await next.getByRole("button", { name: "Create version" }).click();
  await page.waitForURL(/\?version=2$/);
  await page.getByRole("heading", { name: "Version 2" }).waitFor();
  const messages = page.getByRole("list", { name: "Chat messages" });
  await messages.waitFor();
  assert.deepEqual(await messages.locator(".role").allInnerTexts().then((roles) => roles.map((role) => role.toLowerCase())), ["system", "user"]);
  const v2 = tagMap((await version("fraud-triage", "2")).tags);
  assert.equal(v2._mlflow_prompt_type, "chat");
  // Python's json.dumps: ", " and ": " separators, non-ASCII escaped.
  assert.equal(
    v2["mlflow.prompt.text"],
    '[{"role": "system", "content": "You triage card transactions. Answer in {{language}}."}, {"role": "user", "content": "Is {{transaction}} fraud? Caf\\u00e9 prices count."}]',
  );

  // MLflow's Python client loads both versions as it loads prompts it registered itself.
  const loaded = python(`
p1 = mlflow.genai.load_prompt("prompts:/fraud-triage/1")
p2 = mlflow.genai.load_prompt("prompts:/fraud-triage/2")
print(json.dumps({"t1": p1.template, "m1": p1.commit_message, "tags1": p1.tags, "chat": p2.is_text_prompt is False, "t2": p2.template, "vars": sorted(p2.variables), "f": p1.format(transaction="tx-9", language="en")}))`);
  assert.deepEqual(loaded, {
    t1: "Classify {{transaction}} as fraud or not.\nAnswer in {{language}}.",
    m1: "First triage prompt",
    tags1: { owner: "risk-team" },
    chat: true,
    t2: [
      { role: "system", content: "You triage card transactions. Answer in {{language}}." },
      { role: "user", content: "Is {{transaction}} fraud? Café prices count." },
    ],
    vars: ["language", "transaction"],
    f: "Classify tx-9 as fraud or not.\nAnswer in en.",
  });

  // A name taken by a model is refused with the client's message, and nothing is written.
  await page.goto(`${server.url}/prompts`);
  await page.getByRole("button", { name: "Create prompt" }).click();
  await page.getByRole("dialog").getByLabel("Name", { exact: true }).fill("fraud-detector");
  await page.getByRole("dialog").getByLabel("Template").fill("x");
  await page.getByRole("dialog").getByRole("button", { name: "Create prompt" }).click();
  await page.getByRole("dialog").getByRole("alert").waitFor();
  assert.match(await page.getByRole("dialog").getByRole("alert").innerText(), /Model 'fraud-detector' exists with the same name/);
  assert.equal((await server.api.get("/model-versions/search", { filter: "name = 'fraud-detector'" })).model_versions.length, 1);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
