// Peer: @grpc/grpc-js with grpc-health-check, as their READMEs show them.
// Usage: node grpc_js.mjs PORT. Native gRPC (h2c) only. "" and "bench" are SERVING;
// SIGUSR1 flips "bench".
import grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";

const port = process.argv[2] ?? "0";
const health = new HealthImplementation({ "": "SERVING", bench: "SERVING" });
const server = new grpc.Server();
health.addToServer(server);
let serving = true;
process.on("SIGUSR1", () => {
  serving = !serving;
  health.setStatus("bench", serving ? "SERVING" : "NOT_SERVING");
});
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) throw err;
  console.error(`listening on http://127.0.0.1:${bound}`);
});
