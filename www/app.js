// The status page: List every service of one healthweb endpoint, then keep each row live
// with Watch. The endpoint lives in the URL (?endpoint=...) so a link shares the view.

import init, { HealthClient } from "./pkg/healthweb_client.js";

const LIST_EVERY_MS = 10_000; // the spec: the set of services can change while we watch
const TIMEOUT_MS = 5_000;
const UPSTREAMS_EVERY_MS = 2_000;

const WORDS = {
  SERVING: ["✓", "Serving"],
  NOT_SERVING: ["✕", "Not serving"],
  UNKNOWN: ["?", "Unknown"],
  SERVICE_UNKNOWN: ["∅", "Not known to the server"],
};
const STATES = {
  live: "● live",
  reconnecting: "↻ reconnecting…",
  polling: "⟳ polling",
  down: "✕ down, retrying",
};

const $ = (selector) => document.querySelector(selector);
let view = null; // { client, rows: Map<name, row>, timer, stopped }

function endpointFromUrl() {
  return new URLSearchParams(location.search).get("endpoint") || location.origin;
}

function show(message, state) {
  $("#message").textContent = message;
  document.body.dataset.endpointState = state;
}

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function tick() {
  if (!view) return;
  const now = Date.now();
  for (const row of view.rows.values()) {
    const prefix = row.seenChange ? "changed " : "unchanged for ";
    row.el.querySelector(".since").textContent =
      row.seenChange ? `${prefix}${ago(now - row.changedAt)} ago` : `${prefix}${ago(now - row.changedAt)}`;
  }
}

function addRow(name) {
  const el = $("#service-row").content.firstElementChild.cloneNode(true);
  el.dataset.service = name;
  const label = el.querySelector(".name");
  label.textContent = name === "" ? "(whole server)" : name;
  label.classList.toggle("server", name === "");
  const row = { el, status: null, changedAt: Date.now(), seenChange: false, handle: null };
  const list = $("#services");
  const after = [...list.children].find((other) => other.dataset.service > name);
  list.insertBefore(el, after ?? null);
  view.rows.set(name, row);
  row.handle = view.client.watch(name, (update) => render(row, update));
  return row;
}

/**
 * What healthweb's upstream monitor saw last (`GET /upstreams`), under each monitored
 * service: the target, the upstream's own answer, latency and the last error. An
 * endpoint that is not healthweb, or monitors nothing, simply has no details.
 */
async function loadUpstreams(current) {
  let reports = {};
  try {
    const response = await fetch(`${current.endpoint}/upstreams`, { cache: "no-store" });
    if (response.ok) reports = await response.json();
  } catch {
    return; // unreachable: the rows already say so
  }
  if (current.stopped) return;
  current.monitors = Object.keys(reports).length > 0;
  for (const [name, row] of current.rows) {
    const detail = row.el.querySelector(".detail");
    const report = reports[name];
    detail.hidden = !report;
    if (!report) continue;
    const parts = [`upstream ${report.target} (${report.protocol}, ${report.mode})`];
    if (report.answer) parts.push(`answered ${report.answer}`);
    if (report.latency_ms != null) parts.push(`${report.latency_ms.toFixed(1)} ms`);
    const error = document.createElement("span");
    error.className = "error";
    error.textContent = report.error ? ` · last error: ${report.error}` : "";
    detail.replaceChildren(parts.join(" · "), error);
  }
}

function render(row, { status, state, error }) {
  if (status !== row.status) {
    if (view) loadUpstreams(view);
    if (row.status !== null) row.seenChange = true;
    row.status = status;
    row.changedAt = Date.now();
    const [icon, word] = WORDS[status] ?? ["?", status];
    row.el.dataset.status = status;
    row.el.querySelector(".icon").textContent = icon;
    row.el.querySelector(".word").textContent = word;
  }
  row.el.dataset.state = state;
  const stateEl = row.el.querySelector(".state");
  stateEl.textContent = STATES[state] ?? state;
  stateEl.title = error ? `${error.code}: ${error.message}` : "";
  tick();
  summarize();
}

/** One line over the list: how many services, and how many in each status. */
function summarize() {
  if (!view || document.body.dataset.endpointState === "unreachable") return;
  const counts = new Map();
  for (const { status } of view.rows.values()) {
    if (status) counts.set(status, (counts.get(status) ?? 0) + 1);
  }
  const parts = [...counts].map(([status, n]) => `${n} ${(WORDS[status]?.[1] ?? status).toLowerCase()}`);
  const total = view.rows.size;
  show(total === 0
    ? `${view.endpoint} reports no services.`
    : `${total} service${total === 1 ? "" : "s"} at ${view.endpoint}: ${parts.join(", ")}`, "ok");
}

async function refresh(current) {
  try {
    const statuses = await current.client.list();
    if (current.stopped) return;
    for (const name of Object.keys(statuses)) {
      if (!current.rows.has(name)) addRow(name);
    }
    document.body.dataset.endpointState = "ok";
    summarize();
    loadUpstreams(current);
  } catch (err) {
    if (current.stopped) return;
    const why = err.code ? `${err.code}: ${err.message}` : String(err);
    show(`Cannot reach ${current.endpoint} (${why}). Retrying…`, "unreachable");
  }
  if (!current.stopped) current.timer = setTimeout(() => refresh(current), LIST_EVERY_MS);
}

function start(endpoint) {
  if (view) {
    view.stopped = true;
    clearTimeout(view.timer);
    for (const row of view.rows.values()) row.handle?.close();
  }
  $("#services").replaceChildren();
  $("#endpoint").value = endpoint;
  document.title = `Service health: ${endpoint}`;
  show(`Connecting to ${endpoint}…`, "connecting");
  let client;
  try {
    client = new HealthClient(endpoint, { timeoutMs: TIMEOUT_MS });
  } catch (err) {
    show(`Cannot use ${endpoint}: ${err.message}`, "unreachable");
    view = null;
    return;
  }
  view = { client, endpoint, rows: new Map(), timer: 0, stopped: false };
  refresh(view);
}

$("#endpoint-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const endpoint = $("#endpoint").value.trim().replace(/\/+$/, "");
  const url = new URL(location.href);
  if (endpoint === location.origin) url.searchParams.delete("endpoint");
  else url.searchParams.set("endpoint", endpoint);
  history.pushState(null, "", url);
  start(endpoint);
});
addEventListener("popstate", () => start(endpointFromUrl()));
setInterval(tick, 1000);
// Errors and latencies change without a status change; refresh them while there are any.
setInterval(() => view?.monitors && loadUpstreams(view), UPSTREAMS_EVERY_MS);

try {
  await init();
  start(endpointFromUrl());
} catch (err) {
  show(`This browser could not load the WebAssembly client: ${err.message}`, "unreachable");
}
