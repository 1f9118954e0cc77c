"""What every part of `make bench` shares: where things are, the peers and how to
start them, a child's output read as whole lines, one Check, h2load's load, and
BENCHMARKS.md's sections. bench/run.py and each section (replicas.py, alerts.py,
fleet.py, flame.py) import it; it imports none of them.
"""

from __future__ import annotations

import atexit
import base64
import os
import platform
import re
import shutil
import signal
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


def h2load_command(
    server: Server, mode: str, seconds: int, body: Path, log_file: Path | None, requests: int = 0
) -> list[str]:
    """h2load with the bench's connections and streams: `seconds` after a 1 s warm-up,
    or exactly `requests` (none to warm up) when that is given."""
    _, h1, content_type, accept = MODES[mode]
    conns, streams = LOAD[h1]
    amount = ["-n", str(requests)] if requests else ["-D", str(seconds), "--warm-up-time", "1"]
    cmd = [
        "taskset", "-c", LOAD_CPU, "h2load", *amount,
        "-c", str(conns), "-m", str(streams), "-H", f"content-type: {content_type}", "-d", str(body),
    ]
    if log_file:
        cmd.append(f"--log-file={log_file}")
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


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def lock_version(lock: str, name: str) -> str:
    m = re.search(rf'name = "{re.escape(name)}"\nversion = "([^"]+)"', lock)
    return m.group(1) if m else "?"


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
