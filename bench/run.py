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

Usage: python3 bench/run.py [--quick] [--rounds N] [--seconds S]
       [--fanout 1000,10000,100000] [--no-write] [--only replicas|alerts|fleet]
"""

from __future__ import annotations

import argparse
import atexit
import base64
import datetime
import gzip
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PEERS = BENCH / "peers"
TOOLS = ROOT / ".tools"
VENV = TOOLS / "bench-venv"
RELEASE = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target").resolve() / "release"
OUT = ROOT / "BENCHMARKS.md"
SERVER_CPU, LOAD_CPU = "0", "1"
CHECK_PATH = "/grpc.health.v1.Health/Check"
FRAME = b"\0\0\0\0\0"  # Check(service: "") as one gRPC message frame
SERVING_MESSAGE = b"\x08\x01"
GRPC_WEB_TRAILER = 0x80

MODES = {
    # name: (label, HTTP/1.1?, request content-type, accept)
    "grpc-h2c": ("gRPC, h2c", False, "application/grpc", None),
    "web-h2": ("gRPC-Web binary, HTTP/2", False, "application/grpc-web+proto", None),
    "web-h1": ("gRPC-Web binary, HTTP/1.1", True, "application/grpc-web+proto", None),
    "text-h1": (
        "gRPC-Web text, HTTP/1.1",
        True,
        "application/grpc-web-text",
        "application/grpc-web-text",
    ),
}
# In-flight requests: h2load -c connections x -m streams (HTTP/1.1 cannot multiplex,
# so there it is 128 connections with one request each).
LOAD = {False: (4, 32), True: (128, 1)}


@dataclass
class Peer:
    """One server under test: how to start it and which modes it speaks."""

    name: str
    what: str
    command: list[str]  # {port}, {port1}, {admin} are filled in (0: the server picks)
    modes: tuple[str, ...]
    h1_port: bool = False  # HTTP/1.1 on a second port ({port1}), printed as `http/1.1 listening on URL`
    env: dict[str, str] = field(default_factory=dict)


def peers() -> list[Peer]:
    node = shutil.which("node") or "node"
    return [
        Peer(
            "healthweb",
            "this repo, target/release/healthweb",
            [
                str(RELEASE / "healthweb"), "serve", "--listen", "127.0.0.1:{port}",
                "--www", str(ROOT / "www"), "--service", "bench=SERVING",
                "--admin-listen", "127.0.0.1:{admin}", "--max-concurrent-streams", "1000",
                "--history", "{history}",
            ],
            tuple(MODES),
            env={"HEALTHWEB_LOG": "warn"},
        ),
        Peer(
            "tonic-default",
            "tonic-health + tonic-web (`accept_http1(true)`, `GrpcWebLayer`), bench/src/bin/tonic_default.rs",
            [str(RELEASE / "tonic-default"), "127.0.0.1:{port}"],
            tuple(MODES),
        ),
        Peer(
            "grpc-js",
            "@grpc/grpc-js + grpc-health-check, bench/peers/grpc_js.mjs",
            [node, str(PEERS / "grpc_js.mjs"), "{port}"],
            ("grpc-h2c",),
        ),
        Peer(
            "connect-node",
            "@connectrpc/connect-node, bench/peers/connect.mjs (HTTP/1.1 on a second port)",
            [node, str(PEERS / "connect.mjs"), "{port}", "{port1}"],
            ("grpc-h2c", "web-h2", "web-h1"),
            h1_port=True,
        ),
        Peer(
            "grpcio",
            "Python grpcio + grpcio-health-checking, bench/peers/grpc_py.py",
            [str(VENV / "bin" / "python"), str(PEERS / "grpc_py.py"), "{port}"],
            ("grpc-h2c",),
        ),
    ]


# ---------------------------------------------------------------- processes

RUNNING: list[subprocess.Popen] = []


def stop_all() -> None:
    for proc in RUNNING:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    RUNNING.clear()


atexit.register(stop_all)
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, lambda *_: sys.exit(130))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> str:
    """Runs `cmd`, fails loudly, returns its stdout."""
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        sys.exit(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout}{done.stderr}")
    return done.stdout


LISTENING = re.compile(r"^(listening|http/1\.1 listening|admin listening) on http://127\.0\.0\.1:(\d+)$")


class Lines:
    """Reads a child's stderr in a thread, whole lines only (a pipe hands over any
    number of bytes, and a port read from half a line is a wrong port), and keeps
    reading so the child never blocks on a full pipe."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.proc.stderr:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def ports(self, wanted: set[str], timeout: float = 30) -> dict[str, int]:
        """Waits for a `WHAT listening on URL` line for each of `wanted`."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = {m[1]: int(m[2]) for m in map(LISTENING.match, self.lines) if m}
                if wanted <= found.keys():
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    why = f"exited with {self.proc.returncode}" if self.proc.poll() is not None else f"printed no address in {timeout}s"
                    sys.exit(f"{' '.join(self.proc.args)} {why}; its stderr:\n" + "\n".join(self.lines))
                self.cond.wait(min(left, 0.5))


@dataclass
class Server:
    peer: Peer
    proc: subprocess.Popen
    port: int
    port1: int
    admin: int

    def url(self, mode: str) -> str:
        port = self.port1 if MODES[mode][1] and self.peer.h1_port else self.port
        return f"http://127.0.0.1:{port}{CHECK_PATH}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        RUNNING.remove(self.proc)


HISTORY_DIR = Path(tempfile.mkdtemp(prefix="healthweb-bench-"))
atexit.register(shutil.rmtree, HISTORY_DIR, ignore_errors=True)
STARTS = iter(range(1_000_000))


def fill(peer: Peer, port: int = 0, port1: int = 0, admin: int = 0, history: str = "") -> list[str]:
    """The peer's command; healthweb keeps its history on, in a file of its own."""
    history = history or str(HISTORY_DIR / f"history-{next(STARTS)}.db")
    return [a.format(port=port, port1=port1, admin=admin, history=history) for a in peer.command]


