"""Shared constants and small socket/process helpers for the benchmark modules."""

import os
import resource
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BENCH_PY = os.path.join(HERE, "bench.py")   # re-invoked for the sse-upstream / wrk-json modes
EDGE_BIN = os.path.join(REPO, "target", "release", "mcp-edge")
CONF = os.path.join(REPO, "conf", "mcp-edge.yaml")
JSON_BODY = ('{"jsonrpc":"2.0","id":1,"method":"tools/call",'
             '"params":{"name":"echo","arguments":{"text":"hello"}}}')
JSON_RESULT = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}],"isError":false}}'


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def raise_nofile(want=65536):
    """Soft RLIMIT_NOFILE up to the hard limit; the hard limit itself up to `want` when
    allowed (root). Children (proxies, upstreams, wrk) inherit it. Returns the soft limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            pass
    soft = want if hard == resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, limit=20.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def http_get(port, path, limit=5.0):
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            raw += b
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body
