#!/usr/bin/env python3
"""`make bench`: healthweb next to the servers a user would otherwise run.

Installs the peers (npm ci in bench/peers, a venv in .tools/bench-venv), builds
target/release/healthweb and the bench binaries, then measures, on 127.0.0.1 only:

1. Check throughput and latency per mode (native gRPC over h2c, gRPC-Web binary
   over HTTP/2 and HTTP/1.1, gRPC-Web text over HTTP/1.1) with h2load; the server
   is pinned to CPU 0 and h2load to CPU 1, peers alternate within each round, and
   every cell is the median of the rounds.
2. Watch fan-out: N concurrent Watch streams (bench/src/bin/watch_fanout.rs).
3. A flapping service: changes recorded in History per second, rows written
   (bench/src/bin/flap.rs).
4. Footprint: start to first answered Check, idle RSS, binary size.
5. Browser: the .wasm + JS glue of both browser builds (www/pkg, www/pkg-lite), gzip -9
   and Brotli, for those that were built.

Prints the tables and writes them into BENCHMARKS.md between the
`<!-- bench:begin -->` and `<!-- bench:end -->` markers (the prose around them is
kept). Python 3 standard library only.

6. Replicas on PostgreSQL (bench/replicas.py, its own section of BENCHMARKS.md).
7. Check latency with a hung alert receiver beside none (bench/alerts.py, its own
   section).
8. A fleet: 10,000 upstreams on 10 servers, one healthweb monitoring them (bench/fleet.py,
   its own section; `make demo-fleet` starts the same fleet to look at).

What these parts share (the peers, starting a server, a child's lines, one Check, h2load's
load, BENCHMARKS.md's sections) is bench/kit.py, which imports none of them.

Usage: python3 bench/run.py [--quick] [--rounds N] [--seconds S]
       [--fanout 1000,10000,100000] [--fanout-flips 5] [--no-write] [--only replicas|alerts|fleet]
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kit import (
    HISTORY_DIR,
    LOAD_CPU,
    Lines,
    MODES,
    PEERS,
    Peer,
    RELEASE,
    ROOT,
    RUNNING,
    SERVER_CPU,
    Server,
    VENV,
    apt_install,
    check_one,
    fill,
    fmt_rate,
    h2load_command,
    load,
    lock_version,
    log,
    machine,
    peers,
    run,
    sh,
    start,
    write_section,
)

def install(skip_build: bool) -> None:
    for tool, package in (("h2load", "nghttp2-client"), ("curl", "curl"), ("taskset", "util-linux")):
        apt_install(tool, package)
    if not (PEERS / "node_modules" / ".package-lock.json").exists() or (
        (PEERS / "package-lock.json").stat().st_mtime
        > (PEERS / "node_modules" / ".package-lock.json").stat().st_mtime
    ):
        log("npm ci (bench/peers)")
        run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEERS)
    stamp = VENV / "requirements.txt"
    want = (PEERS / "requirements.txt").read_text()
    if not stamp.exists() or stamp.read_text() != want:
        log("venv + pip install (.tools/bench-venv)")
        run([sys.executable, "-m", "venv", str(VENV)])
        run([str(VENV / "bin" / "pip"), "install", "-q", "-r", str(PEERS / "requirements.txt")])
        stamp.write_text(want)
    if not skip_build:
        # healthweb on its own, as `make server` builds it: built with the bench's
        # packages, shared dependencies would get their features too.
        log("cargo build --release --bin healthweb (as make server), then the bench binaries")
        run(["cargo", "build", "--release", "--bin", "healthweb"], cwd=ROOT)
        run(["cargo", "build", "--release", "-p", "healthweb-bench", "--bins"], cwd=ROOT)


def throughput(all_peers: list[Peer], rounds: int, seconds: int) -> dict:
    """results[peer][mode] = list of per-round dicts."""
    results: dict = {p.name: {m: [] for m in p.modes} for p in all_peers}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            # Rotate the order, so no peer always runs first (or last) in a round.
            order = all_peers[r % len(all_peers) :] + all_peers[: r % len(all_peers)]
            for peer in order:
                server = start(peer)
                try:
                    for mode in peer.modes:
                        check_one(server, mode)
                        res = load(server, mode, seconds, Path(tmp))
                        results[peer.name][mode].append(res)
                        log(f"round {r + 1}/{rounds} {peer.name:13} {mode:8} {res['rps']:>9.0f} req/s  "
                            f"p50 {res['p50']:.2f} ms  p99 {res['p99']:.2f} ms")
                finally:
                    server.stop()
    return results


def fanout(sizes: list[int], all_peers: list[Peer], flips: int) -> list[dict]:
    rows = []
    subjects = [p for p in all_peers if p.name in ("healthweb", "tonic-default")]
    for n in sizes:
        for peer in subjects:
            server = start(peer)
            try:
                flip = ["--admin", f"127.0.0.1:{server.admin}"] if peer.name == "healthweb" else ["--signal", "yes"]
                cmd = [
                    "taskset", "-c", LOAD_CPU, str(RELEASE / "watch-fanout"),
                    "--url", f"http://127.0.0.1:{server.port}", "--pid", str(server.proc.pid),
                    "--streams", str(n), "--per-conn", "1000", "--service", "bench", "--timeout-secs", "90",
                    "--flips", str(flips), *flip,
                ]
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=150)
                if done.returncode != 0:
                    log(f"fan-out {peer.name} N={n} failed: {done.stderr.strip()}")
                    rows.append({"peer": peer.name, "streams": n, "error": done.stderr.strip()[-200:]})
                    continue
                row = {"peer": peer.name, **json.loads(done.stdout)}
                rows.append(row)
                log(f"fan-out {peer.name:13} N={n:>6}: {row['bytes_per_stream']:.0f} B/stream, notify p50 "
                    f"{row['notify_p50_ms']:.1f} p99 {row['notify_p99_ms']:.1f} max {row['notify_max_ms']:.1f} ms "
                    f"(each flip's max: {', '.join(f'{m:.1f}' for m in row['notify_max_each_ms'])}), "
                    f"RSS idle/open/after {row['rss_idle_kib']}/{row['rss_open_kib']}/{row['rss_after_kib']} KiB")
            finally:
                server.stop()
    return rows


def flapping(all_peers: list[Peer], seconds: int) -> dict | None:
    """healthweb with its history in a file, one service flipped through the admin API."""
    peer = {p.name: p for p in all_peers}["healthweb"]
    history = str(HISTORY_DIR / "flapping.db")
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, *fill(peer, history=history)],
        env={**os.environ, **peer.env}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    RUNNING.append(proc)
    found = Lines(proc).ports({"listening", "admin listening"})
    server = Server(peer, proc, found["listening"], 0, found["admin listening"])
    try:
        out = run([
            "taskset", "-c", LOAD_CPU, str(RELEASE / "flap"), "--url", f"http://127.0.0.1:{server.port}",
            "--admin", f"127.0.0.1:{server.admin}", "--seconds", str(seconds), "--history", history,
        ], timeout=seconds + 60)
    finally:
        server.stop()
    row = json.loads(out)
    log(f"flapping: {row['flips_per_s']:.0f} admin calls/s, {row['changes']} changes, "
        f"{row['changes_recorded']} in History, {row['rows']} rows, {row['file_bytes']} bytes")
    return row


def footprint(all_peers: list[Peer], runs: int) -> dict:
    out = {}
    for peer in all_peers:
        cmd = [
            str(RELEASE / "first-check"), "--runs", str(runs), "--",
            "taskset", "-c", SERVER_CPU, *fill(peer),
        ]
        res = json.loads(run(["taskset", "-c", LOAD_CPU, *cmd], env={**os.environ, **peer.env}, timeout=120))
        out[peer.name] = {
            "start_ms": statistics.median(res["start_ms"]),
            "idle_kib": statistics.median(res["idle_rss_kib"]),
            "dirty_kib": statistics.median(res["private_dirty_kib"]),
            "anon_kib": statistics.median(res["anonymous_kib"]),
            "samples": res,
        }
        log(f"footprint {peer.name:13} start {out[peer.name]['start_ms']:.1f} ms, idle RSS "
            f"{out[peer.name]['idle_kib'] / 1024:.1f} MiB, Private_Dirty {out[peer.name]['dirty_kib'] / 1024:.2f} MiB, "
            f"Anonymous {out[peer.name]['anon_kib'] / 1024:.2f} MiB")
    for name, binary in (("healthweb", "healthweb"), ("tonic-default", "tonic-default")):
        path = RELEASE / binary
        with tempfile.TemporaryDirectory() as tmp:
            stripped = Path(tmp, "s")
            run(["strip", "-o", str(stripped), str(path)])
            out[name]["binary"] = path.stat().st_size
            out[name]["stripped"] = stripped.stat().st_size
    return out


# The browser builds as web-client/build.sh ships them (`make pkg pkg-lite`).
BROWSER_BUILDS = [
    ("default: tonic + tonic-web-wasm-client", "pkg"),
    ("fetch-lite: gRPC-Web over fetch", "pkg-lite"),
]


def browser_size() -> dict | None:
    """Per built browser build: gzip -9 and Brotli (quality 11, if `brotli` is installed).
    GNU gzip as `make size` runs it: Python's zlib at level 9 compresses differently."""

    def gz(p: Path) -> int:
        if not shutil.which("gzip"):
            return len(gzip.compress(p.read_bytes(), compresslevel=9, mtime=0))
        return len(subprocess.run(["gzip", "-9", "-c", str(p)], capture_output=True, check=True).stdout)

    def br(p: Path) -> int | None:
        if not shutil.which("brotli"):
            return None
        out = subprocess.run(["brotli", "-c", "-q", "11", str(p)], capture_output=True, check=True)
        return len(out.stdout)

    out = {}
    for name, directory in BROWSER_BUILDS:
        pkg = ROOT / "www" / directory
        wasm, js = pkg / "healthweb_client_bg.wasm", pkg / "healthweb_client.js"
        if wasm.exists() and js.exists():
            out[name] = {"gzip": (gz(wasm), gz(js)), "brotli": (br(wasm), br(js))}
    return out or None


