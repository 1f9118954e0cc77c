// The two lines a Vite app needs for a wasm-pack `--target bundler` package: the wasm
// plugin (ES module integration for the .wasm import) and a target with top-level await.
import wasm from "vite-plugin-wasm";

export default {
  plugins: [wasm()],
  build: { target: "es2022" },
  logLevel: "warn",
};
