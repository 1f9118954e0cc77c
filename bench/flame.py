#!/usr/bin/env python3
"""`make flame`: perf flame graphs of healthweb's two hot paths, for BENCHMARKS.md.

Builds the `profiling` profile (release code with line tables, so perf can unwind
through inlined frames), then, on 127.0.0.1 with the server pinned to CPU 0 and the
load on CPU 1, as in `make bench`:

1. Check over h2c under h2load, SECONDS long: docs/flame-check-grpc-h2c.svg
2. Check as gRPC-Web binary over HTTP/1.1: docs/flame-check-web-h1.svg
3. One flip seen by 100,000 Watch streams (watch-fanout, 100 connections):
   docs/flame-watch-100k.svg

Each SVG is interactive in a browser (click to zoom, search). Needs `perf`
(Debian `linux-perf`, installed here if missing) and inferno (`cargo install`).

Usage: python3 bench/flame.py [--seconds 10] [--streams 100000] [--only grpc-h2c,web-h1,watch]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kit as bench  # noqa: E402  (the bench's server start, h2load command and logging)

PROFILING = bench.RELEASE.parent / "profiling"
DOCS = bench.ROOT / "docs"


def install() -> None:
    bench.apt_install("perf", "linux-perf")
    if not shutil.which("inferno-flamegraph"):
        bench.log("cargo install inferno")
        bench.run(["cargo", "install", "inferno", "--locked"])
    bench.log("cargo build --profile profiling (healthweb, bench binaries)")
    bench.run(["cargo", "build", "--profile", "profiling", "-p", "healthweb-server", "--bin", "healthweb",
               "-p", "healthweb-bench", "--bins"], cwd=bench.ROOT)


def record(pid: int, seconds: float, data: Path) -> subprocess.Popen:
    """perf on one process, DWARF unwinding (Rust's std has no frame pointers)."""
    return subprocess.Popen(
        ["perf", "record", "-q", "-F", "997", "--call-graph", "dwarf,32768", "-p", str(pid),
         "-o", str(data), "--", "sleep", str(seconds)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def svg(data: Path, title: str, out: Path) -> None:
    script = subprocess.run(["perf", "script", "-i", str(data)], capture_output=True, check=True)
    folded = subprocess.run(["inferno-collapse-perf", "--all"], input=script.stdout,
                            capture_output=True, check=True).stdout
    samples = script.stdout.count(b"\n\n")  # perf script ends each sample's stack with a blank line
    graph = subprocess.run(["inferno-flamegraph", "--title", f"{title} ({samples} samples at 997 Hz)",
                            "--width", "1600", "--minwidth", "0.1"],
                           input=folded, capture_output=True, check=True).stdout
    out.write_bytes(graph)
    bench.log(f"wrote {out.relative_to(bench.ROOT)} ({samples} samples)")


def check(peer: bench.Peer, mode: str, seconds: int, tmp: Path) -> None:
    server = bench.start(peer)
    try:
        bench.check_one(server, mode)
        body = tmp / "body"
        body.write_bytes(bench.FRAME)
        load = subprocess.Popen(bench.h2load_command(server, mode, seconds + 2, body, tmp / "h2load.log"),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # Past h2load's one-second warm-up, for `seconds`.
        subprocess.run(["sleep", "1.5"])
        perf = record(server.proc.pid, seconds, tmp / "perf.data")
        if perf.wait(seconds + 60) != 0:
            sys.exit(f"perf record failed: {perf.stderr.read()}")
        out, _ = load.communicate(timeout=seconds + 60)
        bench.log(next((l for l in out.splitlines() if "req/s" in l), "h2load: no rate line").strip())
        svg(tmp / "perf.data", f"healthweb Check, {bench.MODES[mode][0]}, under h2load", DOCS / f"flame-check-{mode}.svg")
    finally:
        server.stop()


def flip(peer: bench.Peer, streams: int, tmp: Path) -> None:
    server = bench.start(peer)
    try:
        fanout = subprocess.Popen(
            ["taskset", "-c", bench.LOAD_CPU, str(PROFILING / "watch-fanout"),
             "--url", f"http://127.0.0.1:{server.port}", "--pid", str(server.proc.pid),
             "--streams", str(streams), "--per-conn", "1000", "--admin", f"127.0.0.1:{server.admin}",
             "--pause-before-flip", "2", "--hold-after-flip", "6", "--timeout-secs", "120"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        # Whole lines only: the cue comes once every stream is open.
        for line in fanout.stderr:
            if line.startswith("flipping in"):
                break
        else:
            sys.exit(f"watch-fanout ended before the flip: {fanout.wait()}")
        # From the cue: 2 s of idle (no samples), the flip, then streams held open.
        perf = record(server.proc.pid, 5, tmp / "perf.data")
        out, err = fanout.communicate(timeout=180)
        if fanout.returncode != 0 or perf.wait(60) != 0:
            sys.exit(f"watch-fanout ({fanout.returncode}): {err}\nperf: {perf.stderr.read()}")
        row = json.loads(out)
        bench.log(f"flip: p50 {row['notify_p50_ms']} p99 {row['notify_p99_ms']} max {row['notify_max_ms']} ms, "
                  f"server CPU {row['notify_server_cpu_ms']} ms")
        svg(tmp / "perf.data", f"healthweb, one change heard by {streams:,} Watch streams", DOCS / "flame-watch-100k.svg")
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--streams", type=int, default=100_000)
    ap.add_argument("--only", default="grpc-h2c,web-h1,watch", help="which graphs")
    args = ap.parse_args()
    install()
    bench.RELEASE = PROFILING  # peers() names the binaries under RELEASE
    peer = {p.name: p for p in bench.peers()}["healthweb"]
    only = args.only.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("grpc-h2c", "web-h1"):
            if mode in only:
                check(peer, mode, args.seconds, Path(tmp))
        if "watch" in only:
            flip(peer, args.streams, Path(tmp))


if __name__ == "__main__":
    main()
