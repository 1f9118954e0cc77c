// The status page end to end: a real `healthweb serve`, headless Chromium, and checks on
// what a person sees. run.sh builds the server and www/pkg first; this builds nothing.
//
// Saves docs/status-page.png (and dark-mode, phone and fleet twins) for the README. With E2E_WWW set,
// serves the page from that directory instead (run.sh: www/ with the fetch-lite module
// as its pkg/) and saves no screenshots.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "./healthweb.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = process.env.HEALTHWEB_BIN ?? join(root, "target/debug/healthweb");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const www = process.env.E2E_WWW ?? join(root, "www");
const WORDS = { SERVING: "Serving", NOT_SERVING: "Not serving", UNKNOWN: "Unknown" };

const servers = new Set();
let passed = 0;
/** Reports one check that held. */
function ok(what) {
  passed += 1;
  console.log(`ok: ${what}`);
}
let browser;

async function cleanup() {
  for (const proc of servers) proc.kill("SIGKILL");
  await browser?.close().catch(() => {});
}
// run.sh gives the whole file 600 s; this says which run hung, and cleans up.
const guard = setTimeout(async () => {
  console.error("e2e: FAILED, still running after 420 s");
  await cleanup();
  process.exit(1);
}, 420_000);

/** Starts `healthweb serve` on `listen`; see healthweb.mjs. */
function serve(listen, ...args) {
  return serveWith({}, listen, ...args);
}

/** `serve`, with more environment variables. */
function serveWith(env, listen, ...args) {
  const started = startServer(bin, ["--listen", listen, "--www", www, "--shutdown-grace", "1s", ...args], env);
  started.then(({ proc }) => {
    servers.add(proc);
    proc.on("exit", () => servers.delete(proc));
  }, () => {});
  return started;
}

/** Saves a screenshot for the README, of the default page only. */
async function screenshot(page, options) {
  if (!process.env.E2E_WWW) await page.screenshot(options);
}

