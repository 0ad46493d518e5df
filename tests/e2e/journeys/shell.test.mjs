// The app shell and how the server serves the UI: deep links, SPA fallback, content types, caching,
// and the API keeping its routes.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, newPage, screenshot, startServer } from "../harness.mjs";

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test("the server serves index.html, hashed assets and keeps API 404s", async () => {
  const index = await fetch(`${server.url}/`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get("content-type"), /^text\/html/);
  assert.equal(index.headers.get("cache-control"), "no-cache");
  const html = await index.text();
  const script = html.match(/src="(\/assets\/[^"]+\.js)"/)?.[1];
  assert.ok(script, "index.html names a hashed script");

  const asset = await fetch(`${server.url}${script}`);
  assert.equal(asset.status, 200);
  assert.match(asset.headers.get("content-type"), /javascript/);
  assert.match(asset.headers.get("cache-control"), /immutable/);

  const deepLink = await fetch(`${server.url}/experiments/0/runs/abc`);
  assert.equal(deepLink.status, 200);
  assert.equal(await deepLink.text(), html);

  assert.equal((await fetch(`${server.url}/assets/missing-123.js`)).status, 404);
  const api404 = await fetch(`${server.url}/api/2.0/mlflow/no-such-route`);
  assert.equal(api404.status, 404);
  assert.equal(await api404.text(), "Not Found");
  assert.equal((await fetch(`${server.url}/ajax-api/2.0/mlflow/nope`)).status, 404);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
  const posted = await fetch(`${server.url}/experiments`, { method: "POST" });
  assert.equal(posted.status, 404);
});

test("the shell navigates with the keyboard and deep links survive reloads", async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/`);
  await page.waitForURL(/\/experiments$/);
  const nav = page.getByRole("navigation", { name: "Main" });
  assert.deepEqual(await nav.getByRole("link").allInnerTexts(), ["Experiments", "Models", "Prompts", "Traces"]);
  // The skip link is the first stop of the keyboard, then the brand and the navigation.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Experiments");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/models$/);
  await page.getByRole("heading", { name: "Models" }).waitFor();
  await page.goBack();
  await page.waitForURL(/\/experiments$/);
  await page.goto(`${server.url}/no/such/page`);
  await page.getByRole("heading", { name: "Page not found" }).waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
