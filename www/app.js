// The status page: every service of one healthweb endpoint on one stream (WatchAll: a
// snapshot, then each change), and what History remembers of each row in view: uptime
// over 24 h, 7 d and 30 d, a bar of the last day coloured by the worst status of each
// half hour, the latest transitions, and for monitored upstreams their probe latency.
// The endpoint lives in the URL (?endpoint=...) so a link shares the view.
//
// Made for ten thousand services: one stream carries every status, and only the rows in
// view are in the DOM (a virtual list: each row's height is measured once drawn, the
// others estimated, and the rows are placed at their offsets). History is fetched for
// rows as they come into view, HISTORY_CONCURRENCY rows at a time, and again when their
// status changes. A filter box (by name), a status filter and "not serving first" order
// the list; the counts by status stand above it. What healthweb says of itself
// (`GET /instance`) is shown too: a history store that is away, history kept in memory
// only, and which replica of a fleet answers; and its alerts (`GET /alerts`): per row, an
// alert firing and the last notification's fate, or the maintenance window that holds
// its alerts.

import init, { HealthClient } from "./pkg/healthweb_client.js";

const TIMEOUT_MS = 5_000;
const UPSTREAMS_EVERY_MS = 2_000;
const INSTANCE_EVERY_MS = 5_000;
const ALERTS_EVERY_MS = 5_000;
const HISTORY_CONCURRENCY = 2;
const HISTORY_EVERY_MS = 60_000; // a row in view gets fresh history this often
const HISTORY_AFTER_CHANGE_MS = 1_500; // the server writes a change as it hears it
const HISTORY_RETRIES = 5; // looks for a change not yet written, a second apart
const TRANSITIONS_SHOWN = 20;
const SETTLE_MS = 150; // rows that only fly past while scrolling cost nothing
const OVERSCAN_PX = 300; // rows drawn beyond the screen, so that they arrive filled
const GAP_PX = 8; // between rows (style.css: #services gap)

const WORDS = {
  SERVING: ["✓", "Serving"],
  NOT_SERVING: ["✕", "Not serving"],
  UNKNOWN: ["?", "Unknown"],
  SERVICE_UNKNOWN: ["∅", "Not known to the server"],
};
const STATES = {
  live: "● live",
  reconnecting: "↻ reconnecting…",
  down: "✕ down, retrying",
};
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
  if (!row.el) return;
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
  for (const row of view?.drawn ?? []) since(row);
}

// --- The rows: data for every service, an element for those in view -------------------

function newRow(name, status) {
  return {
    name, status, changedAt: Date.now(), seenChange: false, el: null, height: 0, index: 0,
    visible: false, settle: 0,
    // Retries also for the first fetch: a service seconds old may not be written yet.
    // Whether `/upstreams` has said if it is monitored: its History waits for that, to
    // ask for the probe latency of an upstream.
    reported: false, upstream: false, report: null, alerts: null, history: null, historyError: "", loadedAt: 0, stale: true,
    queued: false, retries: HISTORY_RETRIES, timer: 0, changes: null,
  };
}

/** A row's element, made when it comes into view and filled from what the row holds. */
function draw(current, row) {
  const el = $("#service-row").content.firstElementChild.cloneNode(true);
  el.dataset.service = row.name;
  const label = el.querySelector(".name");
  label.textContent = row.name === "" ? "(whole server)" : row.name;
  label.classList.toggle("server", row.name === "");
  row.el = el;
  current.byElement.set(el, row);
  paintStatus(row);
  paintState(current, row);
  if (row.history) drawHistory(row, row.history);
  else if (row.historyError) el.dataset.history = row.historyError;
  if (row.report) drawReport(row);
  if (row.alerts) drawAlerts(row);
  since(row);
  return el;
}

function paintStatus(row) {
  if (!row.el) return;
  const [icon, text] = WORDS[row.status] ?? ["?", row.status];
  row.el.dataset.status = row.status;
  row.el.querySelector(".icon").textContent = icon;
  row.el.querySelector(".word").textContent = text;
}

function paintState(current, row) {
  if (!row.el) return;
  row.el.dataset.state = current.state;
  const stateEl = row.el.querySelector(".state");
  stateEl.textContent = STATES[current.state] ?? current.state;
  stateEl.title = current.why;
}