async function stop({ proc }) {
  const exited = new Promise((resolve) => proc.on("exit", resolve));
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

async function admin(server, method, name, status) {
  const response = await fetch(`${server.admin}/services?name=${encodeURIComponent(name)}`, {
    method, headers: { "content-type": "application/json" },
    body: status && JSON.stringify({ status }), signal: AbortSignal.timeout(5_000),
  });
  assert.ok(response.ok, `admin ${method} ${name}: HTTP ${response.status}`);
}

const row = (name) => `li.service[data-service="${name}"]`;

/** How many Watch streams `server` has open (its admin API counts them per service). */
async function watchStreams(server) {
  const response = await fetch(`${server.admin}/services`, { signal: AbortSignal.timeout(5_000) });
  return Object.values((await response.json()).watchers ?? {}).reduce((sum, n) => sum + n, 0);
}

/** The row's History list: for each change shown, its cause, new status and text. */
const changesOf = (page, name) =>
  page.$$eval(`${row(name)} .changes li`, (items) =>
    items.map((li) => ({ cause: li.dataset.cause, to: li.dataset.to, text: li.textContent })));
const everyRow = (page, state) =>
  page.waitForFunction(
    (state) => {
      const rows = [...document.querySelectorAll("li.service")];
      return rows.length > 0 && rows.every((li) => li.dataset.state === state);
    },
    state,
    { timeout: 30_000 },
  );

async function main() {
  const services = ["--service", "api=SERVING", "--service", "db=NOT_SERVING", "--service", "cache=UNKNOWN",
    "--service", "search=SERVING"];
  const first = await serve("127.0.0.1:0", ...services);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 900, height: 560 } });
  const requests = [];
  const errors = [];
  page.on("request", (request) => requests.push(new URL(request.url())));
  page.on("pageerror", (error) => errors.push(error.message));

  // Every service is listed, with its status as a word.
  await page.goto(`${first.url}/`);
  const expected = (await (await fetch(`${first.admin}/services`)).json()).services;
  await everyRow(page, "live");
  assert.equal(await page.locator("li.service").count(), Object.keys(expected).length);
  for (const [name, status] of Object.entries(expected)) {
    assert.equal(await page.getAttribute(row(name), "data-status"), status, name);
    const text = await page.locator(row(name)).innerText();
    assert.ok(text.includes(WORDS[status]), `${name} shows "${text}"`);
    assert.ok(text.includes(name === "" ? "whole server" : name), text);
  }
  ok("every service listed with its status");

  // A change made through the admin API shows without a reload. It takes tens of ms;
  // the deadline has room for a busy machine, and the time taken is reported.
  const changed = Date.now();
  await admin(first, "PUT", "search", "NOT_SERVING");
  await page.waitForSelector(`${row("search")}[data-status="NOT_SERVING"]`, { timeout: 5_000 });
  assert.match(await page.locator(`${row("search")} .status`).innerText(), /Not serving/);
  ok(`status change shown after ${Date.now() - changed} ms`);
  await page.waitForFunction((sel) => /changed [1-9]\d* s ago/.test(document.querySelector(sel).innerText),
    `${row("search")} .since`, { timeout: 10_000 });
  ok("time since the change ticks");

  // History: two more changes, back and forth; the row's list of changes shows all three,
  // newest first, caused by the admin API; its uptime falls under 100 %, and the bar's
  // last part says the worst was Not serving. The server writes changes once a second
  // and the page fetches them after each change; the wait is for that, with room.
  await admin(first, "PUT", "search", "SERVING");
  await page.waitForSelector(`${row("search")}[data-status="SERVING"]`, { timeout: 5_000 });
  await admin(first, "PUT", "search", "NOT_SERVING");
  await page.waitForSelector(`${row("search")}[data-status="NOT_SERVING"]`, { timeout: 5_000 });
  const historyAsked = Date.now();
  await page.waitForFunction((sel) => {
    const changes = [...document.querySelectorAll(`${sel} .changes li`)].slice(0, 3);
    return changes.map((li) => `${li.dataset.cause}:${li.dataset.to}`).join() ===
      "ADMIN:NOT_SERVING,ADMIN:SERVING,ADMIN:NOT_SERVING";
  }, row("search"), { timeout: 15_000 }).catch(async (error) => {
    throw new Error(`${error.message}; the row's changes: ${JSON.stringify(await changesOf(page, "search"))}; ` +
      `the server's stderr:\n${first.lines.join("\n")}`);
  });
  const changes = await changesOf(page, "search");
  assert.match(changes[0].text, /Serving → Not serving, for \d+ s so far · admin/);
  assert.match(changes[1].text, /Not serving → Serving, for \d+ s · admin/);
  assert.match(changes[2].text, /Serving → Not serving, for \d+ s · admin/);
  assert.match(changes.at(-1).text, /Not known to the server → Serving, .* · config/);
  await page.click(`${row("search")} .changes summary`);
  assert.ok(await page.isVisible(`${row("search")} .changes li`), "the list opens");
  const uptime = await page.locator(`${row("search")} .uptime`).innerText();
  const [, day] = uptime.match(/^24 h ([\d.]+) % · 7 d [\d.]+ % · 30 d [\d.]+ %$/) ?? [];
  assert.ok(day !== undefined && Number(day) < 100, `search's uptime reads "${uptime}"`);
  assert.equal(await page.locator(`${row("search")} .bar li`).count(), 48);
  const lastPart = page.locator(`${row("search")} .bar li`).last();
  assert.equal(await lastPart.getAttribute("data-worst"), "NOT_SERVING");
  // Four changes so far, all in the last half hour's part unless its start fell among them.
  assert.match(await lastPart.getAttribute("title"), /worst Not serving, serving [\d.]+ % of the time, [1-9] changes?$/);
  assert.equal(await page.getAttribute(`${row("api")} .bar li:last-child`, "data-worst"), "SERVING");
  assert.match(await page.locator(`${row("api")} .uptime`).innerText(), /^24 h 100 % · 7 d 100 % · 30 d 100 %$/);
  ok(`uptime "${uptime}", the bar and the changes shown ${Date.now() - historyAsked} ms after the last change`);

  mkdirSync(join(root, "docs"), { recursive: true });
  await page.evaluate(() => scrollTo(0, 0));
  await screenshot(page, { path: join(root, "docs/status-page.png"), fullPage: true });
  await page.emulateMedia({ colorScheme: "dark" });
  await screenshot(page, { path: join(root, "docs/status-page-dark.png"), fullPage: true });
  await page.emulateMedia({ colorScheme: "light" });

  // Readable on a phone: nothing wider than the screen.
  await page.setViewportSize({ width: 360, height: 740 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than a phone`);
  await screenshot(page, { path: join(root, "docs/status-page-phone.png"), fullPage: true });
  await page.setViewportSize({ width: 900, height: 560 });
  ok("fits a phone");

  // Server stopped: the page says it is reconnecting; restarted: it recovers by itself.
  const address = new URL(first.url).host;
  await stop(first);
  await everyRow(page, "reconnecting");
  assert.match(await page.locator(`${row("api")} .state`).innerText(), /reconnecting/);
  ok("a stopped server shows reconnecting");
  const second = await serve(address, ...services);
  await everyRow(page, "live");
  // The new server starts with search SERVING again: the page shows fresh data.
  await page.waitForSelector(`${row("search")}[data-status="SERVING"]`, { timeout: 15_000 });
  ok("the page recovered after a restart");

  // An endpoint that cannot be reached says so.
  await page.goto(`${second.url}/?endpoint=${encodeURIComponent("http://127.0.0.1:9")}`);
  await page.waitForSelector('body[data-endpoint-state="unreachable"]', { timeout: 10_000 });
  assert.match(await page.locator("#message").innerText(), /Cannot reach http:\/\/127\.0\.0\.1:9/);
  ok("an unreachable endpoint is reported");

  // The input points the page at another endpoint, kept in the URL so a link shares it.
  const other = await serve("127.0.0.1:0", "--service", "elsewhere=SERVING", "--cors-origin", second.url);
  await page.fill("#endpoint", other.url);
  await page.press("#endpoint", "Enter");
  await page.waitForSelector(`${row("elsewhere")}[data-state="live"]`, { timeout: 10_000 });
  // History too comes from the other endpoint (CORS allows the page's origin).
  await page.waitForSelector(`${row("elsewhere")}[data-history="loaded"] .bar li[data-worst="SERVING"]`, { timeout: 10_000 });
  assert.equal(new URL(page.url()).searchParams.get("endpoint"), other.url);
  await page.reload();
  await page.waitForSelector(`${row("elsewhere")}[data-state="live"]`, { timeout: 10_000 });
  assert.equal(await page.inputValue("#endpoint"), other.url);
  assert.equal(await page.locator(row("api")).count(), 0);
  ok("another endpoint, shared through the URL");

  // A fleet: an upstream monitored by healthweb shows as a row, with what the monitor saw.
  const upstream = await serve("127.0.0.1:0", "--service", "pay=SERVING");
  const dir = mkdtempSync(join(tmpdir(), "healthweb-e2e-"));
  const config = join(dir, "healthweb.toml");
  writeFileSync(config, `[[upstream]]\nname = "payments"\ntarget = "${upstream.url}"\nservice = "pay"\n` +
    `interval = "200ms"\ntimeout = "500ms"\n`);
  const fleet = await serve("127.0.0.1:0", "--config", config);
  const fleetOrigin = new URL(fleet.url).origin;
  // What the monitor saw is asked for the rows in view, by name: never all upstreams.
  // Only the fleet's own /upstreams count: the page left behind may still have one of
  // its own (for "elsewhere", at the other endpoint) on the way when this listener starts.
  const reportQueries = [];
  const onRequest = (request) => {
    const url = new URL(request.url());
    if (url.origin === fleetOrigin && url.pathname === "/upstreams") {
      reportQueries.push(url.searchParams.getAll("service"));
    }
  };
  page.on("request", onRequest);
  await page.goto(`${fleet.url}/`);
  await page.waitForSelector(`${row("payments")}[data-status="SERVING"][data-state="live"]`, { timeout: 10_000 });
  await page.waitForFunction((sel) => /upstream http:.*answered SERVING/.test(document.querySelector(sel).innerText),
    `${row("payments")} .detail`, { timeout: 10_000 });
  const flipped = Date.now();
  await admin(upstream, "PUT", "pay", "NOT_SERVING");
  await page.waitForSelector(`${row("payments")}[data-status="NOT_SERVING"]`, { timeout: 10_000 });
  ok(`an upstream's change shown after ${Date.now() - flipped} ms`);
  page.off("request", onRequest);
  assert.ok(reportQueries.length > 0 && reportQueries.every((names) => names.includes("payments")),
    `/upstreams asked for the rows in view: ${JSON.stringify(reportQueries)}`);
  // Its probe latency from History: the last minute's p50 and p99, and a line.
  await page.waitForFunction((sel) => /^p50 [\d.]+ ms · p99 [\d.]+ ms/.test(document.querySelector(sel)?.innerText ?? ""),
    `${row("payments")} .latency:not([hidden])`, { timeout: 15_000 });
  const points = await page.getAttribute(`${row("payments")} .latency svg polyline`, "points");
  assert.match(points, /^[\d.]+,[\d.]+( [\d.]+,[\d.]+)+$/);
  assert.equal(await page.locator(`${row("")} .latency`).isHidden(), true, "only upstreams have latency");
  const latencyText = (await page.locator(`${row("payments")} .latency`).textContent()).replace(/\s+/g, " ");
  ok(`the upstream's latency: "${latencyText}"`);
  // A view with no monitored row in it does not stop the refresh of the monitor's
  // reports: once "payments" is back in view, it is asked about again unprompted.
  const upstreamsAsked = (names) => (request) =>
    new URL(request.url()).pathname === "/upstreams" && names(new URL(request.url()).searchParams.getAll("service"));
  await page.selectOption("#status-filter", "SERVING"); // the server's own row alone
  await page.waitForResponse((response) =>
    upstreamsAsked((names) => !names.includes("payments"))(response.request()), { timeout: 10_000 });
  await page.selectOption("#status-filter", "");
  await page.waitForRequest(upstreamsAsked((names) => names.includes("payments")), { timeout: 10_000 });
  ok("the monitor's reports are refreshed after a view with none of its upstreams");
  await stop(upstream);
  await page.waitForFunction((sel) => /last error: .*(refused|UNAVAILABLE|ended)/.test(document.querySelector(sel).innerText),
    `${row("payments")} .detail`, { timeout: 10_000 });
  await screenshot(page, { path: join(root, "docs/status-page-fleet.png") });
  ok("the monitor's last error is shown");

  // WatchHandle.close() ends the call for real: the fetch is aborted and the server's
  // count of open Watch streams (admin GET /services) falls back to 0 within a second.
  const solo = await serve("127.0.0.1:0", "--service", "probe=SERVING", "--cors-origin", fleetOrigin);
  const openWatches = async () => {
    const response = await fetch(`${solo.admin}/services`, { signal: AbortSignal.timeout(5_000) });
    return (await response.json()).watchers?.probe ?? 0;
  };
  /** Polls until `openWatches()` is `count`; the time taken, or a failure after `ms`. */
  const watchesReach = async (count, ms, after) => {
    const start = Date.now();
    for (;;) {
      const open = await openWatches();
      const took = Date.now() - start;
      if (open === count) return took;
      if (took > ms) {
        throw new Error(`${open} Watch streams still open ${took} ms ${after} (want ${count}); the server's stderr:\n` +
          solo.lines.join("\n"));
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  await page.evaluate((url) => import("/pkg/healthweb_client.js").then(({ HealthClient }) => {
    window.probeUpdates = [];
    window.probeHandle = new HealthClient(url).watch("probe", ({ status }) => window.probeUpdates.push(status));
  }), solo.url);
  await page.waitForFunction(() => window.probeUpdates.length > 0, null, { timeout: 10_000 });
  await watchesReach(1, 10_000, "after watch()");
  await page.evaluate(() => window.probeHandle.close());
  const closed = await watchesReach(0, 1_000, "after close()");
  ok(`close() ended the Watch stream on the server after ${closed} ms`);

  // History that cannot be kept as asked is said above the list: a database that does
  // not answer (the changes wait in memory), and a default file that cannot be made
  // (history in memory only).
  const away = await serve("127.0.0.1:0", "--service", "kept=SERVING",
    "--history", "postgres://healthweb@127.0.0.1:9/healthweb", "--history-timeout", "1s");
  const nowhere = await serveWith({ XDG_STATE_HOME: "/proc/healthweb-e2e", STATE_DIRECTORY: "" },
    "127.0.0.1:0", "--service", "kept=SERVING");
  for (const [server, says] of [[away, /^History store unreachable since .*: \d+ changes? kept in memory/],
    [nowhere, /^History is kept in memory only, and lost when healthweb stops: cannot use \/proc\/healthweb-e2e/]]) {
    const storePage = await browser.newPage();
    storePage.on("pageerror", (error) => errors.push(error.message));
    await storePage.goto(`${server.url}/`);
    await storePage.waitForSelector("#store:not([hidden])", { timeout: 15_000 });
    const said = await storePage.innerText("#store");
    assert.match(said, says);
    ok(`the page says: ${said}`);
    await storePage.close();
  }

  // Ten thousand services: one WatchAll stream carries them, and only the rows in view
  // are in the DOM; History is asked for those rows only. A change on the server shows,
  // the filters and "not serving first" find it, and the counts stand above the list.
  const many = join(dir, "many.toml");
  const names = Array.from({ length: 10_000 }, (_, i) => `svc-${String(i).padStart(5, "0")}`);
  writeFileSync(many, `[services]\n${names.map((name) => `"${name}" = "SERVING"\n`).join("")}`);
  const big = await serve("127.0.0.1:0", "--config", many);
  const bigPage = await browser.newPage({ viewport: { width: 900, height: 560 } });
  bigPage.on("pageerror", (error) => errors.push(error.message));
  // Each History request, by the service it asks about: the gRPC-Web frame's 5 bytes,
  // then field 1 (tag 0x0a), a one-byte length and the name; "" sends no field at all.
  const historyCalls = [];
  bigPage.on("request", (request) => {
    if (!new URL(request.url()).pathname.startsWith("/healthweb.v1.History/")) return;
    const body = request.postDataBuffer() ?? Buffer.alloc(0);
    historyCalls.push(body[5] === 0x0a ? body.subarray(7, 7 + body[6]).toString() : "");
  });
  const inDom = () => bigPage.$$eval("li.service", (items) => items.map((li) => li.dataset.service));
  const loadStart = Date.now();
  await bigPage.goto(`${big.url}/`);
  await bigPage.waitForSelector(row("svc-00000"), { timeout: 30_000 });
  const firstAfter = Date.now() - loadStart;
  await bigPage.waitForFunction(() => /^10001 services at .*: 10001 serving$/.test(document.querySelector("#message").innerText),
    null, { timeout: 30_000 });
  await bigPage.waitForSelector(`${row("svc-00000")}[data-history="loaded"]`, { timeout: 30_000 });
  // Then nothing more is asked for while the page stands still.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const atTop = historyCalls.length;
  const asked = [...new Set(historyCalls)];
  const drawn = await inDom();
  assert.ok(drawn.length > 0 && drawn.length <= 40, `${drawn.length} rows in the DOM at the top: ${drawn}`);
  assert.ok(drawn.every((name) => name < "svc-00040"), `rows in the DOM at the top: ${drawn}`);
  assert.ok(atTop > 0 && atTop <= 80, `${atTop} History requests at the top of 10001 rows`);
  assert.ok(asked.every((name) => name < "svc-00040"), `History asked about ${asked}`);
  const metrics = await (await fetch(`${big.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  assert.match(metrics, /^healthweb_watch_all_streams(\{\})? 1$/m, "one WatchAll stream");
  assert.equal(await watchStreams(big), 0, "no Watch stream per row");
  ok(`10000 services: the first row after ${firstAfter} ms, ${drawn.length} rows in the DOM, ` +
    `${atTop} History requests about ${asked.length} rows in view, one WatchAll stream`);

  const flipped10k = Date.now();
  await admin(big, "PUT", "svc-00002", "NOT_SERVING");
  await bigPage.waitForSelector(`${row("svc-00002")}[data-status="NOT_SERVING"]`, { timeout: 10_000 });
  await bigPage.waitForFunction(() => /: 1 not serving, 10000 serving$/.test(document.querySelector("#message").innerText),
    null, { timeout: 10_000 });
  ok(`a change among 10000 shown after ${Date.now() - flipped10k} ms, and counted`);

  // At the bottom, the last rows are drawn (and the first ones gone) and get their history;
  // the rows jumped over are never drawn nor asked about.
  await bigPage.evaluate(() => scrollTo(0, document.documentElement.scrollHeight));
  await bigPage.waitForFunction((sel) => /^24 h 100 % · 7 d 100 % · 30 d 100 %$/.test(document.querySelector(sel)?.innerText ?? ""),
    `${row("svc-09999")} .uptime`, { timeout: 15_000 });
  const drawnAtBottom = await inDom();
  assert.ok(drawnAtBottom.length <= 40 && drawnAtBottom.every((name) => name > "svc-09960"),
    `rows in the DOM at the bottom: ${drawnAtBottom}`);
  assert.ok(!historyCalls.includes("svc-05000"), "a row never in view");
  ok(`scrolled to the bottom: ${drawnAtBottom.length} rows in the DOM, the last rows' uptime shown`);

  // The filters: by name, by status, and not serving first.
  await bigPage.fill("#name-filter", "svc-0999");
  await bigPage.waitForFunction(() => /\(10 shown\)$/.test(document.querySelector("#message").innerText), null, { timeout: 10_000 });
  assert.ok((await inDom()).every((name) => name.startsWith("svc-0999")), `filtered by name: ${await inDom()}`);
  await bigPage.fill("#name-filter", "");
  await bigPage.selectOption("#status-filter", "NOT_SERVING");
  await bigPage.waitForFunction(() => /\(1 shown\)$/.test(document.querySelector("#message").innerText), null, { timeout: 10_000 });
  assert.deepEqual(await inDom(), ["svc-00002"]);
  assert.match(await bigPage.locator("#status-filter option:checked").innerText(), /^Not serving \(1\)$/);
  await bigPage.selectOption("#status-filter", "");
  await bigPage.check("#problems-first");
  await bigPage.evaluate(() => scrollTo(0, 0));
  await bigPage.waitForFunction(() => {
    const rows = [...document.querySelectorAll("li.service")];
    const top = (li) => new DOMMatrix(getComputedStyle(li).transform).m42;
    return rows.length > 0 && rows.reduce((a, b) => (top(a) <= top(b) ? a : b)).dataset.service === "svc-00002";
  }, null, { timeout: 10_000 });
  ok("filters by name and by status, and not serving first");
  await bigPage.close();

  const allowed = new Set([new URL(second.url).origin, new URL(other.url).origin, fleetOrigin,
    new URL(solo.url).origin, "http://127.0.0.1:9"]);
  const strangers = requests.filter((u) => u.protocol !== "data:" && !allowed.has(u.origin));
  assert.deepEqual(strangers.map(String), [], "requests to other hosts");
  assert.deepEqual(errors, [], "errors on the page");
  ok("no request to any other host, no page errors");
}

try {
  await main();
  console.log(`e2e: ${passed} passed, 0 failed`);
} catch (error) {
  console.error("e2e: FAILED:", error);
  console.log(`e2e: ${passed} passed, 1 failed`);
  process.exitCode = 1;
} finally {
  clearTimeout(guard);
  await cleanup();
}