def start(peer: Peer) -> Server:
    cmd = ["taskset", "-c", SERVER_CPU, *fill(peer)]
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, **peer.env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    RUNNING.append(proc)
    wanted = {"listening"}
    if peer.h1_port:
        wanted.add("http/1.1 listening")
    if "{admin}" in " ".join(peer.command):
        wanted.add("admin listening")
    found = Lines(proc).ports(wanted)
    return Server(peer, proc, found["listening"], found.get("http/1.1 listening", 0), found.get("admin listening", 0))


# ---------------------------------------------------------------- checks


def grpc_web_frames(body: bytes) -> tuple[list[bytes], bytes]:
    """Splits a gRPC-Web body into its messages and its trailer block."""
    messages, trailers = [], b""
    while len(body) >= 5:
        flag, size = body[0], int.from_bytes(body[1:5], "big")
        chunk, body = body[5 : 5 + size], body[5 + size :]
        if flag & GRPC_WEB_TRAILER:
            trailers += chunk
        else:
            messages.append(chunk)
    return messages, trailers


def b64_segments(text: bytes) -> bytes:
    """gRPC-Web text: base64 chunks, each padded on its own, back to back."""
    return b"".join(base64.b64decode(s) for s in re.findall(rb"[A-Za-z0-9+/]+=*", text))


def check_one(server: Server, mode: str) -> None:
    """One Check by curl: grpc-status 0 and a SERVING message, or exit."""
    _, h1, content_type, accept = MODES[mode]
    with tempfile.TemporaryDirectory() as tmp:
        headers, body = Path(tmp, "h"), Path(tmp, "b")
        text = mode == "text-h1"
        cmd = [
            "curl", "-sS", "--max-time", "5", "-X", "POST",
            "--http1.1" if h1 else "--http2-prior-knowledge",
            "-H", f"content-type: {content_type}",
            "--data-binary", "AAAAAAA=" if text else f"@{tmp}/req",
            "-D", str(headers), "-o", str(body),
        ]
        if accept:
            cmd += ["-H", f"accept: {accept}"]
        if mode == "grpc-h2c":
            cmd += ["-H", "te: trailers"]
        Path(tmp, "req").write_bytes(FRAME)
        run([*cmd, server.url(mode)])
        head = headers.read_text(errors="replace").lower()
        data = body.read_bytes()
        if mode == "grpc-h2c":
            messages, trailers = grpc_web_frames(data)  # same 5-byte framing, no trailer frame
            status = re.findall(r"grpc-status:\s*(\d+)", head)
        else:
            messages, trailers = grpc_web_frames(b64_segments(data) if text else data)
            status = re.findall(r"grpc-status:\s*(\d+)", head + trailers.decode(errors="replace").lower())
        if status[-1:] != ["0"] or messages != [SERVING_MESSAGE]:
            sys.exit(
                f"{server.peer.name} {mode}: expected grpc-status 0 and SERVING, got "
                f"status {status} messages {messages}\n{head}"
            )


