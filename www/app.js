// The status page: List every service of one healthweb endpoint, keep the rows in view
// live with Watch, and show what History remembers of each row in view: uptime over
// 24 h, 7 d and 30 d, a bar of the last day coloured by the worst status of each half
// hour, the latest transitions, and for monitored upstreams their probe latency. The
// endpoint lives in the URL (?endpoint=...) so a link shares the view.
//
// Made for a thousand services: the network is spent on the rows in view only. A
// browser opens at most six HTTP/1.1 connections to a host and each Watch holds one, so
// at most WATCH_LIMIT rows (those in view) are watched and the others take their status
// from List, polled; History is fetched for rows as they come into view,
// HISTORY_CONCURRENCY rows at a time, and again when their status changes. What
// healthweb says of itself (`GET /instance`) is shown too: a history store that is away,
// history kept in memory only, and which replica of a fleet answers; and its alerts
// (`GET /alerts`): per row, an alert firing and the last notification's fate, or the
// maintenance window that holds its alerts.

import init, { HealthClient } from "./pkg/healthweb_client.js";

const LIST_EVERY_MS = 5_000; // new services, and the status of the rows not watched
const TIMEOUT_MS = 5_000;
const UPSTREAMS_EVERY_MS = 2_000;
const INSTANCE_EVERY_MS = 5_000;
const ALERTS_EVERY_MS = 5_000;
const WATCH_LIMIT = 5; // leaves one of the browser's six connections for everything else
const HISTORY_CONCURRENCY = 2;
const HISTORY_EVERY_MS = 60_000; // a row in view gets fresh history this often
const HISTORY_AFTER_CHANGE_MS = 1_500; // the server writes a change as it hears it
const HISTORY_RETRIES = 5; // looks for a change not yet written, a second apart
const TRANSITIONS_SHOWN = 20;
const SETTLE_MS = 150; // rows that only fly past while scrolling cost nothing

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
  listed: `○ every ${LIST_EVERY_MS / 1000} s`,
};
const LISTED_TITLE = `Not watched (out of view, or more than ${WATCH_LIMIT} rows in view): ` +
  `List refreshes it every ${LIST_EVERY_MS / 1000} s`;
const CAUSES = {
  CONFIG: "config", RELOAD: "config reload", ADMIN: "admin", MONITOR: "monitor",
  SHUTDOWN: "shutdown", UNCLEAN_STOP: "unclean stop", PROGRAM: "program", UNSPECIFIED: "unknown cause",
};

const $ = (selector) => document.querySelector(selector);
const word = (status) => WORDS[status]?.[1] ?? status;
let view = null;

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

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const stamp = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});

/** A fraction as a percentage that never rounds up to 100 % (nor down to 0 %). */
function percent(fraction) {
  if (fraction >= 1) return "100 %";
  const floor = Math.floor(fraction * 10_000) / 100;
  return `${floor === 0 && fraction > 0 ? "<0.01" : floor} %`;
}

function since(row) {
  const elapsed = ago(Date.now() - row.changedAt);
  row.el.querySelector(".since").textContent =
    row.seenChange ? `changed ${elapsed} ago` : `unchanged for ${elapsed}`;
  if (row.changes) summarizeChanges(row);
}

/** The line that opens the list of changes: how many, and how long ago the latest. */
function summarizeChanges(row) {
  const { shown, truncated, latestAt } = row.changes;
  row.el.querySelector(".changes summary").textContent = shown === 0
    ? "No changes recorded"
    : `${shown}${truncated ? "+" : ""} change${shown === 1 && !truncated ? "" : "s"}, ` +
      `latest ${ago(Date.now() - latestAt)} ago`;
}

/** Once a second: the time since each change, for the rows in view. */
function tick() {
  for (const row of view?.visible ?? []) since(row);
}

function makeRow(current, name) {
  const el = $("#service-row").content.firstElementChild.cloneNode(true);
  el.dataset.service = name;
  const label = el.querySelector(".name");
  label.textContent = name === "" ? "(whole server)" : name;
  label.classList.toggle("server", name === "");
  const row = {
    name, el, status: null, state: null, why: "", changedAt: Date.now(), seenChange: false,
    handle: null, visible: false,
    // Retries also for the first fetch: a service seconds old may not be written yet.
    upstream: false, loadedAt: 0, stale: true, queued: false, retries: HISTORY_RETRIES, timer: 0,
    changes: null,
  };
  current.rows.set(name, row);
  current.byElement.set(el, row);
  current.observer.observe(el);
  return row;
}

