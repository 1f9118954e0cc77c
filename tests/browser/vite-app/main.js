// What a frontend writes to use the client: import it like any npm package, call Check.
// The server comes from ?endpoint=, so the test can point the built app at its server.
import { HealthClient } from "healthweb-client";

const endpoint = new URLSearchParams(location.search).get("endpoint") ?? "";
const client = new HealthClient(endpoint, { timeoutMs: 5000 });
const output = document.querySelector("#status");

async function check() {
  output.dataset.state = "loading";
  try {
    output.textContent = await client.check("api");
    output.dataset.state = "ok";
  } catch (err) {
    output.textContent = `${err.code}: ${err.message}`;
    output.dataset.state = "error";
  }
}

document.querySelector("#again").addEventListener("click", check);
check();
