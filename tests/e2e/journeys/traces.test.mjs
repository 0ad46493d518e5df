// Trace pages: the trace table of an experiment with its filters (status, time range, tags, token
// usage and cost) and totals, and a trace page with span tree, timeline, span details and assessments.
// Spans arrive as OTLP JSON at /v1/traces, as an OpenTelemetry exporter sends them.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, newPage, screenshot, startServer } from "../harness.mjs";
import { addAssessment, sendTrace } from "../traceData.mjs";

let server;
let browser;
let experimentId;
let ragTrace;
const HOUR = 3_600_000;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  experimentId = await server.api.createExperiment("rag-app");
  await server.api.createExperiment("other-app");
  ragTrace = await sendTrace(
    server.url,
    experimentId,
    [
      { name: "answer_question", type: "CHAIN", startMs: 0, endMs: 1200, inputs: { question: "What is MLflow?" }, outputs: { answer: "An ML platform." }, tags: { env: "prod" } },
      { name: "retrieve_docs", type: "RETRIEVER", parent: 0, startMs: 50, endMs: 400, inputs: { query: "MLflow" }, outputs: [{ page_content: "MLflow is an open source platform", metadata: { doc_uri: "docs/intro.md" } }] },
      {
        name: "call_llm",
        type: "CHAT_MODEL",
        parent: 0,
        startMs: 450,
        endMs: 1150,
        inputs: { messages: [{ role: "user", content: "What is MLflow?" }] },
        outputs: { choices: [{ message: { role: "assistant", content: "An ML platform." } }] },
        attributes: { "mlflow.llm.model": "gpt-test", temperature: 0.2 },
        usage: { input_tokens: 120, output_tokens: 40, total_tokens: 160 },
        cost: { input_cost: 0.0012, output_cost: 0.0008, total_cost: 0.002 },
        events: [{ name: "first_token", atMs: 700, attributes: { latency_ms: 250 } }],
      },
    ],
    { startMs: Date.now() - HOUR },
  );
  await sendTrace(
    server.url,
    experimentId,
    [
      { name: "answer_question", type: "CHAIN", startMs: 0, endMs: 300, inputs: { question: "Crash?" }, error: "Timeout calling the LLM", tags: { env: "dev" } },
      { name: "call_llm", type: "CHAT_MODEL", parent: 0, startMs: 10, endMs: 290, error: "Timeout", usage: { input_tokens: 30, output_tokens: 20, total_tokens: 50 }, cost: { input_cost: 0.0003, output_cost: 0.0004, total_cost: 0.0007 } },
    ],
    { startMs: Date.now() - 2 * HOUR },
  );
  await sendTrace(server.url, experimentId, [{ name: "summarize", type: "LLM", startMs: 0, endMs: 80, inputs: { text: "long text" }, outputs: "short", tags: { env: "prod" } }], {
    startMs: Date.now() - 72 * HOUR,
  });
  await addAssessment(server.url, ragTrace, {
    assessment_name: "relevance",
    source: { source_type: "HUMAN", source_id: "alice@example.com" },
    feedback: { value: true },
    rationale: "The answer addresses the question.",
  });
  await addAssessment(server.url, ragTrace, {
    assessment_name: "expected_answer",
    source: { source_type: "HUMAN", source_id: "bob@example.com" },
    expectation: { value: "MLflow is an open source ML platform." },
  });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const rows = (page) => page.locator('table[aria-label="Traces"] tbody tr');
const waitRows = (page, count) =>
  page.waitForFunction((n) => document.querySelectorAll('table[aria-label="Traces"] tbody tr').length === n, count);
const localInput = (ms) => {
  const date = new Date(ms);
  const pad = (value) => String(value).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
};

