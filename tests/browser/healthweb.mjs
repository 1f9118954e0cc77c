// Starting a real `healthweb serve` for the browser tests (e2e.mjs, vite-app/test.mjs).

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

/**
 * Starts `BIN serve ARGS...` with an admin listener, its history in memory unless
 * ARGS name a file (every server would want the same one) or `env` says where, and
 * resolves once it has printed both addresses: `{ proc, url, admin, lines }`. Rejects
 * with the server's whole stderr if it exits, or prints no address within 30 s.
 */
export function startServer(bin, args, env = {}) {
  const named = args.includes("--history") || "XDG_STATE_HOME" in env;
  const history = named ? [] : ["--history", "memory"];
  const proc = spawn(bin, ["serve", "--admin-listen", "127.0.0.1:0", ...history, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
  });
  return new Promise((resolve, reject) => {
    // Whole lines only: a pipe hands over any number of bytes, and an address
    // matched in a chunk that ends mid-line is a cut address.
    const lines = [];
    const found = {};
    const fail = (why) => {
      clearTimeout(timer);
      proc.kill("SIGKILL");
      reject(new Error(`healthweb ${why}; its stderr:\n${lines.join("\n")}`));
    };
    const timer = setTimeout(() => fail("printed no address within 30 s"), 30_000);
    proc.on("exit", (code, signal) => fail(`exited (${code ?? signal})`));
    createInterface({ input: proc.stderr, crlfDelay: Infinity }).on("line", (line) => {
      lines.push(line);
      const [, what, url] = line.match(/^(admin listening|listening) on (https?:\/\/\S+)$/) ?? [];
      if (what) found[what] = url;
      if (found.listening && found["admin listening"]) {
        clearTimeout(timer);
        resolve({ proc, url: found.listening, admin: found["admin listening"], lines });
      }
    });
  });
}
