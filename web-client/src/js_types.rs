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
  /** Calls `onUpdate` at once with the current status, then on every change, until `close()`. */
  watch(service: string, onUpdate: (update: WatchUpdate) => void): WatchHandle;
}
"#;
