#!/usr/bin/env bash
# Where the browser module's bytes go, to find what to cut next:
#   web-client/size-report.sh [default|lite]
# Builds the module with symbol names kept (profile wasm-release, strip=debuginfo), runs
# wasm-bindgen and the same wasm-opt passes as build.sh (with -g, so names survive), then
# prints twiggy's largest items and the share of each crate. Needs twiggy
# (`cargo install twiggy --locked`); `make size-report` installs it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${1:-default}
features=()
case $build in
  default) ;;
  lite) features=(--no-default-features --features fetch-lite) ;;
  *) echo "size-report.sh: unknown build '$build' (default or lite)" >&2; exit 2 ;;
esac
tools=web-client/tools
if [ ! -x "$tools/node_modules/.bin/wasm-opt" ]; then
  (cd "$tools" && timeout 600 npm ci --no-audit --no-fund)
fi

target_dir=${CARGO_TARGET_DIR:-$root/target}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
CARGO_PROFILE_WASM_RELEASE_STRIP=debuginfo cargo build --quiet -p healthweb-client --lib \
  --target wasm32-unknown-unknown --profile wasm-release "${features[@]}"
wasm-bindgen --keep-debug --target web --out-dir "$out" \
  "$target_dir/wasm32-unknown-unknown/wasm-release/healthweb_client.wasm"
"$tools/node_modules/.bin/wasm-opt" -g -Oz --converge --ignore-implicit-traps --low-memory-unused \
  "$out/healthweb_client_bg.wasm" -o "$out/named.wasm"

echo "== $build build, after wasm-opt: largest items"
twiggy top -n 15 "$out/named.wasm"
echo
echo "== $build build: code and data by crate (names as twiggy reports them)"
twiggy top -n 1000000 --format csv "$out/named.wasm" | python3 -c '
import collections, csv, re, sys
total, share = 0, collections.Counter()
for row in csv.DictReader(sys.stdin):
    name, size = row["Name"], int(row["ShallowSize"])
    if name.startswith(("custom section", "\"function names\"", "Σ", "...")):
        continue
    total += size
    if name.startswith("data"):
        share["(data: strings and tables)"] += size
        continue
    path = r"([a-z_][a-z0-9_]*)(?:\[[0-9a-f]+\])?::"
    crate = re.match(r"^<*(?:&(?:mut )?)?(?:dyn )?" + path, name) or re.match(r"^<[^<>]*? as &?" + path, name)
    if crate:
        share[crate.group(1)] += size
    elif re.match(r"^<&?(?:mut )?(?:T|char|str|bool|\[u8\]|[iuf](?:8|16|32|64|128|size))\b", name):
        share["core"] += size  # a trait impl on a primitive type
    else:
        share["(wasm-bindgen shims, imports, exports, tables)"] += size
print(f"{total:8d} bytes of code and data")
for crate, size in share.most_common(15):
    print(f"{size:8d} {100 * size / total:5.1f}%  {crate}")
'
