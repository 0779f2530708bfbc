#!/usr/bin/env python3
"""mcp-edge comparative benchmark (Python 3 stdlib only; wrk, nginx, haproxy from apt).

Runs the same workloads, in one invocation, against:
  direct          the upstream itself (the ceiling)
  edge-balanced   mcp-edge, filters from conf/mcp-edge.yaml (SSE_SEND_TIMEOUT=5)
  edge-nofilters  mcp-edge, `filters: []`
  before-*        with --baseline-bin PATH: edge-nofilters / edge-balanced-norecycle from
                  the binary at PATH (a release build of an earlier commit)
  nginx           proxy_buffering off, upstream keepalive 64, 2 workers, send_timeout 5s
  haproxy         nbthread 2, http-keep-alive, timeout client 5s
and prints/writes a table with ratios to the baselines measured in the same run.

Upstreams (shared by every target):
  fixed  nginx (1 worker) answering every request with `return 200 '<json-rpc result>'`
  sse    this script in `sse-upstream` mode (asyncio): /sse/full (as fast as possible),
         /sse/slow (400 KB/s), /sse/fan (10 events/s, wall-clock stamped), /sse/idle
         (head, then silence), /stats.

Workload 8 (burst) measures the memory given back after a 20,000-connection burst; workload
9 (soak, only with `--only soak`) runs minutes of mixed MCP traffic.

Not part of the test suite. Usage: tests/bench/run.sh [--quick] [--only 1,2|burst|soak]
[--targets a,b] [--soak-minutes N]
"""

# Modules: common (constants, socket helpers), measure (/proc), sse_upstream, targets
# (proxies, upstreams, configs), clients (wrk, SSE), workloads (1-6), workload_idle (7),
# syscalls (--strace), report (tables, docs).

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # sibling modules, however started

from clients import wrk  # noqa: E402
from common import CONF, EDGE_BIN, REPO, free_port, log, raise_nofile  # noqa: E402
from docfile import write_doc  # noqa: E402
from report import machine_info, render  # noqa: E402
from report_memory import render_soak  # noqa: E402
from sse_upstream import run_sse_upstream  # noqa: E402
from targets import make_factories, start_upstreams, stop_upstreams  # noqa: E402
from workload_burst import conns_for  # noqa: E402
from workload_idle import streams_for  # noqa: E402
from workloads import DEFAULT_ONLY, NAMES, WORKLOADS  # noqa: E402

DEFAULT_TARGETS = ("direct,edge-balanced,edge-balanced-norecycle,edge-process-recycle,"
                   "edge-balanced-noyield,edge-nofilters,nginx,haproxy")
BEFORE = ("before-balanced", "before-nofilters")   # need --baseline-bin

# Targets that run only in some workloads (every other target runs in all of them).
ONLY_IN = {
    "edge-balanced": (1, 2, 3, 4, 5, 6),                # workload 7: a recycle would close the streams
    "edge-balanced-norecycle": (1, 4, 6, 7),            # where requests are counted / streams held
    "before-balanced": (1, 4, 6, 7),
    "edge-balanced-noyield": (2,),                      # rapid_yield closes a full-rate stream by design
    "edge-process-recycle": (1, 6),                     # the cost of recycling the proxy process
}
# Workloads that run only for the targets named here (whatever ONLY_IN says).
WORKLOAD_TARGETS = {
    # the allocator's memory return: the shipped chain and no filters, before and after,
    # against nginx (HAProxy cannot hold the burst within RLIMIT_NOFILE: 2 fds per conn)
    8: ("edge-balanced-norecycle", "edge-nofilters", "before-balanced", "before-nofilters", "nginx"),
    9: ("edge-balanced",),   # the soak: the shipped profile as it is
}


def runs(num, name):
    """Whether target `name` takes part in workload `num`."""
    if num in WORKLOAD_TARGETS:
        return name in WORKLOAD_TARGETS[num]
    return num in ONLY_IN.get(name, (num,))


def parse_only(text):
    """--only: workload numbers and/or names (burst, soak)."""
    out = set()
    for item in text.split(","):
        item = item.strip()
        if item in NAMES:
            out.add(NAMES[item])
        elif item.isdigit() and any(n == int(item) for n, _l, _f in WORKLOADS):
            out.add(int(item))
        else:
            sys.exit(f"--only: unknown workload {item!r} (numbers 1-{len(WORKLOADS)} or {', '.join(NAMES)})")
    return out


