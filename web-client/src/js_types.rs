//! The TypeScript declarations of the JavaScript API, written by hand so that each
//! promise and callback says exactly what it carries.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** A service's status as Check and List report it. */
export type ServingStatus = "SERVING" | "NOT_SERVING" | "UNKNOWN";

/** What Watch reports: also `SERVICE_UNKNOWN` while the server does not know the service. */
export type WatchStatus = ServingStatus | "SERVICE_UNKNOWN";

/**
 * How fresh a watched status is:
 * - `live`: a Watch stream is open, changes arrive as they happen;
 * - `reconnecting`: the stream ended or failed, retrying with backoff (status is the last seen);
 * - `polling`: the server has no Watch (UNIMPLEMENTED), so Check is polled every 5 s;
 * - `down`: five attempts in a row failed; still retrying, at the longest backoff (10 s).
 */
export type ConnectionState = "live" | "reconnecting" | "polling" | "down";

/** The gRPC status code names, as the spec spells them. */
export type GrpcCode =
  | "CANCELLED" | "UNKNOWN" | "INVALID_ARGUMENT" | "DEADLINE_EXCEEDED" | "NOT_FOUND"
  | "ALREADY_EXISTS" | "PERMISSION_DENIED" | "RESOURCE_EXHAUSTED" | "FAILED_PRECONDITION"
  | "ABORTED" | "OUT_OF_RANGE" | "UNIMPLEMENTED" | "INTERNAL" | "UNAVAILABLE"
  | "DATA_LOSS" | "UNAUTHENTICATED";

/** Every rejection is one of these: `err.code` is the gRPC code, `err.message` says why. */
export interface HealthError extends Error {
  name: "HealthError";
  code: GrpcCode;
}

export interface HealthClientOptions {
  /** Deadline of each `check` and `list`, sent as `grpc-timeout` and enforced locally. */
  timeoutMs?: number;
  /** Extra headers on every request, for example `{ authorization: "Bearer ..." }`. */
  headers?: Record<string, string>;
}

/** Every service the server knows, with its status. */
export type StatusMap = Record<string, ServingStatus>;

export interface WatchUpdate {
  status: WatchStatus;
  state: ConnectionState;
  /** Why the last attempt failed, when `state` is `reconnecting` or `down`. */
  error?: HealthError;
}

/** One service's status in a `FleetUpdate`; `SERVICE_UNKNOWN`: the service was removed. */
export interface ServiceStatus {
  service: string;
  status: WatchStatus;
}

/**
 * One report of `watchAll`: a message of the stream (the snapshot's, or changes), or,
 * with `statuses` empty and `error` set, a failed attempt.
 */
export interface FleetUpdate {
  /** A snapshot starts: forget every status held before applying `statuses`. */
  reset: boolean;
  /** Apply in order: a snapshot's by name, or changes oldest first. */
  statuses: ServiceStatus[];
  /** The statuses held now are the server's, whole: false on a snapshot's messages before its last. */
  synced: boolean;
  /** Where the stream stands; the client resumes from it by itself after a reconnect. */
  resumeToken: string;
  /** `live` while the stream is open; `reconnecting` or `down` after a failed attempt. */
  state: ConnectionState;
  /** Why the last attempt failed, when `state` is `reconnecting` or `down`. */
  error?: HealthError;
}

/** Why a status changed, as healthweb's History records it. */
export type Cause =
  | "CONFIG"        // the --service flags or the config file, at start
  | "RELOAD"        // the config file, re-read on SIGHUP
  | "ADMIN"         // the admin API (healthweb set / remove, /shutdown, /resume)
  | "MONITOR"       // the upstream monitor's verdict
  | "SHUTDOWN"      // healthweb shutting down
  | "UNCLEAN_STOP"  // healthweb stopped without shutting down: unknown from its last sign of life
  | "PROGRAM"       // a program embedding healthweb's library
  | "UNSPECIFIED";

/** What `history` asks for; every field is optional, and absent means the server's default. */
export interface HistoryOptions {
  /** At most this many transitions, newest first (default 100; the server allows up to 1000). */
  limit?: number;
  /** Only transitions at or after this time (a `Date`, or Unix milliseconds). */
  since?: number | Date;
  /** Only transitions before this time (default: now). */
  until?: number | Date;
  /** How many buckets `uptime.buckets` has (default 48; at most 1440). */
  buckets?: number;
  /** The span those buckets cover, ending now, in seconds (default 86400; at most 30 days). */
  spanSeconds?: number;
  /** Also fetch the last hour of probe latency (monitored upstreams have it): one more request. */
  latency?: boolean;
}

