#!/usr/bin/env bash
# The browser tests, against a real `healthweb serve`:
#   1. the wasm client's JavaScript API, with wasm-bindgen-test in headless Chromium,
#      once per browser build: the default (tonic-web-wasm-client) and fetch-lite;
#   2. the status page end to end, with playwright-core (e2e.mjs, and alerts.mjs for
#      alerts and maintenance windows), on each build as it ships (web-client/build.sh);
#   3. the module embedded in a Vite app (vite-app/), built and opened in Chromium.
# Needs cargo with the wasm32-unknown-unknown target, wasm-pack, wasm-bindgen-cli at the
# version in Cargo.lock, curl, node and npm; installs Chromium with apt when missing.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
here=tests/browser
tmp=$(mktemp -d)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "run.sh: installing chromium and chromium-driver with apt" >&2
  sudo=$([ "$(id -u)" -eq 0 ] || echo sudo)
  timeout 600 $sudo apt-get update -qq
  timeout 900 $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver
fi

# `make test` passes the binary its `cargo test` built; run alone, this builds one.
if [ -z "${HEALTHWEB_BIN:-}" ]; then
  cargo build --bin healthweb
  HEALTHWEB_BIN=${CARGO_TARGET_DIR:-$root/target}/debug/healthweb
fi
export HEALTHWEB_BIN
web-client/build.sh web www/pkg

# A free port for wasm-bindgen-test's page, so the server can allow exactly that origin.
free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

# The complete lines of a file another process is still writing: its last line
# may be only half written, and a half-written address is a wrong address.
whole_lines() {
  head -n "$(wc -l <"$1")" "$1"
}

# Waits up to 30 s until `whole_lines FILE` has a line matching the regex.
wait_for_line() {
  local file=$1 regex=$2
  for _ in $(seq 300); do
    whole_lines "$file" | grep -qE "$regex" && return 0
    sleep 0.1
  done
  return 1
}

# Starts `healthweb serve ARGS...`; sets $url and $admin once it listens.
start_server() {
  local log=$tmp/server-$RANDOM.log
  server_log=$log
  "$HEALTHWEB_BIN" serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --history memory --www www "$@" 2>"$log" &
  pids+=($!)
  if wait_for_line "$log" '^listening on ' && wait_for_line "$log" '^admin listening on '; then
    url=$(whole_lines "$log" | sed -n 's/^listening on \(http:[^ ]*\)$/\1/p')
    admin=$(whole_lines "$log" | sed -n 's/^admin listening on \(http:[^ ]*\)$/\1/p')
  fi
  if [ -z "${url:-}" ] || [ -z "${admin:-}" ]; then
    echo "run.sh: healthweb printed no address within 30 s; its stderr:" >&2
    cat "$log" >&2
    exit 1
  fi
}

# --- 1. wasm-bindgen-test --------------------------------------------------------------
# An upstream for the test server to monitor, so History has probe latency to report.
start_server --service pay=SERVING
cat >"$tmp/wasm-tests.toml" <<EOF
[[upstream]]
name = "mirror"
target = "$url"
service = "pay"
interval = "200ms"
timeout = "1s"
EOF
test_port=$(free_port)
url='' admin=''
start_server --service api=SERVING --service db=NOT_SERVING --service flip=SERVING \
  --config "$tmp/wasm-tests.toml" --cors-origin "http://127.0.0.1:$test_port"

# Something that accepts connections and never answers: the deadline test's server.
node -e 'const s = require("net").createServer(() => {}).listen(0, "127.0.0.1", () => console.log(s.address().port))' \
  >"$tmp/hung.port" &
pids+=($!)
wait_for_line "$tmp/hung.port" '^[0-9]+$' || { echo "run.sh: the hung listener did not start" >&2; exit 1; }
hung_port=$(whole_lines "$tmp/hung.port")

# The watch test follows `flip` through its changes. Quiet: at the end the server
# drains first and refuses changes (409), which is no failure.
(
  while true; do
    for status in NOT_SERVING SERVING; do
      curl -fs --max-time 2 -X PUT -H 'content-type: application/json' \
        --data "{\"status\": \"$status\"}" "$admin/services?name=flip" >/dev/null || true
      sleep 0.5
    done
  done
) &
pids+=($!)

# The same suite against each build (wasm-pack hands the feature flags to cargo).
for build in default fetch-lite; do
  features=()
  [ "$build" = fetch-lite ] && features=(--no-default-features --features fetch-lite)
  echo "run.sh: wasm-bindgen tests, $build build" >&2
  HEALTHWEB_TEST_URL=$url \
  HEALTHWEB_TEST_HUNG_URL="http://127.0.0.1:$hung_port" \
  WASM_BINDGEN_TEST_ADDRESS="127.0.0.1:$test_port" \
  WASM_BINDGEN_TEST_WEBDRIVER_JSON="$root/$here/webdriver.json" \
  WASM_BINDGEN_TEST_TIMEOUT=120 \
    timeout 1200 wasm-pack test --headless --chrome --chromedriver "$(command -v chromedriver)" web-client \
    "${features[@]}" || {
    echo "run.sh: the $build build failed its wasm-bindgen tests; the server's stderr:" >&2
    cat "$server_log" >&2
    exit 1
  }
done

# --- 2. the status page end to end ----------------------------------------------------------
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && timeout 300 npm ci --no-audit --no-fund)
fi
timeout 600 node "$here/e2e.mjs"
# Alerts and maintenance windows on the page.
timeout 300 node "$here/alerts.mjs"

# The same page on the fetch-lite module as it ships, so both wasm-opt'd builds run.
web-client/build.sh web www/pkg-lite lite
mkdir "$tmp/www-lite"
find www -maxdepth 1 -type f -exec cp {} "$tmp/www-lite/" \;
cp -r www/pkg-lite "$tmp/www-lite/pkg"
E2E_WWW="$tmp/www-lite" timeout 600 node "$here/e2e.mjs"

# --- 3. the module in a Vite app ---------------------------------------------------------------
# The npm package a bundler takes (default build), then the app's own dependencies, which
# link that package (package.json: file:./healthweb-client).
web-client/build.sh bundler "$here/vite-app/healthweb-client"
if [ ! -d "$here/vite-app/node_modules/vite" ]; then
  (cd "$here/vite-app" && timeout 300 npm ci --no-audit --no-fund)
fi
timeout 600 node "$here/vite-app/test.mjs"
