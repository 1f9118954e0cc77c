#!/usr/bin/env bash
# The browser module's size as it ships, for both builds, against their budgets:
#   web-client/size.sh DEFAULT_PKG LITE_PKG
# Each PKG is a web-client/build.sh output. Prints the .wasm and the JS glue, gzip -9 and
# Brotli (quality 11), in KB (1000 bytes); exits 1 if a build is over its gzip budget.
set -euo pipefail

DEFAULT_BUDGET=100000 # tonic + tonic-web-wasm-client (the default build)
LITE_BUDGET=40000     # the fetch-lite build

gz() { gzip -9c "$1" | wc -c; }
br() { brotli -c -q 11 "$1" | wc -c; }
kb() { awk -v b="$1" 'BEGIN { printf "%.1f KB", b / 1000 }'; }

status=0
report() {
  local name=$1 pkg=$2 budget=$3
  local wasm=$pkg/healthweb_client_bg.wasm js=$pkg/healthweb_client.js
  for f in "$wasm" "$js"; do
    [ -f "$f" ] || { echo "size.sh: $f is missing (make pkg pkg-lite builds it)" >&2; exit 1; }
  done
  local wg jg wb jb
  wg=$(gz "$wasm"); jg=$(gz "$js"); wb=$(br "$wasm"); jb=$(br "$js")
  local verdict="within"
  if [ $((wg + jg)) -gt "$budget" ]; then verdict="OVER"; status=1; fi
  printf '%-8s gzip -9: wasm %s + JS glue %s = %s (budget %s, %s)\n' \
    "$name" "$(kb "$wg")" "$(kb "$jg")" "$(kb $((wg + jg)))" "$(kb "$budget")" "$verdict"
  printf '%-8s brotli:  wasm %s + JS glue %s = %s\n' \
    "" "$(kb "$wb")" "$(kb "$jb")" "$(kb $((wb + jb)))"
}

report default "${1:?usage: size.sh DEFAULT_PKG LITE_PKG}" "$DEFAULT_BUDGET"
report lite "${2:?usage: size.sh DEFAULT_PKG LITE_PKG}" "$LITE_BUDGET"
exit "$status"
