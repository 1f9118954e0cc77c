#!/usr/bin/env python3
"""A generated fleet: test upstreams with many flipping services, and one healthweb
monitoring every one of them by Watch. All on 127.0.0.1.

`make demo-fleet` (or `python3 bench/fleet.py --demo`) starts it and leaves it running
for a person to look at: SERVERS upstreams (each a `healthweb serve` with its share of
SERVICES services), a healthweb with an `[[upstream]]` for every service and the status
page, and a flipper that sets a random service NOT_SERVING or back every so often
through its upstream's admin API. Ctrl-C stops everything.

`python3 bench/run.py --only fleet` (or this file without --demo) measures it, beside
the issue's goals, and writes its section of BENCHMARKS.md:

1. steady state over --measure seconds (after --warmup) with --flip-rate flips a second: the monitoring
   healthweb's CPU (goal: under 10 % of one core) and RSS (goal: under 128 MiB);
2. its connections to the upstreams (goal: one or a few per address);
3. a flip seen in its registry: from the upstream's admin answer to the change on a
   WatchAll stream on the monitoring healthweb (gRPC-Web over HTTP/1.1); p50, p99, max
   (goal: p99 <= 100 ms);
4. its status page in headless Chromium (bench/page.mjs): first row painted (goal
   <= 1 s after load), a change on an upstream shown (goal <= 1 s), the longest task
   while scrolling top to bottom (goal <= 100 ms), the streams open for the statuses
   (goal: one), the rows in the DOM and the JS heap;
5. three replicas on a throwaway PostgreSQL sharing --split-services upstreams (30,000):
   each replica's share, none probed by two at once, and the upstreams' own count of
   open Watch streams (goal: each upstream probed once).

Python 3 standard library only.

Usage: python3 bench/fleet.py [--services 10000] [--servers 10] [--split-services 30000] [--demo]
       [--no-write] [--no-build]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import kit
from replicas import admin_set, web_stream

ROOT = kit.ROOT
BEGIN, END = "<!-- bench:fleet:begin -->", "<!-- bench:fleet:end -->"
NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def log(message: str) -> None:
    print(f"fleet: {message}", file=sys.stderr, flush=True)


class Healthweb:
    def __init__(self, binary: Path, running: list, history: str, *args: str):
        cmd = [str(binary), "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
               "--history", history, *args]
        self.proc = subprocess.Popen(cmd, env={**os.environ, "HEALTHWEB_LOG": "warn"}, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        running.append(self.proc)
        found = kit.Lines(self.proc).ports({"listening", "admin listening"}, timeout=60)
        self.port, self.admin = found["listening"], found["admin listening"]


def varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def fields(data: bytes):
    """(number, value) of each field of one protobuf message: ints and bytes."""
    i = 0
    while i < len(data):
        key, i = varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(data, i)
        elif wire == 2:
            length, i = varint(data, i)
            value, i = data[i:i + length], i + length
        else:
            raise ValueError(f"wire type {wire}")
        yield number, value


def watch_all(port: int, on_message) -> None:
    """A WatchAll stream over gRPC-Web (HTTP/1.1): calls `on_message(reset, statuses,
    synced)` for every message, with its arrival, until the stream ends."""
    for data in web_stream(port, "/healthweb.v1.Statuses/WatchAll", b"\0\0\0\0\0", 3600):
        at = time.monotonic()
        reset, synced, statuses = False, False, []
        for number, value in fields(data):
            if number == 1:
                reset = bool(value)
            elif number == 2:
                entry = dict(fields(value))
                statuses.append((entry.get(1, b"").decode(), entry.get(2, 0)))
            elif number == 3:
                synced = bool(value)
        on_message(at, reset, statuses, synced)


def upstreams(binary: Path, running: list, services: int, servers: int, tmp: Path):
    """`servers` test upstreams sharing `services` services, and a config that monitors
    each service as an `[[upstream]]`: (names, servers, the server of each name, config)."""
    names = [f"svc-{i:05}" for i in range(services)]
    started = []
    for k in range(servers):
        config = tmp / f"upstream{k}.toml"
        config.write_text("[services]\n" + "".join(f'"{name}" = "SERVING"\n' for name in names[k::servers]))
        started.append(Healthweb(binary, running, "memory", "--config", str(config)))
    owner = {name: started[i % servers] for i, name in enumerate(names)}
    config = tmp / "monitor.toml"
    config.write_text("".join(
        f'[[upstream]]\nname = "{name}"\ntarget = "http://127.0.0.1:{up.port}"\nservice = "{name}"\n'
        f'interval = "5s"\ntimeout = "5s"\n\n' for name, up in owner.items()))
    return names, started, owner, config


def watch_streams(server: Healthweb) -> int:
    """The Watch streams a test upstream has open now (its /metrics)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    return int(next((line.split()[1] for line in text.splitlines()
                     if line.startswith("healthweb_watch_streams ")), 0))