/** One status change; times are Unix milliseconds. */
export interface Transition {
  atUnixMs: number;
  from: WatchStatus;
  to: WatchStatus;
  cause: Cause;
  /** What the cause said, such as the monitor's answer or error; may be "". */
  detail: string;
  /** Above 1 when a flapping service's changes were folded into this entry, from `atUnixMs` to `untilUnixMs`. */
  count: number;
  /** The worst status among the folded changes (`to` when `count` is 1). */
  worst: WatchStatus;
  /** When the last of the folded changes happened (`atUnixMs` when `count` is 1). */
  untilUnixMs: number;
  /** The healthweb replica that saw the change (its `--replica-id`). */
  replica: string;
  /** Whether it happened inside a maintenance window over the service (its alerts held); absent when false. */
  inMaintenance?: boolean;
}

/** How much of a window the service was SERVING. */
export interface UptimeWindow {
  /** 0 to 1, over the time history covers (`recordedMs`). */
  serving: number;
  /** How much of the window history covers, in milliseconds: 0 means no data. */
  recordedMs: number;
  /** Time inside maintenance windows, in milliseconds: apart, neither up nor down. */
  maintenanceMs: number;
}

/** One slice of the uptime bar. */
export interface UptimeBucket {
  startUnixMs: number;
  endUnixMs: number;
  /** The worst status in the slice; `SERVICE_UNKNOWN` where history has nothing. */
  worst: WatchStatus;
  /** 0 to 1, over the slice's recorded time. */
  serving: number;
  /** How many changes fell in the slice. */
  changes: number;
}

export interface Uptime {
  /** The last 24 hours, 7 days and 30 days. */
  day: UptimeWindow;
  week: UptimeWindow;
  month: UptimeWindow;
  /** The bar, oldest first (48 half-hours of the last day unless asked otherwise). */
  buckets: UptimeBucket[];
  /** The status now (`SERVICE_UNKNOWN` when the server no longer has the service). */
  current: WatchStatus;
  /** When history for the service begins. */
  recordedSinceUnixMs: number;
}

/** A monitored upstream's probes in one minute. */
export interface LatencyMinute {
  startUnixMs: number;
  probes: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** What `history` resolves to. */
export interface ServiceHistory {
  /** Newest first. */
  transitions: Transition[];
  /** Whether older transitions in the range were left out by `limit`. */
  truncated: boolean;
  uptime: Uptime;
  /** Oldest first; empty unless `latency: true` was asked and the service is a monitored upstream. */
  latency: LatencyMinute[];
}

export class WatchHandle {
  private constructor();
  free(): void;
  /** Ends the watch: no update follows. Safe to call more than once. */
  close(): void;
}

export class HealthClient {
  free(): void;
  /** `baseUrl`: the server's origin, such as `"https://status.example.com"`; `""` is the page's own. */
  constructor(baseUrl: string, options?: HealthClientOptions);
  /** The status of `service`; `""` (the default) is the server as a whole. Rejects with NOT_FOUND for an unknown service. */
  check(service?: string): Promise<ServingStatus>;
  /** Every service with its status. */
  list(): Promise<StatusMap>;
  /**
   * What healthweb remembers of `service` (`""` is the whole server): its transitions, its
   * uptime over 24 h, 7 d and 30 d with a bar of buckets, and with `latency: true` its probe
   * latency. Rejects with NOT_FOUND for a service the server neither has nor remembers,
   * INVALID_ARGUMENT for an option out of range, UNIMPLEMENTED from a server without History.
   */
  history(service: string, options?: HistoryOptions): Promise<ServiceHistory>;
  /** Calls `onUpdate` at once with the current status, then on every change, until `close()`. */
  watch(service: string, onUpdate: (update: WatchUpdate) => void): WatchHandle;
  /**
   * Every service on one stream (healthweb's `healthweb.v1.Statuses/WatchAll`): a snapshot,
   * then each change, until `close()`. After a reconnect the stream resumes where it stopped,
   * with only the changes missed, or with a new snapshot (`reset`) when the server no longer
   * has them. Reconnects as `watch` does; a server without WatchAll fails with UNIMPLEMENTED.
   */
  watchAll(onUpdate: (update: FleetUpdate) => void): WatchHandle;
}
"#;