/** One message of the stream: a snapshot's part (`reset` first) or changes. */
function apply(current, { reset, statuses, synced, state, error }) {
  const why = error ? `${error.code}: ${error.message}` : "";
  if (state !== current.state || why !== current.why) {
    current.state = state;
    current.why = why;
    for (const row of current.drawn) paintState(current, row);
  }
  if (error) {
    if (!current.synced) show(`Cannot reach ${current.endpoint} (${why}). Retrying…`, "unreachable");
    return;
  }
  if (reset) {
    current.incoming = new Map();
    current.synced = false;
  }
  // A snapshot is gathered whole before it replaces what is shown.
  const target = current.incoming ?? current.rows;
  for (const { service, status } of statuses) {
    if (target === current.incoming) {
      target.set(service, status);
    } else {
      changed(current, service, status);
    }
  }
  if (synced && current.incoming) {
    const incoming = current.incoming;
    current.incoming = null;
    for (const name of [...current.rows.keys()]) {
      if (!incoming.has(name)) changed(current, name, "SERVICE_UNKNOWN");
    }
    for (const [name, status] of incoming) changed(current, name, status);
  }
  if (synced && !current.synced) {
    current.synced = true;
    document.body.dataset.endpointState = "ok";
    upstreamsSoon(current);
  }
  layoutSoon(current);
}

/** `name` is now `status` (SERVICE_UNKNOWN: gone from the server, and from the list). */
function changed(current, name, status) {
  let row = current.rows.get(name);
  if (status === "SERVICE_UNKNOWN") {
    if (!row) return;
    current.rows.delete(name);
    clearTimeout(row.timer);
    current.reorder = true;
    return;
  }
  if (!row) {
    row = newRow(name, status);
    current.rows.set(name, row);
    current.reorder = true;
    return;
  }
  if (row.status === status) return;
  row.status = status;
  row.seenChange = true;
  row.changedAt = Date.now();
  // Its place moves only when the order or the filter looks at statuses.
  if (current.problemsFirst || current.statusFilter) current.reorder = true;
  paintStatus(row);
  since(row);
  historyAfterChange(current, row);
  if (row.upstream && row.el) upstreamsSoon(current);
}

/** The rows shown, in order: the filters applied, not serving first on request. */
function order(current) {
  const text = current.nameFilter.toLowerCase();
  const rows = [...current.rows.values()].filter((row) =>
    (!text || row.name.toLowerCase().includes(text)) &&
    (!current.statusFilter || row.status === current.statusFilter));
  const rank = (row) => (current.problemsFirst && row.status !== "SERVING" ? 0 : 1);
  rows.sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  rows.forEach((row, i) => { row.index = i; });
  current.shown = rows;
  current.reorder = false;
  offsets(current);
}

/** Where each shown row starts, from the heights measured (or the estimate). */
function offsets(current) {
  const tops = new Float64Array(current.shown.length + 1);
  for (let i = 0; i < current.shown.length; i += 1) {
    tops[i + 1] = tops[i] + (current.shown[i].height || current.estimate || 120) + GAP_PX;
  }
  current.tops = tops;
  $("#services").style.height = `${Math.max(0, tops[current.shown.length] - GAP_PX)}px`;
}

