#!/usr/bin/env python3
"""`tools/list` served from mcp-edge's list cache against the upstream (docs/benchmarks.md,
"tools/list from the cache"). Not part of the test suite.

Upstream: the official Python SDK's server (`mcp` 2.x from the test venv,
tests/python/cached_list_server.py: sixteen tools, `cache_hints` putting `ttlMs: 60000,
cacheScope: "public"` on `tools/list`), which counts the POSTs it serves.

Targets, each measured with wrk (a 2026-07-28 `tools/list` POST with its mirrored headers):
  direct       the SDK server itself
  edge         mcp-edge in front of it, `filters: []`, no list cache
  edge-cache   the same with `list_cache: {}` on the route
at 1 connection (latency) and at 16 connections (throughput), reporting requests/s, p50,
p99 and how many requests reached the SDK server.

Usage: python3 tests/bench/list_cache.py [--seconds 5] [--bin target/release/mcp-edge]
(the release binary: `cargo build --release -p mcp-edge`; the venv: any test using the
Python SDK creates target/mcp-edge-test-venv, or set MCP_EDGE_TEST_PYTHON).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import EDGE_BIN, REPO, free_port, http_get, log, wait_port  # noqa: E402

BODY = ('{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{'
        '"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
        '"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"0"},'
        '"io.modelcontextprotocol/clientCapabilities":{}}}}')
SCRIPT = f"""wrk.method = "POST"
wrk.body = [[{BODY}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/list"
"""


def python():
    return os.environ.get("MCP_EDGE_TEST_PYTHON") or os.path.join(
        REPO, "target", "mcp-edge-test-venv", "bin", "python")


def start_server():
    port = free_port()
    server = subprocess.Popen(
        [python(), os.path.join(REPO, "tests", "python", "cached_list_server.py"), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in server.stdout:
        if line.startswith("READY"):
            return server, port
    raise SystemExit("the SDK server did not start")


def start_edge(binary, upstream, cache, workdir):
    listen, admin = free_port(), free_port()
    route_extra = "    list_cache: {}\n" if cache else ""
    config = os.path.join(workdir, f"edge-{listen}.yaml")
    with open(config, "w") as f:
        f.write(f"""version: 1
server:
  threads: 2
  pid_file: {workdir}/edge-{listen}.pid
  upgrade_sock: {workdir}/edge-{listen}.sock
listeners: [{{address: "127.0.0.1:{listen}"}}]
admin: {{address: "127.0.0.1:{admin}"}}
upstreams:
  sdk: {{servers: ["127.0.0.1:{upstream}"]}}
routes:
  - match: {{path_prefix: /mcp}}
    upstream: sdk
{route_extra}filters: []
""")
    edge = subprocess.Popen([binary, "-c", config], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(workdir, f"edge-{listen}.log"), "w"))
    if not wait_port(listen):
        raise SystemExit("mcp-edge did not start")
    return edge, listen


def upstream_count(port):
    return int(http_get(port, "/count")[1])


def run(port, sdk_port, seconds, conns):
    script = os.path.join(tempfile.gettempdir(), "bench-tools-list.lua")
    with open(script, "w") as f:
        f.write(SCRIPT)
    before = upstream_count(sdk_port)
    out = subprocess.run(["wrk", f"-t{min(conns, 2)}", f"-c{conns}", f"-d{seconds}s", "--latency",
                          "-s", script, f"http://127.0.0.1:{port}/mcp"],
                         capture_output=True, text=True).stdout
    reached = upstream_count(sdk_port) - before
    parsed = parse(out)
    parsed["upstream"] = reached
    return parsed


def parse(out):
    import re

    def lat(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)] if m else None
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    reqs = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "requests": int(reqs.group(1)) if reqs else 0,
            "p50": lat(50), "p99": lat(99), "non2xx": int(non2xx.group(1)) if non2xx else 0}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--bin", default=EDGE_BIN)
    args = parser.parse_args()
    server, sdk_port = start_server()
    procs = [server]
    with tempfile.TemporaryDirectory() as workdir:
        try:
            edge, edge_port = start_edge(args.bin, sdk_port, False, workdir)
            cached, cached_port = start_edge(args.bin, sdk_port, True, workdir)
            procs += [edge, cached]
            rows = []
            for conns in (1, 16):
                for name, port in (("direct", sdk_port), ("edge", edge_port), ("edge-cache", cached_port)):
                    log(f"{name}, {conns} connection(s), {args.seconds} s")
                    rows.append((name, conns, run(port, sdk_port, args.seconds, conns)))
            print("| target | connections | requests/s | p50 ms | p99 ms | requests | reached the SDK server | non-2xx |")
            print("|---|---|---|---|---|---|---|---|")
            for name, conns, r in rows:
                print(f"| {name} | {conns} | {r['rps']:.0f} | {r['p50']:.3f} | {r['p99']:.3f} | "
                      f"{r['requests']} | {r['upstream']} | {r['non2xx']} |")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


if __name__ == "__main__":
    main()