/** Rows for services not yet shown, in name order: all at once the first time. */
function addRows(current, names) {
  const list = $("#services");
  const fresh = names.filter((name) => !current.rows.has(name)).sort();
  if (list.children.length === 0) {
    const fragment = document.createDocumentFragment();
    for (const name of fresh) fragment.append(makeRow(current, name).el);
    list.append(fragment);
    return;
  }
  for (const name of fresh) {
    const after = [...list.children].find((other) => other.dataset.service > name);
    list.insertBefore(makeRow(current, name).el, after ?? null);
  }
}

/**
 * Which rows hold a Watch: all of them when there are few, else the rows in view (the
 * ones longest in view first), up to WATCH_LIMIT. The others are "listed".
 */
function balance(current) {
  if (current.stopped) return;
  const candidates = current.rows.size <= WATCH_LIMIT ? current.rows.values() : current.visible;
  const wanted = new Set([...candidates].slice(0, WATCH_LIMIT));
  for (const row of current.rows.values()) {
    if (row.handle && !wanted.has(row)) {
      row.handle.close();
      row.handle = null;
      if (row.status) render(row, { status: row.status, state: "listed" });
    }
  }
  for (const row of wanted) {
    if (!row.handle) row.handle = current.client.watch(row.name, (update) => render(row, update));
  }
}

function balanceSoon(current) {
  clearTimeout(current.balanceTimer);
  current.balanceTimer = setTimeout(() => balance(current), SETTLE_MS);
}

function seen(current, entries) {
  for (const entry of entries) {
    const row = current.byElement.get(entry.target);
    if (!row) continue;
    row.visible = entry.isIntersecting;
    if (row.visible) {
      current.visible.add(row);
      if (row.status) since(row);
      // Only once it stays in view: rows that fly past while scrolling cost nothing.
      setTimeout(() => wantHistory(current, row), SETTLE_MS);
    } else {
      current.visible.delete(row);
    }
  }
  balanceSoon(current);
}

function render(row, { status, state, error }) {
  const why = error ? `${error.code}: ${error.message}` : "";
  // List repeats every status every few seconds: only what changed touches the page.
  if (status === row.status && state === row.state && why === row.why) return;
  if (status !== row.status) {
    if (row.status !== null) {
      row.seenChange = true;
      historyAfterChange(view, row);
    }
    row.status = status;
    row.changedAt = Date.now();
    const [icon, text] = WORDS[status] ?? ["?", status];
    row.el.dataset.status = status;
    row.el.querySelector(".icon").textContent = icon;
    row.el.querySelector(".word").textContent = text;
    if (view) upstreamsSoon(view);
  }
  row.state = state;
  row.why = why;
  row.el.dataset.state = state;
  const stateEl = row.el.querySelector(".state");
  stateEl.textContent = STATES[state] ?? state;
  stateEl.title = why || (state === "listed" ? LISTED_TITLE : "");
  if (row.visible) since(row);
  summarizeSoon();
}

/** One line over the list: how many services, and how many in each status. */
function summarize() {
  if (!view || document.body.dataset.endpointState === "unreachable") return;
  const counts = new Map();
  for (const { status } of view.rows.values()) {
    if (status) counts.set(status, (counts.get(status) ?? 0) + 1);
  }
  const parts = [...counts].map(([status, n]) => `${n} ${word(status).toLowerCase()}`);
  const total = view.rows.size;
  show(total === 0
    ? `${view.endpoint} reports no services.`
    : `${total} service${total === 1 ? "" : "s"} at ${view.endpoint}: ${parts.join(", ")}`, "ok");
}

let summaryTimer = 0;
function summarizeSoon() {
  if (!summaryTimer) summaryTimer = setTimeout(() => { summaryTimer = 0; summarize(); }, 50);
}

// --- History -------------------------------------------------------------------------

/** Queues `row` for History if it is in view and what it shows is stale or old. */
function wantHistory(current, row, force = false) {
  if (current.stopped || current.noHistory || !row.visible || row.queued) return;
  if (!force && !row.stale && Date.now() - row.loadedAt < HISTORY_EVERY_MS) return;
  row.queued = true;
  current.queue.push(row);
  pump(current);
}

function pump(current) {
  while (!current.stopped && current.active < HISTORY_CONCURRENCY && current.queue.length > 0) {
    const row = current.queue.shift();
    row.queued = false;
    if (!row.visible) continue; // scrolled away before its turn
    current.active += 1;
    loadHistory(current, row).finally(() => {
      current.active -= 1;
      pump(current);
    });
  }
}

