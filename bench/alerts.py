#!/usr/bin/env python3
"""`make bench`'s alert figure: Check latency with a hung alert receiver beside none.

Two `target/release/healthweb serve` runs with the same 50 services, one after the
other, each pinned to CPU 0 with h2load on CPU 1 (native gRPC Check over h2c, as the
throughput table): one with no alerts configured, one whose rule alerts on every
service to a receiver that accepts connections and never answers (a timeout of 30 s
and a deadline of 10 min, so every notification stays stuck in delivery). Throughout
both runs a thread flips the services through the admin API, so the second run keeps
making notifications for the hung receiver while Check is measured. Reported as
p50 / p99 and req/s, and their ratio to the run without alerts.

Writes its section into BENCHMARKS.md between `<!-- bench:alerts:begin -->` and
`<!-- bench:alerts:end -->` (appended when missing). Python 3 standard library only.

Usage: python3 bench/run.py --only alerts [--seconds S] [--rounds N]
"""

from __future__ import annotations

import http.client
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

SERVICES = 50
BEGIN, END = "<!-- bench:alerts:begin -->", "<!-- bench:alerts:end -->"


class Hung:
    """A receiver on 127.0.0.1 that accepts every connection and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def stop(self) -> None:
        self.stopped = True
        self.sock.close()
        for conn in self.held:
            conn.close()


def config(path: Path, hung: Hung | None) -> Path:
    lines = ["[services]"] + [f'svc-{i} = "SERVING"' for i in range(SERVICES)]
    if hung:
        lines += [
            "[[alert]]", 'name = "hung"', 'type = "webhook"', f'url = "http://127.0.0.1:{hung.port}/hook"',
            'timeout = "30s"', 'deadline = "10m"',
            "[[alert_rule]]", 'name = "all"', 'services = ["svc-*"]', 'receivers = ["hung"]',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def flipper(admin: int, stop: threading.Event, flips: list[int]) -> None:
    """Flips the services through the admin API until `stop`, one at a time."""
    i = 0
    while not stop.is_set():
        service, status = f"svc-{i % SERVICES}", ("NOT_SERVING", "SERVING")[(i // SERVICES) % 2]
        conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=5)
        try:
            conn.request("PUT", f"/services?name={service}", body=f'{{"status": "{status}"}}',
                         headers={"content-type": "application/json"})
            conn.getresponse().read()
            flips[0] += 1
        finally:
            conn.close()
        i += 1
        time.sleep(0.02)


def measure(r, hung: Hung | None, seconds: int, tmp: Path) -> dict:
    base = {p.name: p for p in r.peers()}["healthweb"]
    command = [*base.command, "--config", str(config(tmp / f"alerts-{bool(hung)}.toml", hung))]
    peer = r.Peer(base.name, base.what, command, ("grpc-h2c",), env=base.env)
    server = r.start(peer)
    stop, flips = threading.Event(), [0]
    thread = threading.Thread(target=flipper, args=(server.admin, stop, flips), daemon=True)
    try:
        r.check_one(server, "grpc-h2c")
        thread.start()
        time.sleep(1)  # notifications are piling up on the hung receiver by now
        res = r.load(server, "grpc-h2c", seconds, tmp)
    finally:
        stop.set()
        thread.join(10)
        server.stop()
    res["flips"] = flips[0]
    res["held"] = len(hung.held) if hung else 0
    return res


def run_section(r, args) -> str:
    started = time.monotonic()
    rounds = max(1, args.rounds)
    runs: dict[str, list[dict]] = {"none": [], "hung": []}
    hung = Hung()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(rounds):
                for name in ("none", "hung") if i % 2 == 0 else ("hung", "none"):
                    res = measure(r, hung if name == "hung" else None, args.seconds, Path(tmp))
                    runs[name].append(res)
                    r.log(f"alerts round {i + 1}/{rounds} {name:4} {res['rps']:>9.0f} req/s  p50 {res['p50']:.2f} ms  "
                          f"p99 {res['p99']:.2f} ms  ({res['flips']} flips, {res['held']} connections held)")
    finally:
        hung.stop()
    med = {name: {k: statistics.median(x[k] for x in rs) for k in ("rps", "p50", "p99")}
           for name, rs in runs.items()}
    none, stuck = med["none"], med["hung"]
    lines = [
        "## Check with a hung alert receiver",
        "",
        f"`healthweb serve` with {SERVICES} services flipped through the admin API every 20 ms, native gRPC "
        "Check under h2load (4 connections x 32 streams; server on CPU 0, load on CPU 1), without alerts and "
        "with a rule alerting on every service to a receiver that never answers (timeout 30 s): "
        f"the median of {rounds} round(s) of {args.seconds} s each; "
        f"`python3 bench/run.py --only alerts` ({' '.join(args.argv) or 'defaults'}), "
        f"{time.monotonic() - started:.0f} s. {r.machine()}.",
        "",
        "| receiver | req/s | p50 ms | p99 ms |",
        "|---|---|---|---|",
        f"| none (no alerts) | {r.fmt_rate(none['rps'])} | {none['p50']:.2f} | {none['p99']:.2f} |",
        f"| hung | {r.fmt_rate(stuck['rps'])} | {stuck['p50']:.2f} | {stuck['p99']:.2f} |",
        f"| hung / none | {stuck['rps'] / none['rps']:.2f}x | {stuck['p50'] / none['p50']:.2f}x | "
        f"{stuck['p99'] / none['p99']:.2f}x |",
        "",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        r.write_section(BEGIN, END, section, "alerts")
    return section
