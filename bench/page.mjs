// The status page at a fleet's size, in headless Chromium, for bench/fleet.py: the
// page of a healthweb at URL (argv[2]) whose admin API (argv[3]) changes SERVICE
// (argv[4]). Prints one JSON line: first row painted after load, the streams open (the
// server's /metrics), a change on the server shown, the longest task while scrolling top
// to bottom (Long Tasks API: tasks of 50 ms or more; 0 when none), the rows in the DOM,
// and the page's JS heap.

import { chromium } from "../tests/browser/node_modules/playwright-core/index.mjs";

const [url, admin, service] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--enable-precise-memory-info"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  await page.addInitScript(() => {
    window.longest = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.longest = Math.max(window.longest, entry.duration);
    }).observe({ type: "longtask", buffered: true });
  });
  await page.goto(url, { waitUntil: "load" });
  const loaded = Date.now();
  await page.waitForSelector("li.service", { timeout: 60_000 });
  const firstRowMs = Date.now() - loaded;
  await page.waitForFunction(() => /services at/.test(document.querySelector("#message").innerText), null,
    { timeout: 60_000 });
  // The streams the page holds open, as the server counts them.
  const metrics = await (await fetch(new URL("/metrics", url))).text();
  const gauge = (name) => Number(metrics.match(new RegExp(`^${name}(?:\\{\\})? (\\d+)$`, "m"))?.[1]);
  const streams = { watchAll: gauge("healthweb_watch_all_streams"), watch: gauge("healthweb_watch_streams") };
  // The change, on a row in view.
  const row = `li.service[data-service="${service}"]`;
  await page.waitForSelector(row, { timeout: 60_000 });
  const was = await page.getAttribute(row, "data-status");
  const status = was === "SERVING" ? "NOT_SERVING" : "SERVING";
  const asked = Date.now();
  const response = await fetch(`${admin}/services?name=${encodeURIComponent(service)}`, {
    method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ status }),
  });
  if (!response.ok) throw new Error(`admin: HTTP ${response.status}`);
  await page.waitForSelector(`${row}[data-status="${status}"]`, { timeout: 30_000 });
  const changeMs = Date.now() - asked;
  // Scrolled top to bottom, a screen at a time, a frame apart; the longest task since load
  // is reset first so that only the scroll counts.
  await page.evaluate(() => { window.longest = 0; });
  const steps = await page.evaluate(async () => {
    let steps = 0;
    while (scrollY + innerHeight < document.documentElement.scrollHeight - 1) {
      scrollBy(0, innerHeight);
      steps += 1;
      await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    }
    return steps;
  });
  await page.waitForTimeout(500);
  const result = await page.evaluate(() => ({
    longestTaskMs: window.longest,
    rowsInDom: document.querySelectorAll("li.service").length,
    heapMiB: performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null,
  }));
  console.log(JSON.stringify({ firstRowMs, changeMs, scrollSteps: steps, streams, ...result }));
} finally {
  await browser.close();
}