/**
 * A status change is written to History within a second: fetch it a little after, or,
 * for a row out of view, as soon as it comes back.
 */
function historyAfterChange(current, row) {
  if (!current || current.noHistory) return;
  row.stale = true;
  row.retries = HISTORY_RETRIES;
  clearTimeout(row.timer);
  row.timer = setTimeout(() => wantHistory(current, row, true), HISTORY_AFTER_CHANGE_MS);
}

async function loadHistory(current, row) {
  let history;
  try {
    history = await current.client.history(row.name, { limit: TRANSITIONS_SHOWN, latency: row.upstream });
  } catch (err) {
    if (current.stopped) return;
    if (err.code === "UNIMPLEMENTED") {
      // Not healthweb, or one without History: no row will have any.
      current.noHistory = true;
      document.body.dataset.history = "none";
      return;
    }
    // What was shown stays, dimmed, with the reason; a row never shown says why.
    const why = `${err.code}: ${err.message}`;
    if (row.el.dataset.history === "loaded" || row.el.dataset.history === "stale") {
      row.el.dataset.history = "stale";
      row.el.querySelector(".uptime").title = `Could not refresh: ${why}`;
    } else {
      row.el.dataset.history = "error";
      row.el.querySelector(".uptime").textContent = `No history (${why})`;
    }
    row.loadedAt = Date.now() - HISTORY_EVERY_MS + 10_000; // again in 10 s
    return;
  }
  if (current.stopped) return;
  row.loadedAt = Date.now();
  row.stale = false;
  drawHistory(row, history);
  // The change that asked for this fetch (or the service itself, when it is seconds
  // old) may not be written yet: look again shortly.
  const newest = history.transitions[0];
  if (row.retries > 0 && row.status && newest?.to !== row.status) {
    row.retries -= 1;
    row.stale = true;
    clearTimeout(row.timer);
    row.timer = setTimeout(() => wantHistory(current, row, true), 1_000);
  } else {
    row.retries = 0;
  }
}

function drawHistory(row, { transitions, truncated, uptime, latency }) {
  const el = row.el;
  el.dataset.history = "loaded";

  const windows = [["24 h", uptime.day], ["7 d", uptime.week], ["30 d", uptime.month]];
  el.querySelector(".uptime").replaceChildren(...windows.flatMap(([label, window], i) => {
    const span = document.createElement("span");
    const recorded = window.recordedMs > 0;
    span.textContent = `${label} ${recorded ? percent(window.serving) : "–"}`;
    const held = window.maintenanceMs > 0
      ? `; ${ago(window.maintenanceMs)} in maintenance, counted apart` : "";
    span.title = recorded
      ? `Serving ${percent(window.serving)} of the ${ago(window.recordedMs)} recorded in the last ${label}${held}`
      : `Nothing recorded in the last ${label}${held}`;
    if (held) span.dataset.maintenance = window.maintenanceMs;
    return i === 0 ? [span] : [" · ", span];
  }));

  const bar = el.querySelector(".bar");
  const buckets = uptime.buckets;
  if (buckets.length > 0) {
    const span = buckets.at(-1).endUnixMs - buckets[0].startUnixMs;
    bar.setAttribute("aria-label",
      `The last ${ago(span)} in ${buckets.length} parts, each with its worst status`);
  }
  bar.replaceChildren(...buckets.map((bucket) => {
    const mark = document.createElement("li");
    mark.dataset.worst = bucket.worst;
    mark.title = bucketText(bucket);
    return mark;
  }));

  const latencyEl = el.querySelector(".latency");
  latencyEl.hidden = latency.length === 0;
  // A monitored upstream whose first probes are not written yet: look again soon.
  if (row.upstream && latency.length === 0) row.loadedAt -= HISTORY_EVERY_MS - 5_000;
  if (latency.length > 0) {
    const last = latency.at(-1);
    const ms = (value) => `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
    const text = document.createElement("span");
    text.textContent = `p50 ${ms(last.p50Ms)} · p99 ${ms(last.p99Ms)}`;
    text.title = `The last minute's probes (${last.probes})`;
    const line = sparkline(latency.map((minute) => minute.p99Ms));
    const label = document.createElement("span");
    label.textContent = `p99 by minute, last ${latency.length} min`;
    latencyEl.replaceChildren(text, " ", line, " ", label);
  }

  row.changes = { shown: transitions.length, truncated, latestAt: transitions[0]?.atUnixMs };
  summarizeChanges(row);
  el.querySelector(".changes ol").replaceChildren(...transitions.map((change, i) => {
    const item = document.createElement("li");
    item.dataset.cause = change.cause;
    item.dataset.to = change.to;
    // How long the status it changed to lasted: until the next (newer) change, or now.
    const end = i === 0 ? Date.now() : transitions[i - 1].atUnixMs;
    const lasted = `for ${ago(end - change.untilUnixMs)}${i === 0 ? " so far" : ""}`;
    const what = change.count > 1
      ? `${change.count} changes, worst ${word(change.worst)}, then ${word(change.to)}`
      : `${word(change.from)} → ${word(change.to)}`;
    const why = CAUSES[change.cause] ?? change.cause;
    // In a fleet, which replica saw it.
    const by = view?.fleet && change.replica ? ` (${change.replica})` : "";
    const held = change.inMaintenance ? " · in maintenance" : "";
    if (change.inMaintenance) item.dataset.maintenance = "true";
    const time = document.createElement("time");
    time.dateTime = new Date(change.atUnixMs).toISOString();
    time.textContent = stamp.format(change.atUnixMs);
    item.append(time, ` ${what}, ${lasted} · ${why}${by}${change.detail ? `: ${change.detail}` : ""}${held}`);
    return item;
  }));
}

