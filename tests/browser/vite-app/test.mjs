// "Embed the wasm module in a frontend", for real: this Vite app imports the client's
// `--target bundler` package (./healthweb-client, built by run.sh) like any npm package.
// `vite build` bundles it, `vite preview` serves the result on 127.0.0.1, headless
// Chromium opens it, and the page must show Check results from a real `healthweb serve`
// on another origin.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { build, preview } from "vite";
import { startServer } from "../healthweb.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");
const bin = process.env.HEALTHWEB_BIN ?? join(root, "target/debug/healthweb");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

let passed = 0;
function ok(what) {
  passed += 1;
  console.log(`ok: ${what}`);
}

let server;
let site;
let browser;
async function cleanup() {
  server?.proc.kill("SIGKILL");
  await site?.close().catch(() => {});
  await browser?.close().catch(() => {});
}
const guard = setTimeout(async () => {
  console.error("vite: FAILED, still running after 300 s");
  await cleanup();
  process.exit(1);
}, 300_000);

/** Starts `healthweb serve` on a free port; see ../healthweb.mjs. */
function serve(...args) {
  return startServer(bin, ["--listen", "127.0.0.1:0", ...args]);
}

async function main() {
  assert.ok(existsSync(join(here, "healthweb-client", "healthweb_client_bg.wasm")),
    "build the package first: web-client/build.sh bundler tests/browser/vite-app/healthweb-client");
  const started = Date.now();
  await build({ root: here, configFile: join(here, "vite.config.js") });
  ok(`vite build (${Date.now() - started} ms)`);

  // The built site on its own origin; the server lets exactly that origin call it.
  site = await preview({
    root: here,
    configFile: join(here, "vite.config.js"),
    preview: { host: "127.0.0.1", port: 0, strictPort: true, open: false },
  });
  const { port } = site.httpServer.address();
  const origin = `http://127.0.0.1:${port}`;
  server = await serve("--service", "api=SERVING", "--cors-origin", origin);

  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => message.type() === "error" && errors.push(message.text()));
  const serverLog = () => `; the server's stderr:\n${server.lines.join("\n")}`;

  await page.goto(`${origin}/?endpoint=${encodeURIComponent(server.url)}`);
  const settled = async () => {
    const output = page.locator('#status:not([data-state="loading"])');
    await output.waitFor({ timeout: 15_000 });
    return [await output.getAttribute("data-state"), await output.innerText()];
  };
  try {
    assert.deepEqual(await settled(), ["ok", "SERVING"]);
    ok("the bundled app shows the server's answer: SERVING");

    // The page asks the server each time, not a cached value.
    const response = await fetch(`${server.admin}/services?name=api`, {
      method: "PUT", headers: { "content-type": "application/json" },
      body: JSON.stringify({ status: "NOT_SERVING" }), signal: AbortSignal.timeout(5_000),
    });
    assert.ok(response.ok, `admin PUT: HTTP ${response.status}`);
    await page.click("#again");
    assert.deepEqual(await settled(), ["ok", "NOT_SERVING"]);
    ok("after a change on the server, Check again shows NOT_SERVING");
  } catch (error) {
    error.message += serverLog();
    throw error;
  }
  assert.deepEqual(errors, [], "errors on the page");
  ok("no errors on the page");
}

try {
  await main();
  console.log(`vite: ${passed} passed, 0 failed`);
} catch (error) {
  console.error("vite: FAILED:", error);
  console.log(`vite: ${passed} passed, 1 failed`);
  process.exitCode = 1;
} finally {
  clearTimeout(guard);
  await cleanup();
}