# ---------------------------------------------------------------- load


def h2load_command(server: Server, mode: str, seconds: int, body: Path, log_file: Path) -> list[str]:
    _, h1, content_type, accept = MODES[mode]
    conns, streams = LOAD[h1]
    cmd = [
        "taskset", "-c", LOAD_CPU, "h2load", "-D", str(seconds), "--warm-up-time", "1",
        "-c", str(conns), "-m", str(streams), "-H", f"content-type: {content_type}",
        "-d", str(body), f"--log-file={log_file}",
    ]
    if accept:
        cmd += ["-H", f"accept: {accept}"]
    if mode == "grpc-h2c":
        cmd += ["-H", "te: trailers"]
    if h1:
        cmd.append("--h1")
    return [*cmd, server.url(mode)]


def load(server: Server, mode: str, seconds: int, tmp: Path) -> dict:
    body = tmp / f"{mode}.body"
    body.write_bytes(b"AAAAAAA=" if mode == "text-h1" else FRAME)
    log_file = tmp / "h2load.log"
    out = run(h2load_command(server, mode, seconds, body, log_file), timeout=seconds + 60)
    rate = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))
    total, ok, failed, errored = map(
        int, re.search(r"requests: (\d+) total.*?(\d+) succeeded, (\d+) failed, (\d+) errored", out).group(1, 2, 3, 4)
    )
    codes = re.search(r"status codes: (\d+) 2xx", out)
    two_xx = int(codes.group(1)) if codes else 0
    micros = sorted(
        int(parts[2])
        for parts in (line.split() for line in log_file.read_text().splitlines())
        if len(parts) == 3 and parts[1] == "200"
    )
    log_file.unlink()
    # Requests still in flight when the clock stops count as succeeded without a
    # status: at most one per connection and stream.
    in_flight = LOAD[MODES[mode][1]][0] * LOAD[MODES[mode][1]][1]
    if not micros or failed or errored or ok - two_xx > in_flight:
        sys.exit(f"{server.peer.name} {mode}: h2load saw failures\n{out}")
    pct = lambda p: micros[min(len(micros) - 1, int(p / 100 * len(micros)))] / 1000
    return {"rps": rate, "p50": pct(50), "p99": pct(99), "requests": total}


# ---------------------------------------------------------------- phases


def apt_install(tool: str, package: str) -> None:
    """Installs Debian's `package` when `tool` is not on PATH."""
    if not shutil.which(tool):
        log(f"installing {package} (apt)")
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        run([*sudo, "apt-get", "install", "-y", "-qq", package], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


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


def fanout(sizes: list[int], all_peers: list[Peer]) -> list[dict]:
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
                    "--streams", str(n), "--per-conn", "1000", "--service", "bench", "--timeout-secs", "90", *flip,
                ]
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=150)
                if done.returncode != 0:
                    log(f"fan-out {peer.name} N={n} failed: {done.stderr.strip()}")
                    rows.append({"peer": peer.name, "streams": n, "error": done.stderr.strip()[-200:]})
                    continue
                row = {"peer": peer.name, **json.loads(done.stdout)}
                rows.append(row)
                log(f"fan-out {peer.name:13} N={n:>6}: {row['bytes_per_stream']:.0f} B/stream, notify p50 "
                    f"{row['notify_p50_ms']:.1f} p99 {row['notify_p99_ms']:.1f} max {row['notify_max_ms']:.1f} ms, "
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
        "healthweb-client's figures are for Check, List and Watch with reconnects, and History.",
    ]
    return lines


# ---------------------------------------------------------------- report


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def lock_version(lock: str, name: str) -> str:
    m = re.search(rf'name = "{re.escape(name)}"\nversion = "([^"]+)"', lock)
    return m.group(1) if m else "?"


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


def machine() -> str:
    model = re.search(r"Model name:\s*(.+)", sh(["lscpu"]))
    mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    return (
        f"{sh(['nproc'])} CPUs ({model.group(1).strip() if model else '?'}), "
        f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB memory, Linux {platform.release()}; "
        f"load average at the start {os.getloadavg()[0]:.2f}"
    )