/** The first shown row that ends below `y`. */
function firstBelow(tops, y) {
  let low = 0;
  let high = tops.length - 1;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (tops[mid + 1] <= y) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Puts the rows in view (and OVERSCAN_PX around) in the DOM, and only them. */
function layout(current) {
  current.layoutFrame = 0;
  if (current.stopped) return;
  if (current.reorder) order(current);
  const list = $("#services");
  for (let pass = 0; pass < 3; pass += 1) {
    const listTop = list.getBoundingClientRect().top;
    const from = Math.max(0, -listTop - OVERSCAN_PX);
    const to = -listTop + innerHeight + OVERSCAN_PX;
    const wanted = new Set();
    const count = current.shown.length;
    for (let i = count === 0 ? 0 : firstBelow(current.tops, from); i < count && current.tops[i] < to; i += 1) {
      wanted.add(current.shown[i]);
    }
    for (const row of current.drawn) {
      if (!wanted.has(row)) hide(current, row);
    }
    const fresh = [];
    for (const row of wanted) {
      if (!row.el) {
        list.append(draw(current, row));
        fresh.push(row);
      }
      current.drawn.add(row);
    }
    // Measured once drawn; a row whose height differs from its estimate moves the rest.
    let moved = false;
    for (const row of fresh) {
      const height = row.el.offsetHeight;
      if (height !== row.height) {
        row.height = height;
        moved = true;
      }
      current.estimate ||= height;
      current.resize.observe(row.el);
      row.visible = true;
      clearTimeout(row.settle);
      // Only once it stays in view: rows that fly past while scrolling cost nothing.
      row.settle = setTimeout(() => (row.reported ? wantHistory(current, row) : upstreamsSoon(current)), SETTLE_MS);
    }
    if (moved) offsets(current);
    for (const row of current.drawn) row.el.style.transform = `translateY(${current.tops[row.index]}px)`;
    if (!moved) break;
  }
  summarizeSoon();
}

function hide(current, row) {
  current.drawn.delete(row);
  current.resize.unobserve(row.el);
  row.el.remove();
  row.el = null;
  row.visible = false;
  clearTimeout(row.settle);
}

function layoutSoon(current) {
  if (!current.layoutFrame) current.layoutFrame = requestAnimationFrame(() => layout(current));
}

/** A drawn row grew or shrank (history arrived, its changes opened): the rest move. */
function resized(current, entries) {
  let moved = false;
  for (const entry of entries) {
    const row = current.byElement.get(entry.target);
    if (!row?.el) continue;
    const height = row.el.offsetHeight;
    if (height !== row.height) {
      row.height = height;
      moved = true;
    }
  }
  if (moved) {
    offsets(current);
    layoutSoon(current);
  }
}

/** The counts by status over the list, and how many the filters show. */
function summarize() {
  if (!view || document.body.dataset.endpointState === "unreachable" || !view.synced) return;
  const counts = new Map();
  for (const { status } of view.rows.values()) counts.set(status, (counts.get(status) ?? 0) + 1);
  const parts = ["NOT_SERVING", "UNKNOWN", "SERVING"].filter((s) => counts.has(s))
    .map((status) => `${counts.get(status)} ${word(status).toLowerCase()}`);
  const total = view.rows.size;
  const shown = view.shown.length;
  const filtered = shown === total ? "" : ` (${shown} shown)`;
  show(total === 0
    ? `${view.endpoint} reports no services.`
    : `${total} service${total === 1 ? "" : "s"} at ${view.endpoint}: ${parts.join(", ")}${filtered}`, "ok");
  for (const [status, n] of [["", total], ...["SERVING", "NOT_SERVING", "UNKNOWN"].map((s) => [s, counts.get(s) ?? 0])]) {
    const option = document.querySelector(`#status-filter option[value="${status}"]`);
    if (option) option.textContent = `${option.dataset.label} (${n})`;
  }
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
    row.historyError = `${err.code}: ${err.message}`;
    if (row.el) drawHistoryError(row);
    row.loadedAt = Date.now() - HISTORY_EVERY_MS + 10_000; // again in 10 s
    return;
  }
  if (current.stopped) return;
  row.loadedAt = Date.now();
  row.stale = false;
  row.history = history;
  row.historyError = "";
  if (row.el) drawHistory(row, history);
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

function drawHistoryError(row) {
  const why = row.historyError;
  if (row.history) {
    row.el.dataset.history = "stale";
    row.el.querySelector(".uptime").title = `Could not refresh: ${why}`;
  } else {
    row.el.dataset.history = "error";
    row.el.querySelector(".uptime").textContent = `No history (${why})`;
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
 * What healthweb's upstream monitor saw last (`GET /upstreams?service=...`), under each
 * monitored service in view: the target, the upstream's own answer, latency and the last
 * error. Asked for the rows in view only, as History is: a fleet of 10,000 would be
 * megabytes every time. An endpoint that is not healthweb, or monitors none of them,
 * simply has no details.
 */
async function loadUpstreams(current) {
  const rows = [...current.drawn];
  if (rows.length === 0) return;
  const query = rows.map((row) => `service=${encodeURIComponent(row.name)}`).join("&");
  let reports = {};
  try {
    const response = await fetch(`${current.endpoint}/upstreams?${query}`, { cache: "no-store" });
    if (response.ok) reports = await response.json();
  } catch {
    // unreachable: the rows already say so, and their History will too
  }
  if (current.stopped) return;
  // Whether the endpoint monitors anything, for the refresh every two seconds: learnt from
  // the rows in view, so rows in view that are not monitored must not unlearn it.
  if (Object.keys(reports).length > 0) current.monitors = true;
  for (const row of rows) {
    const report = reports[row.name] ?? null;
    row.reported = true;
    row.report = report;
    // Newly monitored: its history should include the probe latency, again if it came without.
    if (report && !row.upstream) row.stale = true;
    row.upstream = Boolean(report);
    if (row.el) drawReport(row);
    wantHistory(current, row);
  }
}

function drawReport(row) {
  const { report } = row;
  const detail = row.el.querySelector(".detail");
  detail.hidden = !report;
  if (!report) return;
  const parts = [`upstream ${report.target} (${report.protocol}, ${report.mode})`];
  if (report.answer) parts.push(`answered ${report.answer}`);
  if (report.latency_ms != null) parts.push(`${report.latency_ms.toFixed(1)} ms`);
  if (report.probed_by) parts.push(`probed by ${report.probed_by}`);
  const error = document.createElement("span");
  error.className = "error";
  error.textContent = report.error ? ` · last error: ${report.error}` : "";
  detail.replaceChildren(parts.join(" · "), error);
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
    const info = alerts?.services?.[row.name] ?? null;
    if (!info && !row.alerts) continue;
    row.alerts = info;
    if (row.el) drawAlerts(row);
  }
}

/** A row's alert line: an alert firing, the last notice's fate, a maintenance window. */
function drawAlerts(row) {
  const info = row.alerts;
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

function upstreamsSoon(current) {
  if (current.upstreamsTimer) return;
  current.upstreamsTimer = setTimeout(() => {
    current.upstreamsTimer = 0;
    loadUpstreams(current);
  }, 100);
}

function stop(current) {
  current.stopped = true;
  current.handle.close();
  cancelAnimationFrame(current.layoutFrame);
  clearTimeout(current.upstreamsTimer);
  current.resize.disconnect();
  for (const row of current.rows.values()) {
    clearTimeout(row.timer);
    clearTimeout(row.settle);
  }
}

function start(endpoint) {
  if (view) stop(view);
  $("#services").replaceChildren();
  $("#services").style.height = "0";
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
    client, endpoint, rows: new Map(), byElement: new WeakMap(), shown: [], tops: new Float64Array(1),
    drawn: new Set(), incoming: null, synced: false, state: "reconnecting", why: "", estimate: 0,
    reorder: true, layoutFrame: 0, ...filters(),
    queue: [], active: 0, noHistory: false, monitors: false, fleet: false, upstreamsTimer: 0, stopped: false,
  };
  current.resize = new ResizeObserver((entries) => resized(current, entries));
  view = current;
  current.handle = client.watchAll((update) => {
    if (!current.stopped) apply(current, update);
  });
  upstreamsSoon(current);
  loadInstance(current);
  loadAlerts(current);
}

/** What the filter box, the status filter and "not serving first" ask for. */
function filters() {
  return {
    nameFilter: $("#name-filter").value.trim(),
    statusFilter: $("#status-filter").value,
    problemsFirst: $("#problems-first").checked,
  };
}

function refilter() {
  if (!view) return;
  Object.assign(view, filters());
  view.reorder = true;
  layoutSoon(view);
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
for (const id of ["#name-filter", "#status-filter", "#problems-first"]) $(id).addEventListener("input", refilter);
$("#filters").addEventListener("submit", (event) => event.preventDefault());
addEventListener("scroll", () => view && layoutSoon(view), { passive: true });
addEventListener("resize", () => view && layoutSoon(view));
setInterval(tick, 1000);
// Errors and latencies change without a status change; refresh them while there are any.
setInterval(() => view?.monitors && loadUpstreams(view), UPSTREAMS_EVERY_MS);
setInterval(() => view && loadInstance(view), INSTANCE_EVERY_MS);
setInterval(() => view && loadAlerts(view), ALERTS_EVERY_MS);
// Rows in view whose history has grown old.
setInterval(() => {
  for (const row of view?.drawn ?? []) wantHistory(view, row);
}, 5_000);

try {
  await init();
  start(endpointFromUrl());
} catch (err) {
  show(`This browser could not load the WebAssembly client: ${err.message}`, "unreachable");
}