function bucketText({ startUnixMs, endUnixMs, worst, serving, changes }) {
  const span = `${clock.format(startUnixMs)}–${clock.format(endUnixMs)}`;
  if (worst === "SERVICE_UNKNOWN" && changes === 0 && serving === 0) return `${span}: nothing recorded`;
  const moves = changes === 0 ? "no change" : `${changes} change${changes === 1 ? "" : "s"}`;
  return `${span}: worst ${word(worst)}, serving ${percent(serving)} of the time, ${moves}`;
}

/** A line of `values` (oldest first), scaled to its own maximum. */
function sparkline(values) {
  const svgNS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 60 16");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  const max = Math.max(...values) || 1;
  const y = (value) => (15 - (value / max) * 14).toFixed(1);
  const step = 60 / Math.max(values.length - 1, 1);
  const points = values.length === 1
    ? `0,${y(values[0])} 60,${y(values[0])}`
    : values.map((value, i) => `${(i * step).toFixed(1)},${y(value)}`).join(" ");
  const line = document.createElementNS(svgNS, "polyline");
  line.setAttribute("points", points);
  svg.append(line);
  return svg;
}

// --- Upstreams, List, the view ---------------------------------------------------------

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
  for (const row of current.rows.values()) {
    const report = reports[row.name];
    if (!report && !row.upstream) continue;
    const detail = row.el.querySelector(".detail");
    detail.hidden = !report;
    if (!report) {
      row.upstream = false;
      continue;
    }
    if (!row.upstream) {
      // Now known to be monitored: its history should include the probe latency.
      row.upstream = true;
      wantHistory(current, row, true);
    }
    const parts = [`upstream ${report.target} (${report.protocol}, ${report.mode})`];
    if (report.answer) parts.push(`answered ${report.answer}`);
    if (report.latency_ms != null) parts.push(`${report.latency_ms.toFixed(1)} ms`);
    if (report.probed_by) parts.push(`probed by ${report.probed_by}`);
    const error = document.createElement("span");
    error.className = "error";
    error.textContent = report.error ? ` · last error: ${report.error}` : "";
    detail.replaceChildren(parts.join(" · "), error);
  }
}

/**
 * What the endpoint says of itself (`GET /instance`): its history store away (changes
 * kept in memory until it returns) or history kept in memory only, above the list; the
 * replica that answers and its fleet, below it. Not healthweb: nothing is said.
 */
async function loadInstance(current) {
  let instance = null;
  try {
    const response = await fetch(`${current.endpoint}/instance`, { cache: "no-store" });
    if (response.ok) instance = await response.json();
  } catch {
    // unreachable: the rows already say so
  }
  if (current.stopped) return;
  const history = instance?.history;
  let text = "";
  if (history && !history.up) {
    const since = history.down_since_ms ? ` since ${stamp.format(history.down_since_ms)}` : "";
    const kept = `${history.buffered} change${history.buffered === 1 ? "" : "s"}`;
    const dropped = history.dropped ? `, ${history.dropped} dropped` : "";
    text = `History store unreachable${since}: ${kept} kept in memory until it returns${dropped}. ` +
      "Statuses are live; history may be behind.";
  } else if (history?.fallback) {
    text = `History is kept in memory only, and lost when healthweb stops: ${history.fallback}.`;
  }
  const store = $("#store");
  store.textContent = text;
  store.title = history?.error ?? "";
  store.hidden = !text;
  const fleet = instance?.fleet;
  current.fleet = Boolean(fleet);
  const replica = $("#replica");
  replica.hidden = !fleet;
  if (fleet) {
    const count = fleet.replicas.length;
    const probes = fleet.probing.length;
    replica.textContent = `Served by replica ${instance.replica}, one of ${count} sharing ` +
      `${history.location}; it probes ${probes} upstream${probes === 1 ? "" : "s"}, the others the rest.`;
  }
}

