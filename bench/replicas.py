#!/usr/bin/env python3
"""`make bench`'s replica figures: three healthweb replicas on one PostgreSQL.

A throwaway PostgreSQL cluster (Debian's, initdb + pg_ctl in a temporary directory, as
the `postgres` user when run as root; PostgreSQL's default durability), three
`target/release/healthweb serve --history postgres://...` with 30 upstreams (an HTTP
server here that notes which replica probes what, from the monitor's User-Agent), all
on 127.0.0.1. Measured, beside their goals:

1. A change seen on every replica: a status set through one replica's admin API (in
   turn), until a Watch stream (gRPC-Web over HTTP/1.1) on each of the three has it;
   p50, p99 and max over the changes. Goal: p99 <= 1 s.
2. Takeover: `kill -9` of a replica, until each of its upstreams has been probed by
   another. Goal: <= 2 lease periods.
3. A flapping service with history in PostgreSQL, next to the same in SQLite (bench
   `flap`): changes recorded per second, and whether History accounts for all of them.

Writes its section into BENCHMARKS.md between `<!-- bench:replicas:begin -->` and
`<!-- bench:replicas:end -->` (appended when missing). Python 3 standard library only.

Usage: python3 bench/replicas.py [--changes 200] [--kills 3] [--no-write] [--no-build]
       (or python3 bench/run.py --only replicas)
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import pwd
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

UPSTREAMS = 30
BEGIN, END = "<!-- bench:replicas:begin -->", "<!-- bench:replicas:end -->"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A throwaway PostgreSQL: made, started, and deleted by `stop`."""

    def __init__(self, r):
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
        if not found:
            r.log("installing postgresql (apt)")
            sudo = [] if os.geteuid() == 0 else ["sudo"]
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            r.run([*sudo, "apt-get", "install", "-y", "-qq", "postgresql"], env=env)
            found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
        self.r, self.bin = r, found[-1].parent
        self.version = self.bin.parent.name
        self.dir = Path(tempfile.mkdtemp(prefix="healthweb-bench-pg-"))
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self.port, self.password = free_port(), "bench"
        pwfile = self.dir / "password"
        pwfile.write_text(self.password)
        if self.user:
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        self.pg("initdb", "-D", str(self.dir / "data"), "-U", "healthweb", "--pwfile", str(pwfile),
                "--auth-local=trust", "--auth-host=scram-sha-256", "--no-instructions")
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self.pg("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-o", options,
                "-w", "-t", "60", "start")
        self.pg("createdb", "-h", str(self.dir), "-p", str(self.port), "-U", "healthweb", "healthweb")

    def pg(self, program: str, *args: str) -> None:
        done = subprocess.run([str(self.bin / program), *args], capture_output=True, text=True,
                              user=self.user, cwd=self.dir, env={**os.environ, "LC_ALL": "C"})
        if done.returncode != 0:
            sys.exit(f"{program} failed: {done.stdout}{done.stderr}")

    def url(self) -> str:
        return f"postgres://healthweb:{self.password}@127.0.0.1:{self.port}/healthweb"

    def stop(self) -> None:
        subprocess.run([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop"],
                       capture_output=True, user=self.user, cwd=self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


class Upstreams:
    """30 HTTP upstreams on one server: GET /u/N answers 200, noting who asked and when."""

    def __init__(self):
        self.probes: list[tuple[int, str, float]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                agent = self.headers.get("user-agent", "")
                replica = agent.split("(replica ", 1)[-1].rstrip(")")
                with outer.lock:
                    outer.probes.append((int(self.path.rsplit("/", 1)[-1]), replica, time.monotonic()))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a killed replica's connection, reset

        self.server = Quiet(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def config(self, path: Path) -> Path:
        path.write_text("".join(
            f'[[upstream]]\nname = "u{i}"\ntarget = "http://127.0.0.1:{self.port}"\nprotocol = "http"\n'
            f'service = "/u/{i}"\ninterval = "100ms"\ntimeout = "2s"\n\n'
            for i in range(UPSTREAMS)))
        return path

    def first_probe_after(self, upstream: int, since: float, not_by: str) -> float | None:
        with self.lock:
            return next((at for (u, who, at) in self.probes if u == upstream and at > since and who != not_by), None)


def frame(service: str) -> bytes:
    name = service.encode()
    message = (b"\x0a" + bytes([len(name)]) + name) if name else b""
    return b"\0" + len(message).to_bytes(4, "big") + message


def web_stream(port: int, path: str, body: bytes, timeout: float):
    """A server-streaming call over gRPC-Web (HTTP/1.1): yields each message's bytes as
    it arrives, until the trailers, the end of the stream, or its server's (a server
    killed mid-stream ends it too)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"content-type": "application/grpc-web+proto"})
        response = conn.getresponse()
        while True:
            head = response.read(5)
            if len(head) < 5 or head[0] & 0x80:
                return
            yield response.read(int.from_bytes(head[1:5], "big"))
    except (OSError, http.client.HTTPException, ValueError):
        return


def watch(port: int, service: str, events: queue.Queue) -> None:
    """A Watch over gRPC-Web (HTTP/1.1): every status, as it arrives, with its time,
    until the stream or its server ends."""
    for data in web_stream(port, "/grpc.health.v1.Health/Watch", frame(service), 600):
        # HealthCheckResponse: field 1 (status) as a varint, absent when 0 (UNKNOWN).
        events.put((time.monotonic(), data[1] if len(data) >= 2 else 0))


def admin_set(port: int, service: str, status: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("PUT", f"/services?name={service}", body=json.dumps({"status": status}),
                 headers={"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"admin PUT {service}={status}: HTTP {response.status}")


def instance(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/instance")
    return json.loads(conn.getresponse().read())


class Replica:
    def __init__(self, r, cluster: Cluster, name: str, config: Path, lease: str):
        cmd = [str(r.RELEASE / "healthweb"), "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
               "--history", cluster.url(), "--replica-id", name, "--lease-period", lease, "--config", str(config)]
        self.name = name
        self.proc = subprocess.Popen(cmd, env={**os.environ, "HEALTHWEB_LOG": "warn"}, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        r.RUNNING.append(self.proc)
        found = r.Lines(self.proc).ports({"listening", "admin listening"})
        self.port, self.admin = found["listening"], found["admin listening"]

    def probing(self) -> set[str]:
        return set(instance(self.port)["fleet"]["probing"])


def until(what: str, ready, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not ready():
        if time.monotonic() > deadline:
            sys.exit(f"bench/replicas.py: {what}: not within {limit} s")
        time.sleep(0.05)


def balanced(replicas: list[Replica]) -> bool:
    shares = [r.probing() for r in replicas]
    each = UPSTREAMS // len(replicas)
    return all(len(s) == each for s in shares) and len(set().union(*shares)) == UPSTREAMS


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * p))]


def propagation(replicas: list[Replica], changes: int) -> dict:
    """A status set on one replica, until a Watch on every replica has it."""
    admin_set(replicas[0].admin, "flip", "SERVING")
    streams = []
    for replica in replicas:
        events: queue.Queue = queue.Queue()
        threading.Thread(target=watch, args=(replica.port, "flip", events), daemon=True).start()
        streams.append(events)
    for events in streams:  # the current status first
        until("a Watch's first status", lambda e=events: e.get(timeout=30)[1] == 1)
    seen_all = []
    for k in range(changes):
        status, want = ("NOT_SERVING", 2) if k % 2 == 0 else ("SERVING", 1)
        start = time.monotonic()
        admin_set(replicas[k % len(replicas)].admin, "flip", status)
        last = 0.0
        for events in streams:
            while True:
                at, got = events.get(timeout=30)
                if got == want:
                    last = max(last, at)
                    break
        seen_all.append((last - start) * 1000)
    return {"changes": changes, "p50_ms": pct(seen_all, 0.5), "p99_ms": pct(seen_all, 0.99),
            "max_ms": max(seen_all)}


def takeover(r, cluster: Cluster, upstreams: Upstreams, replicas: list[Replica], config: Path, lease: str,
             kills: int) -> list[float]:
    """kill -9 of one replica, until every upstream it probed is probed by another."""
    times = []
    for k in range(kills):
        until("an even share each", lambda: balanced(replicas))
        victim = replicas.pop()
        share = [int(name[1:]) for name in victim.probing()]
        killed = time.monotonic()
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        taken: dict[int, float] = {}

        def all_taken() -> bool:
            for u in share:
                if u not in taken and (at := upstreams.first_probe_after(u, killed, victim.name)) is not None:
                    taken[u] = at
            return len(taken) == len(share)

        until("the killed replica's upstreams probed again", all_taken)
        times.append(max(taken.values()) - killed)
        r.log(f"kill -9 of {victim.name}: its {len(share)} upstreams probed again after {times[-1]:.2f} s")
        replicas.append(Replica(r, cluster, f"r{len(replicas) + 1}-{k + 1}", config, lease))
    return times


def flapping(r, history: str, seconds: int) -> dict:
    cmd = [str(r.RELEASE / "healthweb"), "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
           "--history", history, "--replica-id", "flap"]
    proc = subprocess.Popen(cmd, env={**os.environ, "HEALTHWEB_LOG": "warn"}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    r.RUNNING.append(proc)
    found = r.Lines(proc).ports({"listening", "admin listening"})
    try:
        out = r.run([str(r.RELEASE / "flap"), "--url", f"http://127.0.0.1:{found['listening']}",
                     "--admin", f"127.0.0.1:{found['admin listening']}", "--seconds", str(seconds)],
                    timeout=seconds + 60)
    finally:
        proc.terminate()
        proc.wait(10)
    return json.loads(out)


def report(r, args, lease: str, cluster: Cluster, prop: dict, kills: list[float], flap_pg: dict,
           flap_sqlite: dict, started: float) -> str:
    period = float(lease.rstrip("s"))
    lines = [
        "## Replicas on PostgreSQL",
        "",
        f"Three `healthweb serve --history postgres://... --lease-period {lease}` (the default) on one "
        f"PostgreSQL {cluster.version} (Debian's, its default durability), {UPSTREAMS} HTTP upstreams probed "
        "every 100 ms, all on 127.0.0.1 and unpinned (four processes on the machine's CPUs); "
        f"`python3 bench/run.py --only replicas` ({' '.join(args.argv) or 'defaults'}), "
        f"{time.monotonic() - started:.0f} s. {r.machine()}.",
        "",
        "| figure | goal | measured |",
        "|---|---|---|",
        f"| a change seen by a Watch on every replica (set through each replica's admin API in turn; "
        f"{prop['changes']} changes): p50 / p99 / max | p99 <= 1 s | "
        f"{prop['p50_ms']:.1f} / {prop['p99_ms']:.1f} / {prop['max_ms']:.1f} ms |",
        f"| `kill -9` of a replica to all its upstreams probed again ({len(kills)} kills) | "
        f"<= 2 lease periods ({2 * period:g} s) | "
        f"{', '.join(f'{t:.2f}' for t in kills)} s (max {max(kills) / period:.2f} lease periods) |",
    ]
    for label, flap in (("PostgreSQL", flap_pg), ("SQLite (one instance, for comparison)", flap_sqlite)):
        lost = flap["changes"] - flap["changes_recorded"]
        kept = "none lost" if lost == 0 else f"{lost} of {flap['changes']} missing"
        lines.append(
            f"| a flapping service, history in {label}: changes recorded per second "
            f"({flap['flips_per_s']:.0f} admin calls/s for {flap['seconds']:.0f} s) | all recorded | "
            f"{flap['recorded_per_s']:.0f}/s in {flap['rows_per_s']:.1f} rows/s; {kept} |")
    lines += [
        "",
        "How: the change is timed from the admin call's start to the last of the three Watch "
        "streams' messages; takeover from `kill -9` to the last of the killed replica's upstreams "
        "probed by another (the upstreams note who probes them); the flapping figures are "
        "bench/src/bin/flap.rs, which counts the changes History accounts for against "
        "`healthweb_status_transitions_total`.",
        "",
    ]
    return "\n".join(lines)


def run_section(r, args) -> str:
    """Measures and reports; `r` is bench/kit.py, the shared helpers."""
    started = time.monotonic()
    lease = "5s"
    if getattr(args, "quick", False):
        args.changes, args.kills = min(args.changes, 50), 1
    r.log("replicas: a throwaway PostgreSQL, 30 upstreams, 3 replicas")
    cluster = Cluster(r)
    tmp = Path(tempfile.mkdtemp(prefix="healthweb-bench-replicas-"))
    try:
        upstreams = Upstreams()
        config = upstreams.config(tmp / "healthweb.toml")
        replicas = [Replica(r, cluster, f"r{i}", config, lease) for i in (1, 2, 3)]
        until("an even share each", lambda: balanced(replicas))
        prop = propagation(replicas, args.changes)
        r.log(f"replicas: a change on every replica p50 {prop['p50_ms']:.1f} p99 {prop['p99_ms']:.1f} "
              f"max {prop['max_ms']:.1f} ms")
        kills = takeover(r, cluster, upstreams, replicas, config, lease, args.kills)
        for replica in replicas:
            replica.proc.terminate()
            replica.proc.wait(30)
        flap_pg = flapping(r, cluster.url(), 5)
        flap_sqlite = flapping(r, str(tmp / "flap.db"), 5)
        r.log(f"replicas: flapping, PostgreSQL {flap_pg['recorded_per_s']:.0f}/s, "
              f"SQLite {flap_sqlite['recorded_per_s']:.0f}/s recorded")
    finally:
        r.stop_all()
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    section = report(r, args, lease, cluster, prop, kills, flap_pg, flap_sqlite, started)
    print(section)
    if not args.no_write:
        r.write_section(BEGIN, END, section, "replicas")
    return section


def build(r) -> None:
    r.log("cargo build --release --bin healthweb, and the bench's flap")
    r.run(["cargo", "build", "--release", "--bin", "healthweb"], cwd=r.ROOT)
    r.run(["cargo", "build", "--release", "-p", "healthweb-bench", "--bin", "flap"], cwd=r.ROOT)


def options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--changes", type=int, default=200, help="status changes timed across the replicas")
    ap.add_argument("--kills", type=int, default=3, help="kill -9 takeovers timed")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import kit

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options(ap)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    cli = ap.parse_args()
    cli.argv = sys.argv[1:]
    if not cli.no_build:
        build(kit)
    run_section(kit, cli)
