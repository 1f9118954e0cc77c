#!/usr/bin/env python3
"""CPU per Check: healthweb next to tonic-default, as `make bench` runs them.

Throughput on a shared machine swings from one round to the next; the CPU time a
server spends per answered Check swings less, and says where a difference is: user
time (our code and the crates) or system time (the kernel's part of each read and
write). Each round starts each server afresh (pinned to CPU 0, h2load on CPU 1, the
bench's connections and streams), warms it up with REQUESTS Checks, then reads
utime and stime of all its threads (`/proc/PID/task/*/stat`) and its context
switches around exactly REQUESTS more. The servers alternate; the table gives the
median over the rounds, per Check, and healthweb's ratio to tonic-default round by
round. Prints only; BENCHMARKS.md quotes it by hand.

Usage: python3 bench/cpu.py [--rounds 5] [--requests 100000] [--modes web-h1,text-h1,...]
(`make bench` builds what it needs; so does `cargo build --release --bin healthweb
-p healthweb-bench --bin tonic-default`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kit  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def usage(pid: int) -> tuple[float, float, int]:
    """Seconds of user and system time, and context switches, of all of `pid`'s threads."""
    user = system = switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text()
        except FileNotFoundError:  # a thread that ended as we read
            continue
        user, system = user + int(fields[11]), system + int(fields[12])
        switches += sum(int(line.split()[1]) for line in status.splitlines()
                        if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")))
    return user / TICK, system / TICK, switches


def measure(peer: kit.Peer, mode: str, requests: int, tmp: Path) -> dict[str, float]:
    server = kit.start(peer)
    try:
        kit.check_one(server, mode)
        body = tmp / f"{mode}.body"
        body.write_bytes(b"AAAAAAA=" if mode == "text-h1" else kit.FRAME)
        command = kit.h2load_command(server, mode, 0, body, None, requests)
        kit.run(command, timeout=600)  # warm-up
        before = usage(server.proc.pid)
        out = kit.run(command, timeout=600)
        after = usage(server.proc.pid)
    finally:
        server.stop()
    if f"{requests} succeeded" not in out:
        sys.exit(f"{peer.name} {mode}: not every Check succeeded\n{out}")
    user, system, switches = (b - a for a, b in zip(before, after))
    return {"user": user / requests * 1e6, "sys": system / requests * 1e6, "switches": switches / requests}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--modes", default="web-h1,text-h1,grpc-h2c,web-h2")
    args = ap.parse_args()
    modes = args.modes.split(",")
    if unknown := set(modes) - kit.MODES.keys():
        sys.exit(f"unknown modes {sorted(unknown)}; modes are {', '.join(kit.MODES)}")
    for tool, package in (("h2load", "nghttp2-client"), ("curl", "curl"), ("taskset", "util-linux")):
        kit.apt_install(tool, package)
    peers = [p for p in kit.peers() if p.name in ("healthweb", "tonic-default")]
    for peer in peers:
        if not Path(peer.command[0]).exists():
            sys.exit(f"{peer.command[0]} is not built (make bench builds it)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            seen: dict[str, list[dict[str, float]]] = {p.name: [] for p in peers}
            for round_ in range(args.rounds):
                for peer in peers if round_ % 2 == 0 else peers[::-1]:
                    got = measure(peer, mode, args.requests, Path(tmp))
                    seen[peer.name].append(got)
                    kit.log(f"{mode} round {round_ + 1}/{args.rounds} {peer.name:13s} user {got['user']:.2f} us, "
                            f"sys {got['sys']:.2f} us, {got['switches']:.3f} switches a Check")
            total = lambda g: g["user"] + g["sys"]
            ratios = sorted(total(h) / total(t) for h, t in zip(seen["healthweb"], seen["tonic-default"]))
            for name, got in seen.items():
                med = lambda key: statistics.median(g[key] for g in got)
                ratio = f"{ratios[0]:.2f}-{ratios[-1]:.2f}x (median {statistics.median(ratios):.2f}x)" \
                    if name == "healthweb" else ""
                rows.append(f"| {kit.MODES[mode][0]} | {name} | {med('user'):.2f} | {med('sys'):.2f} | "
                            f"{med('switches'):.3f} | {ratio} |")
    print(f"CPU per Check, {args.rounds} rounds of {args.requests:,} Checks after as many to warm up:\n")
    print("| wire | server | user (us) | system (us) | context switches | user + system, healthweb / tonic-default |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