def split(r, args) -> dict:
    """Three replicas on a throwaway PostgreSQL monitor --split-services upstreams: how
    they share them (`/instance`), and the upstreams' own count of Watch streams, which
    is the number of upstreams only when each is watched by exactly one replica."""
    import replicas

    running: list = []
    cluster = replicas.Cluster(r)
    tmp = Path(tempfile.mkdtemp(prefix="healthweb-fleet-split-"))
    try:
        names, servers, _, config = upstreams(r.RELEASE / "healthweb", running, args.split_services,
                                              args.servers, tmp)
        started = time.monotonic()
        fleet = [replicas.Replica(r, cluster, f"r{i}", config, "5s") for i in (1, 2, 3)]
        running += [replica.proc for replica in fleet]
        seen = []
        deadline = started + 300
        settled_s = None
        while time.monotonic() < deadline:
            sets = [replica.probing() for replica in fleet]
            union = set().union(*sets)
            seen.append(([len(s) for s in sets], sum(len(s) for s in sets) - len(union), len(union),
                         sum(watch_streams(server) for server in servers)))
            sizes, overlap, covered, streams = seen[-1]
            if settled_s is None and covered == len(names) and overlap == 0 and streams == len(names):
                settled_s = time.monotonic() - started
                deadline = time.monotonic() + args.split_hold
            time.sleep(1)
        if settled_s is None:
            sys.exit(f"fleet: {len(names)} upstreams not each probed once by 3 replicas within 300 s: {seen[-1]}")
        held = seen[next(i for i, s in enumerate(seen) if s[3] == len(names) and s[1] == 0):]
        log(f"3 replicas: settled after {settled_s:.1f} s, then {held[-1]}")
        return {"upstreams": len(names), "settled_s": settled_s, "hold_s": args.split_hold,
                "sizes": held[-1][0], "max_overlap": max(s[1] for s in held),
                "min_covered": min(s[2] for s in held), "streams": (min(s[3] for s in held), max(s[3] for s in held))}
    finally:
        for proc in running:
            proc.kill()
        cluster.stop()


class Fleet:
    """The upstreams, the monitoring healthweb, and what its WatchAll stream says."""

    def __init__(self, binary: Path, running: list, services: int, servers: int, www: bool):
        self.dir = Path(tempfile.mkdtemp(prefix="healthweb-fleet-"))
        self.names, self.upstreams, self.owner, config = upstreams(binary, running, services, servers, self.dir)
        extra = ["--www", str(ROOT / "www")] if www else []
        # History in a file, as by default: in memory, its rows would count in the RSS.
        self.monitor = Healthweb(binary, running, str(self.dir / "history.db"), "--config", str(config), *extra)
        self.statuses: dict[str, int] = {}
        self.seen: dict[str, list[tuple[float, int]]] = {}
        self.cond = threading.Condition()
        threading.Thread(target=watch_all, args=(self.monitor.port, self._message), daemon=True).start()

    def _message(self, at, reset, statuses, synced) -> None:
        with self.cond:
            if reset:
                self.statuses.clear()
            for name, status in statuses:
                self.statuses[name] = status
                self.seen.setdefault(name, []).append((at, status))
            self.cond.notify_all()

    def wait(self, ready, limit: float, what: str) -> None:
        deadline = time.monotonic() + limit
        with self.cond:
            while not ready():
                if time.monotonic() > deadline:
                    sys.exit(f"fleet: {what} not within {limit:.0f} s")
                self.cond.wait(0.5)

    def serving(self) -> int:
        return sum(1 for name in self.names if self.statuses.get(name) == 1)

    def flip(self, name: str) -> str:
        status = "NOT_SERVING" if self.statuses.get(name) == 1 else "SERVING"
        admin_set(self.owner[name].admin, name, status)
        return status