def browser_lines(size: dict | None) -> list[str]:
    """The browser section of the report: both builds next to the published figures."""
    lines = ["", "### Browser client (the `make size` figures)", ""]
    if not size:
        return lines + ["www/pkg and www/pkg-lite not built (`make pkg pkg-lite` builds them); published "
                        "figures for one RPC, Brotli: official grpc-web JS client 70.2 KB, Connect-ES 36.5 KB."]
    kb = lambda b: "n/a" if b is None else f"{b / 1000:.1f} KB"
    total = lambda pair: None if None in pair else sum(pair)
    lines += [
        "| client | .wasm gzip | JS glue gzip | **total gzip** | .wasm Brotli | JS glue Brotli | **total Brotli** |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s in size.items():
        (wg, jg), (wb, jb) = s["gzip"], s["brotli"]
        lines.append(f"| healthweb-client, {name} | {kb(wg)} | {kb(jg)} | **{kb(wg + jg)}** | {kb(wb)} | {kb(jb)} | "
                     f"**{kb(total((wb, jb)))}** |")
    lines += [
        "| grpc-web JS, one RPC (published) | | | | | | **70.2 KB** |",
        "| Connect-ES, one RPC (published) | | | | | | **36.5 KB** |",
        "",
        "The published figures are minified bundles for one RPC, Brotli-compressed "
        "(connect-es `packages/connect-web-bench`); the JS glue here is minified too (esbuild). "
        "healthweb-client's figures are for Check, List and Watch with reconnects, History, and WatchAll.",
    ]
    return lines


# ---------------------------------------------------------------- report


def versions() -> list[str]:
    lock = (ROOT / "Cargo.lock").read_text()
    npm = json.loads((PEERS / "package-lock.json").read_text())["packages"]
    pip = sh([str(VENV / "bin" / "pip"), "freeze"])
    py = lambda n: next((l.split("==")[1] for l in pip.splitlines() if l.lower().startswith(n + "==")), "?")
    node_pkg = lambda n: npm.get(f"node_modules/{n}", {}).get("version", "?")
    return [
        f"healthweb {sh(['git', '-C', str(ROOT), 'describe', '--always', '--dirty'])}, "
        f"{sh(['rustc', '--version'])}; tonic {lock_version(lock, 'tonic')}, tonic-web "
        f"{lock_version(lock, 'tonic-web')}, tonic-health {lock_version(lock, 'tonic-health')}, hyper "
        f"{lock_version(lock, 'hyper')}, h2 {lock_version(lock, 'h2')}, tokio {lock_version(lock, 'tokio')}",
        f"Node.js {sh(['node', '--version'])}: @grpc/grpc-js {node_pkg('@grpc/grpc-js')}, grpc-health-check "
        f"{node_pkg('grpc-health-check')}, @connectrpc/connect-node {node_pkg('@connectrpc/connect-node')}, "
        f"@bufbuild/protobuf {node_pkg('@bufbuild/protobuf')}",
        f"Python {platform.python_version()}: grpcio {py('grpcio')}, grpcio-health-checking "
        f"{py('grpcio-health-checking')}",
        f"{sh(['h2load', '--version']).splitlines()[0] if shutil.which('h2load') else 'h2load ?'}, "
        f"{sh(['curl', '--version']).splitlines()[0].split(' (')[0]}",
    ]


def report(args, thr: dict, fan: list[dict], flap: dict | None, foot: dict, size: dict | None,
           all_peers: list[Peer], started: float) -> str:
    med = lambda runs, key: statistics.median(r[key] for r in runs)
    lines = [
        f"Generated by `make bench` (`python3 bench/run.py{' ' + ' '.join(args.argv) if args.argv else ''}`) "
        f"on {datetime.date.today().isoformat()} in {(time.monotonic() - started) / 60:.1f} min.",
        "",
        f"- Machine: {machine()}.",
        *[f"- {v}." for v in versions()],
        f"- Throughput: {args.rounds} rounds, peers alternating (order rotated each round), "
        f"{args.seconds} s measured after 1 s warm-up per cell; each cell is the median over the rounds.",
        "",
        "### Check throughput (median req/s; p50 / p99 latency in ms)",
        "",
        "| server | " + " | ".join(MODES[m][0] for m in MODES) + " |",
        "| --- | " + " | ".join("---:" for _ in MODES) + " |",
    ]
    for peer in all_peers:
        cells = []
        for mode in MODES:
            runs = thr[peer.name].get(mode)
            cells.append(
                f"{fmt_rate(med(runs, 'rps'))} ({med(runs, 'p50'):.2f} / {med(runs, 'p99'):.2f})" if runs else "n/a"
            )
        lines.append(f"| {peer.name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### healthweb's throughput as a multiple of each peer's (goal: >= 1.15x tonic-default, >= 3x the others)",
        "",
        "| peer | " + " | ".join(MODES[m][0] for m in MODES) + " | goal |",
        "| --- | " + " | ".join("---:" for _ in MODES) + " | --- |",
    ]
    ours = {m: med(thr["healthweb"][m], "rps") for m in MODES}
    shortfalls = []
    for peer in all_peers[1:]:
        goal = 1.15 if peer.name == "tonic-default" else 3.0
        cells, met = [], True
        for mode in MODES:
            runs = thr[peer.name].get(mode)
            if not runs:
                cells.append("n/a")
                continue
            ratio = ours[mode] / med(runs, "rps")
            cells.append(f"{ratio:.2f}x")
            if ratio < goal:
                met = False
                shortfalls.append(f"{MODES[mode][0]} vs {peer.name}: {ratio:.2f}x, goal {goal:g}x "
                                  f"({(1 - ratio / goal) * 100:.0f}% short)")
        lines.append(f"| {peer.name} | " + " | ".join(cells) + f" | {'met' if met else '**short**'} |")
    if shortfalls:
        lines += ["", "Short of a goal in this run: " + "; ".join(shortfalls) + "."]

    lines += [
        "",
        "### Watch fan-out (one service, 1000 streams per HTTP/2 connection)",
        "",
        f"Each server flips the service {args.fanout_flips} time{'s' if args.fanout_flips != 1 else ''} with "
        "every stream open (NOT_SERVING, SERVING, ..., half a second apart); the notify figures and the CPU "
        "are each the median over the flips, and the last column gives every flip's slowest watcher.",
        "",
        "| server | streams | connections | open all (ms) | RSS idle (MiB) | RSS open (MiB) | bytes / stream "
        "| notify p50 / p99 / max (ms) | CPU for a flip, server / client (ms) | RSS after all left (MiB) "
        "| slowest, each flip (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    mib = lambda k: f"{k / 1024:.1f}"
    for row in fan:
        if "error" in row:
            lines.append(f"| {row['peer']} | {row['streams']} | failed: {row['error']} | | | | | | | | |")
            continue
        lines.append(
            f"| {row['peer']} | {row['streams']} | {row['connections']} | {row['open_ms']:.0f} | "
            f"{mib(row['rss_idle_kib'])} | {mib(row['rss_open_kib'])} | {row['bytes_per_stream']:.0f} | "
            f"{row['notify_p50_ms']:.1f} / {row['notify_p99_ms']:.1f} / {row['notify_max_ms']:.1f} | "
            f"{row['notify_server_cpu_ms']:.0f} / {row['notify_client_cpu_ms']:.0f} | {mib(row['rss_after_kib'])} | "
            f"{', '.join(f'{m:.1f}' for m in row['notify_max_each_ms'])} |"
        )
    ours_at = lambda n: next(
        (r for r in fan if r["peer"] == "healthweb" and r["streams"] == n and "error" not in r), None
    )
    goals = []
    if ten := ours_at(10000):
        goals.append(f"at 10k, slowest watcher {ten['notify_max_ms']:.1f} ms "
                     f"(median of {len(ten['notify_max_each_ms'])} flips, the worst "
                     f"{max(ten['notify_max_each_ms']):.1f} ms) "
                     f"({'met' if ten['notify_max_ms'] <= 30 else 'short'}: <= 30 ms)")
    if hundred := ours_at(100000):
        goals.append(f"at 100k, p99 {hundred['notify_p99_ms']:.1f} ms "
                     f"({'met' if hundred['notify_p99_ms'] <= 250 else 'short'}: <= 250 ms), "
                     f"{hundred['bytes_per_stream'] / 1024:.1f} KiB per stream "
                     f"({'met' if hundred['bytes_per_stream'] <= 5 * 1024 else 'short'}: <= 5 KiB)")
    if goals:
        lines += ["", "Goals: " + "; ".join(goals) + "."]

    if flap:
        lines += [
            "",
            "### History under a flapping service (healthweb, history in an SQLite file)",
            "",
            "| seconds | admin calls / s | changes made | changes History accounts for | rows written | rows / s | file (KB) |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {flap['seconds']:.1f} | {flap['flips_per_s']:,.0f} | {flap['changes']:,} | "
            f"{flap['changes_recorded']:,} ({flap['recorded_per_s']:,.0f} / s) | {flap['rows']:,} | "
            f"{flap['rows_per_s']:.1f} | {flap['file_bytes'] / 1000:.0f} |",
            "",
            "Every change is accounted for when the two middle columns agree; past 8 changes of one "
            "service in a second, History folds the rest into that second's last row, with a count.",
        ]

    lines += [
        "",
        "### Footprint (median of the starts)",
        "",
        "| server | start to first answered Check (ms) | idle RSS after one Check (MiB) "
        "| of which private: Private_Dirty (MiB) | Anonymous (MiB) | binary (stripped) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for peer in all_peers:
        f = foot[peer.name]
        binary = (
            f"{f['binary'] / 1e6:.2f} MB ({f['stripped'] / 1e6:.2f} MB)" if "binary" in f else "interpreter + packages"
        )
        lines.append(f"| {peer.name} | {f['start_ms']:.1f} | {f['idle_kib'] / 1024:.1f} | "
                     f"{f['dirty_kib'] / 1024:.2f} | {f['anon_kib'] / 1024:.2f} | {binary} |")
    ours = foot.get("healthweb", {})
    if "stripped" in ours:
        private, stripped = ours["dirty_kib"] / 1024, ours["stripped"] / 1e6
        lines += ["", f"Goals: private memory after one Check {private:.2f} MiB "
                      f"({'met' if private <= 2 else 'short'}: <= 2 MiB); "
                      f"binary {stripped:.2f} MB stripped ({'met' if stripped < 8.4 else 'short'}: < 8.4 MB). "
                      "Private_Dirty counts every page only this process wrote: its heap, stacks and "
                      "anonymous maps (the Anonymous column, a part of it) and the pages of the binary "
                      "and libraries it changed (relocations). The rest of RSS is clean file pages "
                      "(the binary's code) that every instance on the machine shares."]

    lines += browser_lines(size)

    h2c = {p.name: p for p in all_peers}["healthweb"]
    lines += [
        "",
        "### Commands",
        "",
        "```sh",
        "# servers (each pinned to CPU 0; run here with port 0, the address read from its `listening on` line)",
        *[
            shlex.join([*(f"{k}={v}" for k, v in p.env.items()), "taskset", "-c", "0", *fill(p, 50051, 50052, 50053, "history.db")])
            .replace(str(RELEASE), "target/release").replace(str(ROOT) + "/", "")
            for p in all_peers
        ],
        "# before each cell, one Check by curl must show grpc-status 0 and the SERVING message 08 01, e.g.",
        "curl -sS --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers' \\",
        "  --data-binary @check.bin -D - -o body http://127.0.0.1:50051/grpc.health.v1.Health/Check",
        "# load (pinned to CPU 1); check.bin is the 5-byte frame 00 00 00 00 00, check.txt is AAAAAAA=",
        *[
            shlex.join(h2load_command(Server(h2c, None, 50051, 50051, 0), m, args.seconds,
                                      Path("check.txt" if m == "text-h1" else "check.bin"), Path("h2load.log")))
            for m in MODES
        ],
        "# fan-out (client pinned to CPU 1; healthweb flips through its admin API, tonic-default on SIGUSR1)",
        "taskset -c 1 target/release/watch-fanout --url http://127.0.0.1:50051 --pid SERVER_PID \\",
        f"  --streams N --per-conn 1000 --service bench --flips {args.fanout_flips} --admin 127.0.0.1:50053",
        "# start-up and idle RSS",
        "target/release/first-check --runs 5 -- taskset -c 0 SERVER_COMMAND_ON_PORT_0...",
        "```",
    ]
    return "\n".join(lines) + "\n"


def write(section: str) -> None:
    write_section("<!-- bench:begin -->", "<!-- bench:end -->", section, "Check, fan-out and footprint")


def main() -> None:
    started = time.monotonic()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 round, 2 s per cell, fan-out 1000 only, 2 starts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--fanout", default="1000,10000,100000")
    ap.add_argument("--fanout-flips", type=int, default=5, help="flips per fan-out run; its figures are their medians")
    ap.add_argument("--no-write", action="store_true", help="print the tables only")
    ap.add_argument("--no-build", action="store_true", help="reuse target/release as it is")
    ap.add_argument(
        "--only", choices=["replicas", "alerts", "fleet"], help="run that section alone (and write only it)"
    )
    import alerts
    import fleet
    import kit
    import replicas

    replicas.options(ap)
    fleet.options(ap)
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    if args.quick:
        args.rounds, args.seconds, args.starts, args.fanout, args.fanout_flips = 1, 2, 2, "1000", 1
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs 2 CPUs: the server runs on CPU 0 and the load on CPU 1")

    if args.only == "replicas":
        if not args.no_build:
            replicas.build(kit)
        replicas.run_section(kit, args)
        return
    if args.only == "alerts":
        for tool, package in (("h2load", "nghttp2-client"), ("curl", "curl"), ("taskset", "util-linux")):
            apt_install(tool, package)
        if not args.no_build:
            log("cargo build --release --bin healthweb")
            run(["cargo", "build", "--release", "--bin", "healthweb"], cwd=ROOT)
        alerts.run_section(kit, args)
        return
    if args.only == "fleet":
        if not args.no_build:
            fleet.build(kit)
        fleet.run_section(kit, args)
        return
    install(args.no_build)
    all_peers = peers()
    size = browser_size()
    log("phase 1/4: Check throughput")
    thr = throughput(all_peers, args.rounds, args.seconds)
    log("phase 2/4: Watch fan-out")
    fan = fanout([int(n) for n in args.fanout.split(",") if n], all_peers, args.fanout_flips)
    log("phase 3/4: a flapping service")
    flap = flapping(all_peers, 2 if args.quick else 5)
    log("phase 4/4: footprint")
    foot = footprint(all_peers, args.starts)
    section = report(args, thr, fan, flap, foot, size, all_peers, started)
    print(section)
    if not args.no_write:
        write(section)
    replicas.run_section(kit, args)
    alerts.run_section(kit, args)
    fleet.run_section(kit, args)


if __name__ == "__main__":
    main()