def target_names(a):
    """--targets (or the default), plus both before-* after the last edge-* target when
    --baseline-bin is given and --targets names neither."""
    names = a.targets.split(",") if a.targets else DEFAULT_TARGETS.split(",")
    if a.baseline_bin and not any(n in BEFORE for n in names):
        edge = [i for i, n in enumerate(names) if n.startswith("edge-")]
        i = edge[-1] + 1 if edge else len(names)
        names[i:i] = list(BEFORE)
    if not a.baseline_bin and any(n in BEFORE for n in names):
        sys.exit("before-* targets need --baseline-bin PATH")
    return names


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "sse-upstream":
        run_sse_upstream(int(sys.argv[2]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "soak-upstream":
        from soak_upstream import run_soak_upstream
        run_soak_upstream(int(sys.argv[2]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "soak-victim":
        from workload_soak import run_victim
        run_victim(int(sys.argv[2]), int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "wrk-json":
        r = wrk(int(sys.argv[2]), int(sys.argv[3]))
        print(json.dumps(r))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs, fewer streams (development)")
    ap.add_argument("--only", default=DEFAULT_ONLY,
                    help=f"workload numbers or names, e.g. 1,4 or burst or soak (default {DEFAULT_ONLY}: "
                    "every workload but the soak)")
    ap.add_argument("--targets", default="", help=f"comma-separated (default {DEFAULT_TARGETS}; "
                    "--baseline-bin adds before-balanced,before-nofilters unless one is listed)")
    ap.add_argument("--baseline-bin", default="", metavar="PATH",
                    help="release binary of an earlier commit: adds targets before-nofilters, before-balanced")
    ap.add_argument("--baseline-conf", default="", metavar="PATH",
                    help="that commit's conf/mcp-edge.yaml (its filter keys); default: this checkout's")
    ap.add_argument("--idle-streams", type=int, default=0, metavar="N",
                    help="workload 7 streams (default 10000, --quick 1000; capped by RLIMIT_NOFILE)")
    ap.add_argument("--burst-conns", type=int, default=0, metavar="N",
                    help="workload 8 connections (default 20000, --quick 2000; capped by RLIMIT_NOFILE)")
    ap.add_argument("--soak-minutes", type=float, default=10, metavar="N",
                    help="workload 9 (soak) duration in minutes (default 10)")
    ap.add_argument("--strace", action="store_true",
                    help="workload 1: syscalls per request (strace -f -c on each proxy, separate wrk run)")
    ap.add_argument("--doc", default=os.path.join(REPO, "docs", "benchmarks.md"),
                    help="where to write the report ('' to skip)")
    a = ap.parse_args()
    a.duration = 3 if a.quick else 10
    a.sse_seconds = 2 if a.quick else 5
    a.stuck_window = 12 if a.quick else 25
    a.streams = 200 if a.quick else 2000
    a.fan_seconds = 3 if a.quick else 10
    a.abuse_streams = 100 if a.quick else 1000
    a.abuse_wait = 8 if a.quick else 12
    a.reloads = 5 if a.quick else 50
    a.reload_gap = 0.2
    a.idle_streams = a.idle_streams or (1000 if a.quick else 10000)
    a.idle_post_seconds = 3 if a.quick else 5
    a.head_timeout = 20
    a.strace_seconds = 3
    a.burst_conns = a.burst_conns or (2000 if a.quick else 20000)
    a.burst_settle = 8 if a.quick else 20
    a.soak_sample = 5
    a.target_names = target_names(a)
    only = parse_only(a.only)

    a.load_start = os.getloadavg()
    a.nofile = raise_nofile()
    a.idle_streams, a.idle_note = streams_for(a.idle_streams, a.nofile)
    if a.idle_note and 7 in only:
        log("workload 7: " + a.idle_note)
    a.burst_conns, a.burst_note = conns_for(a.burst_conns, a.nofile)
    if a.burst_note and 8 in only:
        log("workload 8: " + a.burst_note)
    for tool in ("wrk", "nginx", "haproxy") + (("strace",) if a.strace else ()):
        if not shutil.which(tool):
            sys.exit(f"{tool} missing: run tests/bench/run.sh (installs it)")
    if not os.path.exists(EDGE_BIN):
        sys.exit(f"{EDGE_BIN} missing: cargo build --release -p mcp-edge")
    if a.baseline_bin and not os.access(a.baseline_bin, os.X_OK):
        sys.exit(f"--baseline-bin {a.baseline_bin}: not an executable file")

    env = {"fixed_port": free_port(), "sse_port": free_port()}
    a.env = env
    ups, updir = start_upstreams(env)

    factories = make_factories(env, a.baseline_bin or None, a.baseline_conf or CONF)
    unknown = [n for n in a.target_names if n not in factories]
    if unknown:
        stop_upstreams(ups, updir)
        sys.exit(f"unknown targets: {', '.join(unknown)} (known: {', '.join(factories)})")
    results = {}
    try:
        for num, label, fn in WORKLOADS:
            if num not in only:
                continue
            results[num] = {}
            for name in a.target_names:
                if not runs(num, name):
                    continue
                t = factories[name]()
                if hasattr(fn, "prepare"):
                    fn.prepare(t, a)
                log(f"[{num}] {label}: {name} ...")
                try:
                    t.start()
                    time.sleep(0.5)
                    r = fn(t, a)
                except Exception as e:   # keep going: one broken target must not hide the rest
                    log(f"    failed: {e!r}")
                    r = None
                finally:
                    code = t.exited()
                    if code is not None:   # died during the workload: say so, with its last words
                        log(f"    {name} exited with status {code} during the workload; log tail:\n"
                            + t.log_tail())
                        if isinstance(r, dict):
                            r["exited"] = code
                    t.stop()
                    if hasattr(fn, "finish"):
                        fn.finish(a)
                results[num][name] = r
                log("    " + json.dumps({k: v for k, v in (r or {}).items() if k not in ("raw", "cpu_samples")},
                                        default=str))
                time.sleep(1)
    finally:
        stop_upstreams(ups, updir)

    command = ("tests/bench/run.sh " + shlex.join(sys.argv[1:])).strip()
    machine = machine_info(a.baseline_bin or None, a.load_start)
    soak = results.pop(9, None)
    top = render(results, a, machine, command) if results else None
    soak_md = None
    if soak:
        r = next((v for v in soak.values() if v), None)
        soak_md = render_soak(r, a, command, machine) if r else None
    print("\n\n".join(x for x in (top, soak_md) if x))
    if a.doc and not a.quick:
        write_doc(a.doc, top, soak_md)
    if soak:
        results[9] = soak
    with open(os.path.join(tempfile.gettempdir(), "bench-results.json"), "w") as fh:
        json.dump({str(k): v for k, v in results.items()}, fh, default=str)


if __name__ == "__main__":
    main()
