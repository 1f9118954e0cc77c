#!/usr/bin/env bash
# Prints the gzipped size (gzip -9) of the browser client, the .wasm module plus its JS
# glue, and fails when it is over the budget. Usage: web-client/size.sh [PKG_DIR]
# (default www/pkg, as built by `wasm-pack build web-client --target web ...`).
set -euo pipefail

pkg=${1:-www/pkg}
budget=70000 # bytes: 70 KB

gz() { gzip -9c "$1" | wc -c; }
wasm=$(gz "$pkg/healthweb_client_bg.wasm")
js=$(gz "$pkg/healthweb_client.js")
total=$((wasm + js))
kb() { awk -v b="$1" 'BEGIN { printf "%.1f KB", b / 1000 }'; }
echo "healthweb-client, gzip -9: wasm $(kb "$wasm") + JS glue $(kb "$js") = $(kb "$total") (budget $(kb "$budget"))"
if [ "$total" -gt "$budget" ]; then
  echo "over budget by $(kb $((total - budget))): see web-client/README.md, 'Size'" >&2
  exit 1
fi
