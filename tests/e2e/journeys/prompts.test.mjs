// Prompt pages: list and search (only registered models tagged as prompts), versions with their
// template or chat messages, aliases, tags, the diff of two versions, deep links and the back button.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, newPage, screenshot, startServer } from "../harness.mjs";
import { createModel, createPrompt } from "../traceData.mjs";

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  await createPrompt(
    server.api,
    "qa-prompt",
    [
      "You are a helpful assistant.\nAnswer the question: {{question}}",
      "You are a helpful assistant.\nUse the context: {{context}}\nAnswer the question: {{question}}",
      "You are a concise assistant.\nUse the context: {{context}}\nAnswer the question: {{question}}\nCite your sources.",
    ],
    { messages: ["first draft", "add context", "be concise and cite"] },
  );
  await createPrompt(
    server.api,
    "chat-assistant",
    [
      [
        { role: "system", content: "You answer in French." },
        { role: "user", content: "{{question}}" },
      ],
    ],
    { chat: true },
  );
  await createModel(server.api, "not-a-prompt");
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const prompt = async (name) => (await server.api.get("/registered-models/get", { name })).registered_model;

test("prompt list shows prompts only and searches by name", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/prompts`);
  await page.getByRole("link", { name: "qa-prompt" }).waitFor();
  const names = await page.locator('table[aria-label="Prompts"] tbody tr td:first-child').allInnerTexts();
  assert.deepEqual(names, ["chat-assistant", "qa-prompt"]);
  await page.getByRole("cell", { name: "be concise and cite" }).waitFor();
  await screenshot(page, "prompts");
  await page.getByLabel("Search prompts by name").fill("qa");
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.waitForURL(/\?q=qa$/);
  await page.waitForFunction(() => document.querySelectorAll('table[aria-label="Prompts"] tbody tr').length === 1);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("prompt page shows versions, sets aliases and tags, and diffs two versions", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/prompts/qa-prompt`);
  const template = page.getByLabel("Template");
  await template.waitFor();
  // The newest version is shown first.
  await page.getByRole("heading", { name: "Version 3" }).waitFor();
  assert.match(await template.innerText(), /You are a concise assistant\.[\s\S]*Cite your sources\./);
  await page.getByText("Commit message: be concise and cite").waitFor();

  // Choosing a version is a deep link; back returns to the previous one.
  await page.getByRole("navigation", { name: "Prompt versions" }).getByRole("link", { name: /^Version 1/ }).click();
  await page.waitForURL(/\?version=1$/);
  await page.getByRole("heading", { name: "Version 1" }).waitFor();
  assert.equal(await template.innerText(), "You are a helpful assistant.\nAnswer the question: {{question}}");
  await page.goBack();
  await page.getByRole("heading", { name: "Version 3" }).waitFor();
  await page.goForward();
  await page.getByRole("heading", { name: "Version 1" }).waitFor();

  // Alias.
  await page.getByLabel("Alias name").fill("production");
  await page.getByLabel("Alias version").selectOption("2");
  await page.getByRole("button", { name: "Set alias" }).click();
  await page.getByText("@production → v2").waitFor();
  assert.deepEqual((await prompt("qa-prompt")).aliases, [{ alias: "production", version: "2" }]);

  // Prompt tags (the internal is_prompt tag is hidden) and version tags.
  const promptTags = page.getByRole("table", { name: "Prompt tags" });
  await promptTags.getByLabel("New tag key").fill("owner");
  await promptTags.getByLabel("New tag value").fill("search-team");
  await promptTags.getByRole("button", { name: "Add tag" }).click();
  // The row appears once the server stored the tag (the add row's own cells already show the typed text).
  await promptTags.locator('tr[data-tag="owner"]').waitFor();
  // Checked once the table holds the server's tags, so an empty table cannot pass it.
  assert.equal(await promptTags.getByText("mlflow.prompt.is_prompt").count(), 0);
  const tags = (await prompt("qa-prompt")).tags;
  assert.deepEqual(tags.find((tag) => tag.key === "owner"), { key: "owner", value: "search-team" });
  const versionTags = page.getByRole("table", { name: "Version tags" });
  await versionTags.getByLabel("New tag key").fill("reviewed");
  await versionTags.getByLabel("New tag value").fill("true");
  await versionTags.getByRole("button", { name: "Add tag" }).click();
  await versionTags.locator('tr[data-tag="reviewed"]').waitFor();
  const v1 = (await server.api.get("/model-versions/get", { name: "qa-prompt", version: "1" })).model_version;
  assert.ok(v1.tags.some((tag) => tag.key === "reviewed" && tag.value === "true"));
  await page.goto(`${server.url}/prompts/qa-prompt?version=2`);
  await page.getByRole("heading", { name: "Version 2" }).waitFor();
  await screenshot(page, "prompt");

  // Diff of two chosen versions, kept in the URL.
  await page.getByRole("tab", { name: "Compare versions" }).click();
  await page.waitForURL(/view=diff/);
  await page.getByLabel("Compare from version").selectOption("1");
  await page.getByLabel("Compare to version").selectOption("3");
  await page.waitForURL(/from=1/);
  await page.waitForURL(/to=3/);
  const diff = page.getByRole("table", { name: "Diff of version 1 and 3" });
  await diff.waitFor();
  const added = await diff.locator("tr.added td:last-child").allInnerTexts();
  const removed = await diff.locator("tr.removed td:last-child").allInnerTexts();
  assert.deepEqual(removed, ["You are a helpful assistant."]);
  assert.deepEqual(added, ["You are a concise assistant.", "Use the context: {{context}}", "Cite your sources."]);
  assert.deepEqual(await diff.locator("tr.same td:last-child").allInnerTexts(), ["Answer the question: {{question}}"]);
  await page.getByText("Version 1 → 3: 3 lines added, 1 removed").waitFor();
  await screenshot(page, "prompt-diff");

  // The diff URL is a deep link.
  const url = page.url();
  await page.goto(`${server.url}/prompts`);
  await page.goto(url);
  await page.getByText("Version 1 → 3: 3 lines added, 1 removed").waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("chat prompts show their messages by role", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/prompts/chat-assistant`);
  const messages = page.getByRole("list", { name: "Chat messages" });
  await messages.waitFor();
  assert.deepEqual(await messages.locator(".role").allTextContents(), ["system", "user"]);
  assert.deepEqual(await messages.locator("pre").allInnerTexts(), ["You answer in French.", "{{question}}"]);
  await screenshot(page, "prompt-chat");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