def fmt_rate(x: float) -> str:
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


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
        "| server | streams | connections | open all (ms) | RSS idle (MiB) | RSS open (MiB) | bytes / stream "
        "| notify p50 / p99 / max (ms) | CPU for the flip, server / client (ms) | RSS after all left (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    mib = lambda k: f"{k / 1024:.1f}"
    for row in fan:
        if "error" in row:
            lines.append(f"| {row['peer']} | {row['streams']} | failed: {row['error']} | | | | | | | |")
            continue
        lines.append(
            f"| {row['peer']} | {row['streams']} | {row['connections']} | {row['open_ms']:.0f} | "
            f"{mib(row['rss_idle_kib'])} | {mib(row['rss_open_kib'])} | {row['bytes_per_stream']:.0f} | "
            f"{row['notify_p50_ms']:.1f} / {row['notify_p99_ms']:.1f} / {row['notify_max_ms']:.1f} | "
            f"{row['notify_server_cpu_ms']:.0f} / {row['notify_client_cpu_ms']:.0f} | {mib(row['rss_after_kib'])} |"
        )
    ours_at = lambda n: next(
        (r for r in fan if r["peer"] == "healthweb" and r["streams"] == n and "error" not in r), None
    )
    goals = []
    if ten := ours_at(10000):
        goals.append(f"at 10k, slowest watcher {ten['notify_max_ms']:.1f} ms "
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
        "  --streams N --per-conn 1000 --service bench --admin 127.0.0.1:50053",
        "# start-up and idle RSS",
        "target/release/first-check --runs 5 -- taskset -c 0 SERVER_COMMAND_ON_PORT_0...",
        "```",
    ]
    return "\n".join(lines) + "\n"


def write(section: str) -> None:
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    text = OUT.read_text() if OUT.exists() else f"# Benchmarks\n\n{begin}\n{end}\n"
    if begin not in text or end not in text:
        text += f"\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    OUT.write_text(f"{head}{begin}\n{section}{end}{tail}")
    log(f"wrote {OUT.relative_to(ROOT)}")


def write_section(begin: str, end: str, section: str, what: str) -> None:
    """Writes `section` into BENCHMARKS.md between `begin` and `end` (appended when missing)."""
    text = OUT.read_text() if OUT.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
    else:
        head, tail = text.rstrip("\n") + "\n\n", "\n"
    OUT.write_text(f"{head}{begin}\n{section}{end}{tail}")
    log(f"wrote the {what} section of {OUT.relative_to(ROOT)}")


def main() -> None:
    started = time.monotonic()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 round, 2 s per cell, fan-out 1000 only, 2 starts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--fanout", default="1000,10000,100000")
    ap.add_argument("--no-write", action="store_true", help="print the tables only")
    ap.add_argument("--no-build", action="store_true", help="reuse target/release as it is")
    ap.add_argument(
        "--only", choices=["replicas", "alerts", "fleet"], help="run that section alone (and write only it)"
    )
    import alerts
    import fleet
    import replicas

    replicas.options(ap)
    fleet.options(ap)
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    if args.quick:
        args.rounds, args.seconds, args.starts, args.fanout = 1, 2, 2, "1000"
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs 2 CPUs: the server runs on CPU 0 and the load on CPU 1")

    if args.only == "replicas":
        if not args.no_build:
            replicas.build(sys.modules[__name__])
        replicas.run_section(sys.modules[__name__], args)
        return
    if args.only == "alerts":
        for tool, package in (("h2load", "nghttp2-client"), ("curl", "curl"), ("taskset", "util-linux")):
            apt_install(tool, package)
        if not args.no_build:
            log("cargo build --release --bin healthweb")
            run(["cargo", "build", "--release", "--bin", "healthweb"], cwd=ROOT)
        alerts.run_section(sys.modules[__name__], args)
        return
    if args.only == "fleet":
        if not args.no_build:
            fleet.build(sys.modules[__name__])
        fleet.run_section(sys.modules[__name__], args)
        return
    install(args.no_build)
    all_peers = peers()
    size = browser_size()
    log("phase 1/4: Check throughput")
    thr = throughput(all_peers, args.rounds, args.seconds)
    log("phase 2/4: Watch fan-out")
    fan = fanout([int(n) for n in args.fanout.split(",") if n], all_peers)
    log("phase 3/4: a flapping service")
    flap = flapping(all_peers, 2 if args.quick else 5)
    log("phase 4/4: footprint")
    foot = footprint(all_peers, args.starts)
    section = report(args, thr, fan, flap, foot, size, all_peers, started)
    print(section)
    if not args.no_write:
        write(section)
    replicas.run_section(sys.modules[__name__], args)
    alerts.run_section(sys.modules[__name__], args)
    fleet.run_section(sys.modules[__name__], args)


if __name__ == "__main__":
    main()
