// Alerts on the status page, in headless Chromium against a real `healthweb serve`: a
// service whose alert fired shows "alert firing since" and its delivery; one inside a
// maintenance window shows "maintenance until", and its alert is held (the receiver, an
// HTTP server started here on 127.0.0.1, hears of the first service only).
// run.sh builds the server and www/pkg first; with E2E_WWW set, the page comes from there.

import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "./healthweb.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = process.env.HEALTHWEB_BIN ?? join(root, "target/debug/healthweb");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const www = process.env.E2E_WWW ?? join(root, "www");

const got = [];
const receiver = createServer((request, response) => {
  let body = "";
  request.on("data", (chunk) => { body += chunk; });
  request.on("end", () => {
    got.push(JSON.parse(body));
    response.end("thanks");
  });
});
await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));

const dir = mkdtempSync(join(tmpdir(), "healthweb-alerts-"));
const config = join(dir, "healthweb.toml");
writeFileSync(config, `[services]
paging = "SERVING"
held = "SERVING"
[[alert]]
name = "ops"
type = "webhook"
url = "http://127.0.0.1:${receiver.address().port}/hook"
[[alert_rule]]
name = "all"
services = ["paging", "held"]
receivers = ["ops"]
`);

let server;
let browser;
const guard = setTimeout(() => {
  console.error("alerts: FAILED, still running after 180 s");
  server?.proc.kill("SIGKILL");
  process.exit(1);
}, 180_000);

async function admin(method, path, body) {
  const response = await fetch(`${server.admin}${path}`, {
    method, headers: { "content-type": "application/json" }, body: body && JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
  assert.ok(response.ok, `${method} ${path}: HTTP ${response.status} ${await response.text()}`);
  return response;
}

async function until(what, ready) {
  const start = Date.now();
  while (!(await ready())) {
    assert.ok(Date.now() - start < 60_000, `${what}: not within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

try {
  server = await startServer(bin, ["--listen", "127.0.0.1:0", "--www", www, "--config", config]);
  await admin("POST", "/maintenance", { services: ["held"], duration: "1h", reason: "upgrade" });
  await admin("PUT", "/services?name=held", { status: "NOT_SERVING" });
  await admin("PUT", "/services?name=paging", { status: "NOT_SERVING" });
  await until("the alert for paging", async () => got.length >= 1);

  browser = await chromium.launch({
    executablePath: chromiumPath, headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(`${server.url}/`);
  const alertOf = (name) => page.locator(`li.service[data-service="${name}"] .alert`);
  await alertOf("held").filter({ hasText: "maintenance until" }).waitFor({ timeout: 30_000 });
  await alertOf("paging").filter({ hasText: "alert firing since" }).waitFor({ timeout: 30_000 });
  const paging = await alertOf("paging").innerText();
  assert.match(paging, /last firing notice to ops: delivered/, paging);
  assert.equal(await alertOf("paging").getAttribute("data-firing"), "true");
  const held = await alertOf("held").innerText();
  assert.doesNotMatch(held, /firing/, held);
  assert.equal(await alertOf("held").getAttribute("data-maintenance"), "true");
  console.log(`ok: the page shows "${paging}" and "${held}"`);

  // The window held the other alert: one notification in all, about paging.
  assert.deepEqual(got.map((n) => [n.kind, n.service]), [["firing", "paging"]]);
  assert.deepEqual(errors, [], "errors on the page");
  console.log("alerts: 1 passed, 0 failed");
} catch (error) {
  console.error("alerts: FAILED:", error);
  process.exitCode = 1;
} finally {
  clearTimeout(guard);
  await browser?.close().catch(() => {});
  server?.proc.kill("SIGKILL");
  receiver.close();
}
