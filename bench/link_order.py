#!/usr/bin/env python3
"""`make link-order`: which functions healthweb runs, in the order the linker should lay them out.

Idle RSS follows how far apart the code that runs lies in the binary, not how much of
it runs: the kernel maps a binary's text a page-cache folio at a time (64 KiB or more
around each fault), so a few hundred small functions spread over 4.7 MiB of text map
nearly all of it. With the functions that run put next to each other, the same run maps
a third as much (BENCHMARKS.md). This script finds them and writes server/link-order.ld,
a linker script that server/build.rs hands to rust-lld for release builds.

It builds target/release/healthweb and runs it as `make bench` does, under valgrind's
callgrind, which counts every function that runs, however rarely, in two phases:

1. three starts with `make bench`'s flags (the first creates the history, the others
   find it left by a kill), one Check by curl and one by healthweb's own client, a
   second and a half of idle: what every start runs;
2. then one call in every wire (gRPC-Web binary over HTTP/2 and HTTP/1.1, text), a
   Watch that sees a change, History, /healthz, /metrics, a badge, the status page,
   and the drain on SIGTERM: what a server in use runs.

The script puts phase 1's functions, then phase 2's new ones, ahead of the rest of the
text, which keeps the linker's own order. It names them with the parts a rebuild
changes as wildcards (`bench/run.py`'s `link_pattern`), each after its exact name:
exact names lay the code out tightest, but only a build like `make server`'s has
them (one that selects other packages too gives shared dependencies other features,
and their functions other names), and a toolchain or dependency update changes them.
Rerun this when the code that runs changes; `make bench` says how many of the names
and patterns the binary still matches.

Usage: python3 bench/link_order.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (the bench's server, its Check by curl, its logging)

OUT = bench.LINK_ORDER
HEALTHWEB = bench.RELEASE / "healthweb"


def install() -> None:
    bench.apt_install("valgrind", "valgrind")
    bench.log("cargo build --release --bin healthweb (as make server)")
    bench.run(["cargo", "build", "--release", "--bin", "healthweb"], cwd=bench.ROOT)


def functions(profile: Path) -> set[str]:
    """The functions of healthweb's own binary that ran, as linker symbols.
    Callgrind names each file, object and function once as `fn=(id) name` and by
    `(id)` after that; a function ran if a cost line follows its `fn=`."""
    names: dict[str, dict[str, str]] = {"ob": {}, "fn": {}}
    ran: set[str] = set()
    fn = None
    ours = False
    for line in profile.read_text(errors="replace").splitlines():
        m = re.match(r"^(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line)
        if m:
            callee, kind, ident, name = m.groups()
            if name is not None:
                names[kind][ident] = name
            if not callee and kind == "ob":
                ob = Path(names["ob"][ident])
                ours = ob.exists() and ob.samefile(HEALTHWEB)
            elif not callee and kind == "fn":
                fn = names["fn"][ident]
            continue
        if ours and fn and line[:1] and line[0] in "0123456789+-*":
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) > 0:
                ran.add(fn)
    return ran


def symbols() -> dict[str, int]:
    """Every function symbol in the binary, with its size."""
    out = bench.run(["nm", "-S", "--defined-only", str(HEALTHWEB)])
    return {p[3]: int(p[1], 16) for p in (l.split() for l in out.splitlines()) if len(p) == 4 and p[2] in "tTwW"}


def curl(*args: str) -> None:
    bench.run(["curl", "-sS", "--max-time", "60", "-o", "/dev/null", *args])


def use(server: bench.Server, tmp: Path) -> None:
    """Phase 2: a server in use, every wire and page once."""
    base = f"http://127.0.0.1:{server.port}"
    for mode in ("web-h2", "web-h1", "text-h1"):
        bench.check_one(server, mode)
    for path in ("/healthz", "/metrics", "/badge/bench.svg", "/", "/app.js", "/style.css"):
        curl(base + path)
    # {service: "bench"}, one gRPC frame: the request of History's calls and of Watch.
    bench_request = tmp / "bench-request"
    bench_request.write_bytes(b"\0\0\0\0\x07\x0a\x05bench")
    for method in ("Transitions", "Uptime"):
        curl("--http1.1", "-H", "content-type: application/grpc-web+proto", "--data-binary", f"@{bench_request}",
             f"{base}/healthweb.v1.History/{method}")
    # A Watch that hears one change, then ends at its deadline.
    watcher = subprocess.Popen(
        ["curl", "-sS", "--max-time", "60", "--http2-prior-knowledge", "-H", "content-type: application/grpc",
         "-H", "te: trailers", "-H", "grpc-timeout: 20S", "--data-binary", f"@{bench_request}", "-o", "/dev/null",
         f"{base}/grpc.health.v1.Health/Watch"])
    time.sleep(5)
    for status in ("NOT_SERVING", "SERVING"):
        bench.run([str(HEALTHWEB), "set", "--admin", f"127.0.0.1:{server.admin}", "bench", status])
    if watcher.wait(90) != 0:
        sys.exit("the Watch under callgrind failed")


def main() -> None:
    install()
    peer = {p.name: p for p in bench.peers()}["healthweb"]
    history = str(bench.HISTORY_DIR / "link-order.db")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        command = peer.command
        ran: set[str] = set()
        later: set[str] = set()
        # The first start creates the history; the others find it left by a kill,
        # as every start after the first does (`make bench` kills with SIGKILL).
        # Three starts: what a start runs depends a little on timing.
        for n in range(3):
            last = n == 2
            profile = tmp / f"start{n}.out"
            peer.command = ["valgrind", "--tool=callgrind", "--demangle=no", "--dump-instr=no",
                            f"--callgrind-out-file={profile}", *(a.replace("{history}", history) for a in command)]
            bench.log(f"healthweb under callgrind, start {n + 1} of 3: one Check by curl, one by tonic, idle")
            server = bench.start(peer)
            try:
                bench.check_one(server, "grpc-h2c")
                bench.run([str(HEALTHWEB), "check", "--addr", f"http://127.0.0.1:{server.port}"])
                time.sleep(1.5)
                bench.run(["callgrind_control", "--dump=start", str(server.proc.pid)])
                if last:
                    bench.log("every wire, History, the pages, a Watch, the drain")
                    use(server, tmp)
                    server.proc.terminate()
                    if server.proc.wait(60) != 0:
                        sys.exit(f"healthweb under callgrind exited with {server.proc.returncode}")
                else:
                    server.proc.kill()
            finally:
                server.stop()
            # Callgrind numbers a dump on request `.1`; the one at exit has no number.
            ran |= functions(Path(f"{profile}.1"))
            if last:
                later = functions(profile)
    known = symbols()
    first = ran & known.keys()
    if len(first) < 500:
        sys.exit(f"callgrind saw only {len(first)} of healthweb's functions run at start; is {HEALTHWEB} the binary it ran?")
    rest = (later - first) & known.keys()
    kib = lambda names: sum(known[f] for f in names) / 1024  # noqa: E731
    write(first, rest, [
        f"{len(first)} functions run by a start, one Check and a second of idle ({kib(first):.0f} KiB),",
        f"then {len(rest)} more run by a server in use ({kib(rest):.0f} KiB), of {sum(known.values()) / 1024:.0f} KiB of text.",
    ])
    bench.log(f"wrote {OUT.relative_to(bench.ROOT)}: {len(first)} + {len(rest)} functions, "
              f"{kib(first):.0f} + {kib(rest):.0f} KiB of {sum(known.values()) / 1024:.0f} KiB")


def write(first: set[str], rest: set[str], summary: list[str]) -> None:
    """A linker script for lld that puts the functions of `first`, then those of
    `rest`, at the start of `.text`; the rest of `.text` follows them, and everything
    else keeps the linker's default layout (INSERT). (An output section of their own
    would do the same, but valgrind names no function outside `.text`.) A function is
    matched by its section, `.text.NAME` (or `.text.unlikely.NAME` and the like): first
    by its exact name, then by a pattern with the parts of NAME a rebuild changes as
    wildcards. Exact names are
    the tightest layout, but only the build they came from has them; the patterns
    outlive toolchain, dependency and feature changes, at the price of taking in every
    instance of a generic function, after the exact ones."""

    def block(names: set[str], done: set[str]) -> list[str]:
        # Sorted: within one list lld keeps the input order anyway, and a rerun then
        # changes only the names that changed.
        lines = []
        for name in sorted(names):
            if name not in done:
                done.add(name)
                lines.append(f"      .text.{name} .text.*.{name}")
        return ["    *(", *lines, "    )"]

    done: set[str] = set()
    script = [
        "/* healthweb's release link order, generated by `make link-order` (bench/link_order.py),",
        *(f"   {line}" for line in summary),
        "   server/build.rs passes it to rust-lld. */",
        "SECTIONS",
        "{",
        "  .text : {",
        "    /* Before main: _start, and glibc's atexit (a static archive's). */",
        "    *Scrt1.o(.text)",
        "    *libc_nonshared.a:atexit.oS(.text)",
    ]
    for what, names in (("a start", first), ("a server in use", rest)):
        script += [f"    /* What {what} runs: exact names, then patterns. */",
                   *block(names, done), *block({bench.link_pattern(n) for n in names}, done)]
    script += ["  }", "}", "INSERT BEFORE .init;"]
    OUT.write_text("\n".join(script) + "\n")


if __name__ == "__main__":
    main()