def cpu_seconds(pid: int) -> float:
    fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def connections(pid: int, ports: set[int]) -> int:
    """Established TCP connections of `pid` to any of `ports` on 127.0.0.1."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        remote_port = int(parts[2].split(":")[1], 16)
        if parts[3] == "01" and parts[9] in inodes and remote_port in ports:
            count += 1
    return count


def flipper(fleet: Fleet, per_second: float, stop: threading.Event) -> None:
    while not stop.wait(1 / per_second):
        fleet.flip(random.choice(fleet.names))


def build(r) -> None:
    r.run(["cargo", "build", "--release", "--bin", "healthweb"], cwd=ROOT)


def options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--services", type=int, default=10_000, help="fleet: upstream services (one [[upstream]] each)")
    ap.add_argument("--servers", type=int, default=10, help="fleet: test upstream servers they are spread on")
    ap.add_argument("--flip-rate", type=float, default=20.0, help="fleet: random flips a second while measuring")
    ap.add_argument("--measure", type=float, default=30.0, help="fleet: seconds of steady state measured")
    ap.add_argument("--warmup", type=float, default=70.0,
                    help="fleet: seconds after every upstream is SERVING before measuring: the history writer "
                         "records the start-up transitions, and the first minute's probe latencies at its end")
    ap.add_argument("--flips", type=int, default=200, help="fleet: flips timed one by one")
    ap.add_argument("--split-services", type=int, default=30_000,
                    help="fleet: upstreams that 3 replicas on PostgreSQL share (0: not measured)")
    ap.add_argument("--split-hold", type=float, default=30.0,
                    help="fleet: seconds the 3 replicas' split is watched once settled")


def measure(fleet: Fleet, args) -> dict:
    started = time.monotonic()
    fleet.wait(lambda: fleet.serving() == len(fleet.names), 600, f"{len(fleet.names)} upstreams SERVING")
    ready_s = time.monotonic() - started
    log(f"all {len(fleet.names)} SERVING after {ready_s:.1f} s; {args.warmup:.0f} s of warm-up, "
        f"then steady state for {args.measure:.0f} s")
    pid = fleet.monitor.proc.pid
    stop = threading.Event()
    threading.Thread(target=flipper, args=(fleet, args.flip_rate, stop), daemon=True).start()
    time.sleep(args.warmup)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(args.measure)
    cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    stop.set()
    rss = rss_mib(pid)
    ports = {up.port for up in fleet.upstreams}
    conns = connections(pid, ports)
    log(f"timing {args.flips} flips one by one")
    delays = []
    for _ in range(args.flips):
        name = random.choice(fleet.names)
        with fleet.cond:
            before = len(fleet.seen.get(name, []))
        want = fleet.flip(name)
        asked = time.monotonic()
        code = {"SERVING": 1, "NOT_SERVING": 2}[want]
        fleet.wait(lambda: any(s == code for _, s in fleet.seen.get(name, [])[before:]), 30, f"flip of {name}")
        with fleet.cond:
            at = next(a for a, s in fleet.seen[name][before:] if s == code)
        delays.append(max(0.0, at - asked) * 1000)
    delays.sort()
    return {"ready_s": ready_s, "cpu": cpu * 100, "rss": rss, "connections": conns, "servers": len(ports),
            "p50": statistics.median(delays), "p99": delays[int(len(delays) * 0.99) - 1], "max": delays[-1]}


def page(fleet: Fleet) -> dict | None:
    """bench/page.mjs against the monitoring healthweb's page; None without Chromium."""
    if not (ROOT / "tests/browser/node_modules/playwright-core").exists() or not Path("/usr/bin/chromium").exists():
        log("no Chromium or playwright-core (make browser-deps): the page is not measured")
        return None
    name = fleet.names[3]
    done = subprocess.run(["node", str(ROOT / "bench/page.mjs"), f"http://127.0.0.1:{fleet.monitor.port}/",
                           f"http://127.0.0.1:{fleet.owner[name].admin}", name],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        sys.exit(f"bench/page.mjs failed: {done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def long_task(ms: float) -> str:
    """The Long Tasks API reports only tasks over 50 ms."""
    return f"{ms:.0f} ms" if ms else "none over 50 ms (the Long Tasks API's floor)"


def section(args, m: dict, p: dict | None, sp: dict | None = None) -> str:
    ok = lambda good: "met" if good else "**missed**"
    if sp:
        once = sp["max_overlap"] == 0 and sp["min_covered"] == sp["upstreams"] and sp["streams"] == (sp["upstreams"],) * 2
        rows_split = [
            f"| 3 replicas on PostgreSQL, {sp['upstreams']:,} upstreams: upstreams each replica probes; probed by two "
            f"at once; Watch streams open on the upstreams, over {sp['hold_s']:g} s once settled "
            f"({sp['settled_s']:.1f} s after start) | {' / '.join(f'{n:,}' for n in sp['sizes'])}; "
            f"{sp['max_overlap']}; {sp['streams'][0]:,}-{sp['streams'][1]:,} | each probed once | {ok(once)} |"]
    else:
        rows_split = []
    rows = [] if p is None else [
        f"| the page: first row painted after load | {p['firstRowMs']} ms | <= 1 s | {ok(p['firstRowMs'] <= 1000)} |",
        f"| the page: a change on an upstream shown | {p['changeMs']} ms | <= 1 s | {ok(p['changeMs'] <= 1000)} |",
        f"| the page: longest task scrolling top to bottom ({p['scrollSteps']} screens) | "
        f"{long_task(p['longestTaskMs'])} | <= 100 ms | {ok(p['longestTaskMs'] <= 100)} |",
        # Less the bench's own WatchAll stream, which times the flips.
        f"| the page: streams open for the statuses | {p['streams']['watchAll'] - 1} WatchAll, {p['streams']['watch']} Watch "
        f"| one | {ok(p['streams']['watchAll'] - 1 == 1 and p['streams']['watch'] == 0)} |",
        f"| the page: rows in the DOM at the bottom; JS heap | {p['rowsInDom']}; "
        f"{p['heapMiB'] or 0:.1f} MiB | | |",
    ]
    return "\n".join([
        BEGIN,
        f"## A fleet: {args.services:,} upstreams on {args.servers} servers, one healthweb",
        "",
        f"`python3 bench/run.py --only fleet` ({args.services} upstreams, each one service of its own, on "
        f"{args.servers} local `healthweb serve`; one release `healthweb` monitors them all by Watch, "
        f"history in an SQLite file; {args.flip_rate:g} random flips a second throughout; CPU and RSS measured over "
        f"{args.measure:g} s after {args.warmup:g} s of warm-up, in which the history writer records the "
        f"{2 * args.services:,} start-up transitions and, at the first minute's end, a latency summary per upstream).",
        "",
        "| figure | measured | goal | |",
        "| --- | ---: | ---: | --- |",
        f"| every upstream SERVING after start | {m['ready_s']:.1f} s | | |",
        f"| CPU of the monitoring healthweb, steady | {m['cpu']:.1f} % of a core | < 10 % | {ok(m['cpu'] < 10)} |",
        f"| its RSS | {m['rss']:.0f} MiB | < 128 MiB | {ok(m['rss'] < 128)} |",
        f"| its connections to the upstreams | {m['connections']} to {m['servers']} addresses | one or a few per address | "
        f"{ok(m['connections'] <= 3 * m['servers'] * max(1, args.services // args.servers // 100))} |",
        f"| a flip seen in its registry (WatchAll), p50 / p99 / max | {m['p50']:.1f} / {m['p99']:.1f} / {m['max']:.1f} ms "
        f"| p99 <= 100 ms | {ok(m['p99'] <= 100)} |",
        *rows,
        *rows_split,
        "",
        "The page's figures: bench/page.mjs, headless Chromium (1000x800) on the monitoring healthweb's "
        "own page, the release module (www/pkg).",
        "",
        END,
    ])


def write(text: str) -> None:
    out = ROOT / "BENCHMARKS.md"
    old = out.read_text() if out.exists() else ""
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + text + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    out.write_text(new)
    log(f"wrote {out.relative_to(ROOT)}")


def run_section(r, args) -> None:
    running: list = []
    try:
        fleet = Fleet(r.RELEASE / "healthweb", running, args.services, args.servers, www=True)
        measured = measure(fleet, args)
        shown = page(fleet)
        for proc in running:
            proc.kill()
        text = section(args, measured, shown, split(r, args) if args.split_services else None)
        print(text)
        if not args.no_write:
            write(text)
    finally:
        for proc in running:
            proc.kill()


def demo(args) -> None:
    binary = kit.RELEASE / "healthweb"
    running: list = []
    try:
        fleet = Fleet(binary, running, args.services, args.servers, www=True)
        print(f"fleet: {args.services} services on {args.servers} upstreams, monitored by "
              f"http://127.0.0.1:{fleet.monitor.port}/ (the status page); "
              f"{args.flip_rate:g} random flips a second. Ctrl-C stops.", flush=True)
        stop = threading.Event()
        threading.Thread(target=flipper, args=(fleet, args.flip_rate, stop), daemon=True).start()
        while all(p.poll() is None for p in running):
            time.sleep(1)
        sys.exit("fleet: a healthweb exited")
    except KeyboardInterrupt:
        pass
    finally:
        for proc in running:
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options(ap)
    ap.add_argument("--demo", action="store_true", help="start the fleet and leave it running")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not args.no_build:
        build(kit)
    if args.demo:
        demo(args)
    else:
        run_section(kit, args)


if __name__ == "__main__":
    main()
