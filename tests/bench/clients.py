"""Load generators: wrk for POSTs, asyncio SSE fan-out clients."""

import asyncio
import os
import re
import subprocess
import tempfile
import time

from common import JSON_BODY


def wrk(port, duration, conns=50, threads=2, delay_ms=0):
    """POSTs of a tools/call body to /mcp; delay_ms > 0 paces each connection (a pause of
    that many ms before each request)."""
    script = os.path.join(tempfile.gettempdir(), f"bench-post-{delay_ms}.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = \'%s\'\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                'wrk.headers["Accept"] = "application/json, text/event-stream"\n' % JSON_BODY)
        if delay_ms:
            f.write("function delay()\n  return %d\nend\n" % delay_ms)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency",
                          "-s", script, f"http://127.0.0.1:{port}/mcp"],
                         capture_output=True, text=True).stdout

    def lat(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    reqs = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": int(reqs.group(1)) if reqs else 0,
        "p50": lat(50), "p99": lat(99),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "sockerr": sum(map(int, sock.groups())) if sock else 0,
        "sockdetail": sock.group(0) if sock else "",
        "raw": out,
    }


def sse_request(path):
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n").encode()


STAMP = re.compile(rb'"t":([0-9]+\.[0-9]+)')


class FanClient(asyncio.Protocol):
    def __init__(self, stats):
        self.stats = stats
        self.tail = b""
        self.got_first = False

    def connection_made(self, t):
        self.t = t

    def data_received(self, data):
        now = time.time()
        data = self.tail + data
        cut = data.rfind(b"\n\n")
        if cut < 0:
            self.tail = data[-4096:]
            return
        self.tail = data[cut + 2:]
        stamps = STAMP.findall(data, 0, cut)
        if stamps and not self.got_first:
            self.got_first = True
            self.stats["first"] += 1
        if self.stats["record"]:
            lat = self.stats["lat"]
            for s in stamps:
                lat.append(now - float(s))
        self.stats["events"] += len(stamps)

    def connection_lost(self, exc):
        self.stats["lost"] += 1


async def open_fan(port, n, tag):
    loop = asyncio.get_running_loop()
    stats = {"first": 0, "events": 0, "lat": [], "record": False, "lost": 0}
    conns = []
    req = sse_request(f"/sse/fan?tag={tag}")
    for i in range(0, n, 100):
        batch = await asyncio.gather(*[loop.create_connection(lambda: FanClient(stats), "127.0.0.1", port)
                                       for _ in range(min(100, n - i))], return_exceptions=True)
        for item in batch:
            if isinstance(item, Exception):
                continue
            t, p = item
            t.write(req)
            conns.append((t, p))
        await asyncio.sleep(0.02)
    deadline = time.time() + 20
    while stats["first"] < len(conns) and time.time() < deadline:
        await asyncio.sleep(0.1)
    return conns, stats