/** Alerts and maintenance windows (`GET /alerts`); not healthweb: nothing is said. */
async function loadAlerts(current) {
  let alerts = null;
  try {
    const response = await fetch(`${current.endpoint}/alerts`, { cache: "no-store" });
    if (response.ok) alerts = await response.json();
  } catch {
    // unreachable: the rows already say so
  }
  if (current.stopped) return;
  for (const row of current.rows.values()) {
    const info = alerts?.services?.[row.name];
    const el = row.el.querySelector(".alert");
    const parts = [];
    if (info?.maintenance_until_ms) parts.push(`maintenance until ${stamp.format(info.maintenance_until_ms)}`);
    if (info?.firing) parts.push(`alert firing since ${stamp.format(info.firing.since_ms)}`);
    const last = info?.last;
    if (last) {
      const when = last.at_ms ? ` at ${stamp.format(last.at_ms)}` : "";
      parts.push(`last ${last.kind} notice to ${last.receiver}: ${last.state}${when}`);
    }
    el.textContent = parts.join(" · ");
    el.title = last?.outcome ?? "";
    el.hidden = parts.length === 0;
    el.dataset.firing = Boolean(info?.firing);
    el.dataset.maintenance = Boolean(info?.maintenance_until_ms);
  }
}

function upstreamsSoon(current) {
  if (current.upstreamsTimer) return;
  current.upstreamsTimer = setTimeout(() => {
    current.upstreamsTimer = 0;
    loadUpstreams(current);
  }, 100);
}

async function refresh(current) {
  try {
    const statuses = await current.client.list();
    if (current.stopped) return;
    addRows(current, Object.keys(statuses));
    // Rows without a Watch take their status from List; a watched row's stream is fresher.
    for (const row of current.rows.values()) {
      if (row.handle) continue;
      const status = Object.hasOwn(statuses, row.name) ? statuses[row.name] : "SERVICE_UNKNOWN";
      render(row, { status, state: "listed" });
    }
    document.body.dataset.endpointState = "ok";
    summarizeSoon();
    balance(current);
    upstreamsSoon(current);
  } catch (err) {
    if (current.stopped) return;
    const why = err.code ? `${err.code}: ${err.message}` : String(err);
    show(`Cannot reach ${current.endpoint} (${why}). Retrying…`, "unreachable");
  }
  if (!current.stopped) current.timer = setTimeout(() => refresh(current), LIST_EVERY_MS);
}

function stop(current) {
  current.stopped = true;
  clearTimeout(current.timer);
  clearTimeout(current.balanceTimer);
  clearTimeout(current.upstreamsTimer);
  current.observer.disconnect();
  for (const row of current.rows.values()) {
    row.handle?.close();
    clearTimeout(row.timer);
  }
}

function start(endpoint) {
  if (view) stop(view);
  $("#services").replaceChildren();
  $("#endpoint").value = endpoint;
  delete document.body.dataset.history;
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
  const current = {
    client, endpoint, rows: new Map(), byElement: new WeakMap(), visible: new Set(),
    queue: [], active: 0, noHistory: false, monitors: false, fleet: false,
    timer: 0, balanceTimer: 0, upstreamsTimer: 0, stopped: false,
  };
  // Rows count as in view a little before they scroll in, so they arrive filled.
  current.observer = new IntersectionObserver((entries) => seen(current, entries), { rootMargin: "100px 0px" });
  view = current;
  refresh(current);
  loadInstance(current);
  loadAlerts(current);
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
setInterval(() => view && loadInstance(view), INSTANCE_EVERY_MS);
setInterval(() => view && loadAlerts(view), ALERTS_EVERY_MS);
// Rows in view whose history has grown old.
setInterval(() => {
  for (const row of view?.visible ?? []) wantHistory(view, row);
}, 5_000);

try {
  await init();
  start(endpointFromUrl());
} catch (err) {
  show(`This browser could not load the WebAssembly client: ${err.message}`, "unreachable");
}
