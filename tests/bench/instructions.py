#!/usr/bin/env python3
"""Instructions per proxied request, counted by callgrind: a figure that does not move
with the load of a shared machine (wall-clock CPU time does).

Each variant runs under `valgrind --tool=callgrind` twice, serving LOW and then HIGH small
JSON-RPC POSTs (a `tools/call`) over one keep-alive connection; the difference of the two
totals divided by HIGH - LOW is the cost of one request, without start-up and shutdown.

    tests/bench/instructions.py NAME=BINARY[:EXTRA_YAML_FILE] ...

EXTRA_YAML_FILE is appended to the generated config (e.g. an `observability:` section).
Build with the `profiling` profile (the release build with symbols, so that callgrind's
counts per function have names; the release profile strips them). Example (the access
log off and on, and an earlier build):

    cargo build --profile profiling -p mcp-edge
    tests/bench/instructions.py off=target/profiling/mcp-edge \
        on=target/profiling/mcp-edge:/tmp/access-log.yaml before=/tmp/old/mcp-edge

MCP_EDGE_BENCH_PROTOCOL=2026-07-28 sends the same call as MCP 2026-07-28 does: its version
in `params._meta` and the mirrored headers (`MCP-Protocol-Version`, `Mcp-Method`,
`Mcp-Name`), which mcp-edge checks against the body.
"""

import http.client
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

LOW, HIGH = 200, 1200
BODY = b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"q":"x"}}}'
PROTOCOL = os.environ.get("MCP_EDGE_BENCH_PROTOCOL")
HEADERS = {"content-type": "application/json"}
if PROTOCOL:
    BODY = (b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search",'
            b'"arguments":{"q":"x"},"_meta":{"io.modelcontextprotocol/protocolVersion":"'
            + PROTOCOL.encode() + b'","io.modelcontextprotocol/clientCapabilities":{}}}}')
    HEADERS.update({"mcp-protocol-version": PROTOCOL, "mcp-method": "tools/call",
                    "mcp-name": "search"})
ANSWER = b'{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"ok"}]}}'


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(tmp, listen, admin, upstream, extra):
    text = f"""version: 1
server:
  threads: 1
  pid_file: {tmp}/pid
  upgrade_sock: {tmp}/upgrade.sock
  grace_period_seconds: 0
listeners: [{{address: "127.0.0.1:{listen}"}}]
admin: {{address: "127.0.0.1:{admin}"}}
upstreams:
  main: {{servers: ["127.0.0.1:{upstream}"]}}
routes: [{{match: {{path_prefix: /}}, upstream: main}}]
filters: []
"""
    if extra:
        text += open(extra).read()
    path = os.path.join(tmp, "mcp-edge.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def count(binary, extra, upstream, requests):
    """Total instructions of one run serving `requests` POSTs."""
    with tempfile.TemporaryDirectory() as tmp:
        listen, admin = free_port(), free_port()
        cfg = config(tmp, listen, admin, upstream, extra)
        out = os.path.join(tmp, "callgrind.out")
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "-c", cfg],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{binary} did not start")
                time.sleep(0.2)
        conn = http.client.HTTPConnection("127.0.0.1", listen, timeout=60)
        for _ in range(requests):
            conn.request("POST", "/mcp", BODY, HEADERS)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
        conn.close()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        text = open(out).read()
        match = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        return int(match.group(1))


def main():
    variants = []
    for arg in sys.argv[1:]:
        name, _, spec = arg.partition("=")
        binary, _, extra = spec.partition(":")
        variants.append((name, binary, extra or None))
    if not variants:
        sys.exit(__doc__)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    upstream = server.server_address[1]
    print(f"| variant | instructions per request ({HIGH - LOW} requests, callgrind) | ratio |")
    print("|---|---|---|")
    first = None
    for name, binary, extra in variants:
        low = count(binary, extra, upstream, LOW)
        high = count(binary, extra, upstream, HIGH)
        per_request = (high - low) / (HIGH - LOW)
        first = first or per_request
        print(f"| {name} | {per_request:,.0f} | {per_request / first:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
