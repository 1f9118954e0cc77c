#!/usr/bin/env bash
# Builds the browser module as it ships:
#   web-client/build.sh TARGET OUT_DIR [default|lite]
# TARGET is wasm-pack's (web, bundler, ...); OUT_DIR is relative to the repository root;
# `lite` is the fetch-lite build (--no-default-features --features fetch-lite).
#
# After wasm-pack (profile wasm-release), binaryen's wasm-opt -Oz shrinks the .wasm and
# esbuild minifies the JS glue, as a bundler would; both come from npm (web-client/tools),
# because wasm-pack would download binaryen itself and Debian's is too old for this
# module. Run from anywhere; honours CARGO_TARGET_DIR.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${1:?usage: build.sh TARGET OUT_DIR [default|lite]}
out=${2:?usage: build.sh TARGET OUT_DIR [default|lite]}
build=${3:-default}
tools=web-client/tools

features=()
case $build in
  default) ;;
  lite) features=(-- --no-default-features --features fetch-lite) ;;
  *) echo "build.sh: unknown build '$build' (default or lite)" >&2; exit 2 ;;
esac

if [ ! -x "$tools/node_modules/.bin/wasm-opt" ] || [ ! -x "$tools/node_modules/.bin/esbuild" ]; then
  (cd "$tools" && timeout 600 npm ci --no-audit --no-fund)
fi

# wasm-pack resolves --out-dir against the crate, so hand it an absolute path.
case $out in /*) ;; *) out=$root/$out ;; esac
wasm-pack build web-client --target "$target" --out-dir "$out" --profile wasm-release "${features[@]}"

wasm="$out/healthweb_client_bg.wasm"
# The module's target_features section tells wasm-opt which features it may use; after
# that no one reads it. Two assumptions that hold for this module and buy 1.3 KB gzipped:
# - no implicit traps: Rust checks divisors itself and never reads outside its memory;
# - the low 1 KB of memory is unused: rustc lays the 1 MB stack first, growing down
#   from 1 MB toward 0, so only a stack within 1 KB of overflowing would touch it.
"$tools/node_modules/.bin/wasm-opt" -Oz --converge --ignore-implicit-traps --low-memory-unused \
  --strip-debug --strip-producers --strip-target-features "$wasm" -o "$wasm.opt"
mv "$wasm.opt" "$wasm"

# Only the glue: renaming is local, so the exported names and the module's import
# names (object keys) stay as wasm-bindgen wrote them.
for js in "$out"/healthweb_client.js "$out"/healthweb_client_bg.js; do
  [ -f "$js" ] || continue
  "$tools/node_modules/.bin/esbuild" --minify --format=esm --log-level=warning "$js" --outfile="$js.min"
  mv "$js.min" "$js"
done
