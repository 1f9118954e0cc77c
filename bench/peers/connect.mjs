// Peer: @connectrpc/connect-node serving grpc.health.v1.Health over gRPC and
// gRPC-Web (and the Connect protocol), as the Connect docs show it.
// Usage: node connect.mjs H2C_PORT H1_PORT. Node's cleartext http2 server takes no
// HTTP/1.1, so HTTP/1.1 gets a second port with the same handler.
// "" and "bench" are SERVING; SIGUSR1 flips "bench".
//
// No code generation step: the service is built at run time from a
// FileDescriptorProto written out below (proto/grpc/health/v1/health.proto).
import http from "node:http";
import http2 from "node:http2";
import { EventEmitter, once } from "node:events";
import { create, createFileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";

const STRING = 9, MESSAGE = 11, ENUM = 14, OPTIONAL = 1, REPEATED = 3;
const P = ".grpc.health.v1.";
const field = (name, number, type, extra = {}) =>
  ({ name, number, type, label: OPTIONAL, jsonName: name, ...extra });
const file = create(FileDescriptorProtoSchema, {
  name: "grpc/health/v1/health.proto",
  package: "grpc.health.v1",
  syntax: "proto3",
  messageType: [
    { name: "HealthCheckRequest", field: [field("service", 1, STRING)] },
    {
      name: "HealthCheckResponse",
      field: [field("status", 1, ENUM, { typeName: `${P}HealthCheckResponse.ServingStatus` })],
      enumType: [{
        name: "ServingStatus",
        value: [
          { name: "UNKNOWN", number: 0 }, { name: "SERVING", number: 1 },
          { name: "NOT_SERVING", number: 2 }, { name: "SERVICE_UNKNOWN", number: 3 },
        ],
      }],
    },
    { name: "HealthListRequest" },
    {
      name: "HealthListResponse",
      field: [field("statuses", 1, MESSAGE, {
        label: REPEATED, typeName: `${P}HealthListResponse.StatusesEntry`,
      })],
      nestedType: [{
        name: "StatusesEntry",
        field: [field("key", 1, STRING), field("value", 2, MESSAGE, { typeName: `${P}HealthCheckResponse` })],
        options: { mapEntry: true },
      }],
    },
  ],
  service: [{
    name: "Health",
    method: [
      { name: "Check", inputType: `${P}HealthCheckRequest`, outputType: `${P}HealthCheckResponse` },
      { name: "List", inputType: `${P}HealthListRequest`, outputType: `${P}HealthListResponse` },
      { name: "Watch", inputType: `${P}HealthCheckRequest`, outputType: `${P}HealthCheckResponse`, serverStreaming: true },
    ],
  }],
});
const Health = createFileRegistry(file, () => undefined).getService("grpc.health.v1.Health");

const SERVING = 1, NOT_SERVING = 2, SERVICE_UNKNOWN = 3;
const statuses = new Map([["", SERVING], ["bench", SERVING]]);
const changes = new EventEmitter();
changes.setMaxListeners(0);
const set = (name, status) => { statuses.set(name, status); changes.emit("change", name); };

const routes = (router) => router.service(Health, {
  check(req) {
    const status = statuses.get(req.service);
    if (status === undefined) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
    return { status };
  },
  list() {
    return { statuses: Object.fromEntries([...statuses].map(([k, status]) => [k, { status }])) };
  },
  async *watch(req, ctx) {
    let last;
    for (;;) {
      const status = statuses.get(req.service) ?? SERVICE_UNKNOWN;
      if (status !== last) { last = status; yield { status }; }
      const [name] = await once(changes, "change", { signal: ctx.signal });
      if (name !== req.service) continue;
    }
  },
});
const handler = connectNodeAdapter({ routes, grpc: true, grpcWeb: true, connect: true });

let serving = true;
process.on("SIGUSR1", () => { serving = !serving; set("bench", serving ? SERVING : NOT_SERVING); });

const [h2Port = "0", h1Port = "0"] = process.argv.slice(2);
const h2 = http2.createServer(handler).listen(Number(h2Port), "127.0.0.1", () =>
  console.error(`listening on http://127.0.0.1:${h2.address().port}`));
const h1 = http.createServer(handler).listen(Number(h1Port), "127.0.0.1", () =>
  console.error(`http/1.1 listening on http://127.0.0.1:${h1.address().port}`));