test("trace table filters by status, time, tags, token usage and cost, with totals", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/traces`);
  await page.getByLabel("Experiment").selectOption({ label: "rag-app" });
  await page.waitForURL(new RegExp(`experiment=${experimentId}`));
  await waitRows(page, 3);
  // Newest first; token and cost totals over the shown rows.
  assert.deepEqual(await rows(page).locator("td:nth-child(4)").allInnerTexts(), ["OK", "ERROR", "OK"]);
  assert.equal(await page.getByLabel("Total tokens total").innerText(), "210");
  assert.equal(await page.getByLabel("Input tokens total").innerText(), "150");
  assert.equal(await page.getByLabel("Cost total").innerText(), "$0.0027");
  await screenshot(page, "traces");

  const filters = page.getByRole("search", { name: "Trace filters" });
  const apply = () => filters.getByRole("button", { name: "Apply filters" }).click();

  // Status goes to the server filter and the URL.
  await filters.getByLabel("Status").selectOption("ERROR");
  await apply();
  await page.waitForURL(/status=ERROR/);
  await waitRows(page, 1);
  await page.getByText("trace.status = 'ERROR'").waitFor();
  assert.equal(await rows(page).first().locator("td:nth-child(4)").innerText(), "ERROR");
  // Back undoes it.
  await page.goBack();
  await waitRows(page, 3);

  // Time range: from a day ago leaves the two recent traces.
  await filters.getByLabel("From").fill(localInput(Date.now() - 24 * HOUR));
  await apply();
  await page.waitForURL(/from=/);
  await waitRows(page, 2);

  // Tags (with the time range still on): env=prod leaves the RAG trace only.
  await filters.getByLabel("Tags (key=value, comma separated)").fill("env=prod");
  await apply();
  await page.waitForURL(/tag=env%3Dprod/);
  await waitRows(page, 1);
  await page.getByText("tag.`env` = 'prod'").waitFor();

  // Clear time and tags; token usage and a minimum total.
  await filters.getByLabel("From").fill("");
  await filters.getByLabel("Tags (key=value, comma separated)").fill("");
  await filters.getByLabel("Has token usage").check();
  await apply();
  await waitRows(page, 2);
  await page.getByText("metadata.`mlflow.trace.tokenUsage` IS NOT NULL").waitFor();
  await filters.getByLabel("Min total tokens").fill("100");
  await apply();
  await waitRows(page, 1);
  assert.equal(await page.getByLabel("Total tokens total").innerText(), "160");
  await filters.getByLabel("Min total tokens").fill("");
  await filters.getByLabel("Max total cost ($)").fill("0.001");
  await apply();
  await waitRows(page, 1);
  assert.equal(await page.getByLabel("Cost total").innerText(), "$0.0007");

  // A free filter in MLflow's grammar, and its error shown inline.
  await filters.getByLabel("Max total cost ($)").fill("");
  await filters.getByLabel("Has token usage").uncheck();
  await filters.getByLabel("More filter (MLflow trace search grammar)").fill("span.type = 'LLM'");
  await apply();
  await waitRows(page, 1);
  await rows(page).getByRole("cell", { name: '{"text":"long text"}' }).waitFor();
  await filters.getByLabel("More filter (MLflow trace search grammar)").fill("nonsense ~~ 3");
  await apply();
  await page.getByRole("alert").waitFor();
  assert.match(await page.getByRole("alert").innerText(), /INVALID_PARAMETER_VALUE/);

  // The URL with filters is a deep link.
  await page.goto(`${server.url}/traces?experiment=${experimentId}&status=OK&tag=env%3Dprod`);
  await waitRows(page, 2);
  assert.deepEqual(await filters.getByLabel("Status").inputValue(), "OK");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("trace page shows the span tree, timeline, span details and assessments", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/traces?experiment=${experimentId}`);
  await waitRows(page, 3);
  await rows(page).first().getByRole("link").click();
  await page.waitForURL(new RegExp(`/traces/${ragTrace}$`));
  const tree = page.getByRole("tree", { name: "Spans" });
  await tree.waitFor();
  const items = tree.getByRole("treeitem");
  assert.deepEqual(await items.locator(".span-name > span:nth-child(2)").allInnerTexts(), ["answer_question", "retrieve_docs", "call_llm"]);
  assert.deepEqual(await items.evaluateAll((nodes) => nodes.map((node) => node.getAttribute("aria-level"))), ["1", "2", "2"]);

  // Timeline bars sit where the spans ran: the root spans the whole width, call_llm starts at 450/1200.
  const bars = await items.locator(".bar").evaluateAll((nodes) => nodes.map((node) => [parseFloat(node.style.left), parseFloat(node.style.width)]));
  assert.deepEqual(bars[0], [0, 100]);
  assert.ok(Math.abs(bars[2][0] - 37.5) < 0.01 && Math.abs(bars[2][1] - (700 / 1200) * 100) < 0.01, JSON.stringify(bars));

  // The root is selected first: its inputs and outputs as JSON.
  const detail = page.getByRole("region", { name: "Span answer_question" });
  await detail.waitFor();
  assert.deepEqual(JSON.parse(await detail.locator("details").nth(0).locator("pre").innerText()), { question: "What is MLflow?" });

  // Keyboard: ↓ twice selects call_llm (URL keeps it), its attributes and events are readable JSON.
  await items.first().focus();
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowDown");
  await page.waitForURL(/span=/);
  const llm = page.getByRole("region", { name: "Span call_llm" });
  await llm.waitFor();
  assert.deepEqual(JSON.parse(await llm.locator("details").nth(1).locator("pre").innerText()), { choices: [{ message: { role: "assistant", content: "An ML platform." } }] });
  await llm.getByText("Attributes (").click();
  const attributes = JSON.parse(await llm.locator("details").nth(2).locator("pre").innerText());
  assert.equal(attributes["mlflow.llm.model"], "gpt-test");
  assert.equal(attributes.temperature, 0.2);
  assert.deepEqual(attributes["mlflow.chat.tokenUsage"], { input_tokens: 120, output_tokens: 40, total_tokens: 160 });
  const events = JSON.parse(await llm.locator("details").nth(3).locator("pre").innerText());
  assert.equal(events[0].name, "first_token");
  assert.deepEqual(events[0].attributes, { latency_ms: "250" });
  // Collapsible: closing Inputs hides its JSON.
  await llm.getByText("Inputs", { exact: true }).click();
  assert.equal(await llm.locator("details").nth(0).locator("pre").isVisible(), false);
  await screenshot(page, "trace");

  // ← goes to the parent, ← again collapses it, → expands it.
  await items.nth(2).focus();
  await page.keyboard.press("ArrowLeft");
  await page.getByRole("region", { name: "Span answer_question" }).waitFor();
  await page.keyboard.press("ArrowLeft");
  await page.waitForFunction(() => document.querySelectorAll('[role="treeitem"]').length === 1);
  await page.keyboard.press("ArrowRight");
  await page.waitForFunction(() => document.querySelectorAll('[role="treeitem"]').length === 3);

  // Tokens, cost and assessments.
  await page.getByRole("cell", { name: "160 (input 120, output 40)" }).waitFor();
  await page.getByRole("cell", { name: "$0.0020" }).waitFor();
  const assessments = page.getByRole("list", { name: "Assessments" });
  assert.equal(await assessments.getByRole("listitem").count(), 2);
  const relevance = assessments.getByRole("listitem").filter({ hasText: "relevance" });
  await relevance.getByText("Feedback").waitFor();
  await relevance.getByText("Rationale: The answer addresses the question.").waitFor();
  assert.equal(await relevance.locator("pre").first().innerText(), "true");
  const expected = assessments.getByRole("listitem").filter({ hasText: "expected_answer" });
  await expected.getByText("Expectation").waitFor();
  await expected.getByText("MLflow is an open source ML platform.").waitFor();
  await page.getByRole("heading", { name: "Assessments" }).scrollIntoViewIfNeeded();
  await screenshot(page, "trace-assessments");

  // Back returns to the table.
  await page.goBack();
  await waitRows(page, 3);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("an error trace shows its failing spans in red", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/traces?experiment=${experimentId}&status=ERROR`);
  await waitRows(page, 1);
  await rows(page).first().getByRole("link").click();
  await page.getByRole("tree", { name: "Spans" }).waitFor();
  assert.equal(await page.locator(".bar.error").count(), 2);
  await page.getByRole("cell", { name: "ERROR: Timeout calling the LLM" }).waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("an experiment's runs page links to its traces, and the trace table links back", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/experiments/${experimentId}`);
  await page.getByRole("heading", { name: "rag-app" }).waitFor();
  // The header's "Traces" link (the main navigation has one for all experiments).
  await page.locator(".page-header").getByRole("link", { name: "Traces" }).click();
  await page.waitForURL(new RegExp(`/traces\\?experiment=${experimentId}$`));
  await waitRows(page, 3);
  assert.equal(await page.getByLabel("Experiment").inputValue(), experimentId);
  await screenshot(page, "traces-of-experiment");

  // Back to the runs: the "Runs" button and the breadcrumb both name the experiment's runs page.
  const crumbs = page.getByRole("navigation", { name: "Breadcrumbs" });
  assert.equal(await crumbs.getByRole("link", { name: "rag-app" }).getAttribute("href"), `/experiments/${experimentId}`);
  await page.getByRole("link", { name: "Runs", exact: true }).click();
  await page.waitForURL(new RegExp(`/experiments/${experimentId}$`));
  await page.getByRole("heading", { name: "rag-app" }).waitFor();
  await page.goBack();
  await waitRows(page, 3);

  // Over all experiments, each row names its experiment with a link to its runs.
  await page.goto(`${server.url}/traces`);
  await waitRows(page, 3);
  const experimentLinks = rows(page).getByRole("link", { name: "rag-app" });
  assert.equal(await experimentLinks.count(), 3);
  await experimentLinks.first().click();
  await page.waitForURL(new RegExp(`/experiments/${experimentId}$`));
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
