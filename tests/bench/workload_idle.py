"""Workload 7: N idle standing SSE streams (the MCP SDK's GET stream), then POSTs beside them.

Each client sends `GET /sse/idle` (Accept: text/event-stream); the upstream answers the head
and then stays silent. A stream counts as open only once its response head arrived: a proxy
that holds the head back until the first body bytes shows up as missing heads (the clients
give up waiting after `a.head_timeout` s). With all streams open, wrk POSTs to the fixed
upstream at modest load; the same wrk run before the streams opened is the reference.
"""

import asyncio
import socket
import struct
import time

from clients import sse_request, wrk
from measure import pct, rss_bytes

POST_CONNS = 10     # wrk -t1 -c10 beside the streams
BATCH = 200         # connections opened per batch


class IdleClient(asyncio.Protocol):
    """One standing stream: records when its head arrived; keeps reading (keepalives)."""

    def __init__(self, st, req):
        self.st = st
        self.req = req
        self.head = b""
        self.done = False
        self.sent = None

    def connection_made(self, t):
        self.t = t
        self.sent = time.time()
        t.write(self.req)

    def data_received(self, data):
        if self.done:
            self.st["body_bytes"] += len(data)
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return
        now = time.time()
        self.done = True
        if self.head.split(b" ", 2)[1:2] == [b"200"]:
            self.st["heads"].append(now)
            self.st["head_lat"].append(now - self.sent)
        else:
            self.st["bad"] += 1
        self.st["body_bytes"] += len(self.head) - end - 4
        self.head = b""

    def connection_lost(self, exc):
        self.st["lost"] += 1


async def open_idle(port, n, head_timeout):
    loop = asyncio.get_running_loop()
    st = {"heads": [], "head_lat": [], "bad": 0, "lost": 0, "failed": 0, "body_bytes": 0, "errors": set()}
    req = sse_request("/sse/idle")
    conns = []
    t0 = time.time()
    for i in range(0, n, BATCH):
        batch = await asyncio.gather(*[loop.create_connection(lambda: IdleClient(st, req), "127.0.0.1", port)
                                       for _ in range(min(BATCH, n - i))], return_exceptions=True)
        for item in batch:
            if isinstance(item, Exception):
                st["failed"] += 1
                st["errors"].add(repr(item)[:80])
            else:
                conns.append(item[0])
        await asyncio.sleep(0.005)
    st["connect_s"] = time.time() - t0
    deadline = time.time() + head_timeout
    while len(st["heads"]) + st["bad"] + st["lost"] < len(conns) and time.time() < deadline:
        await asyncio.sleep(0.05)
    st["t0"] = t0
    return conns, st


def w7_idle(target, a):
    n = a.idle_streams

    async def run():
        port = target.url_port("fixed")
        ref = await asyncio.to_thread(wrk, port, a.idle_post_seconds, POST_CONNS, 1)
        await asyncio.sleep(0.5)
        idle_rss = rss_bytes(target.pids())
        conns, st = await open_idle(target.url_port("sse"), n, a.head_timeout)
        heads = len(st["heads"])
        all_heads_s = (max(st["heads"]) - st["t0"]) if heads == n else None
        await asyncio.sleep(1)
        open_rss = rss_bytes(target.pids())
        held_before_post = len(conns) - st["lost"]
        post = await asyncio.to_thread(wrk, port, a.idle_post_seconds, POST_CONNS, 1)
        held = len(conns) - st["lost"]
        for t in conns:
            sock = t.get_extra_info("socket")
            if sock is not None:
                try:   # reset: no client-side TIME_WAIT pile-up between targets
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            t.abort()
        await asyncio.sleep(0.5)
        proxy = target.proxy and held_before_post > 0
        return {
            "n": n, "connected": len(conns), "failed": st["failed"], "errors": sorted(st["errors"])[:3],
            "heads": heads, "bad": st["bad"], "held": held, "held_before_post": held_before_post,
            "connect_s": st["connect_s"], "all_heads_s": all_heads_s,
            "head_p50_ms": (pct(st["head_lat"], 50) or 0) * 1e3 if heads else None,
            "head_p99_ms": (pct(st["head_lat"], 99) or 0) * 1e3 if heads else None,
            "head_timeout": a.head_timeout,
            "rss_idle_mb": idle_rss / 1e6 if proxy else None,
            "rss_open_mb": open_rss / 1e6 if proxy else None,
            "rss_per_stream_kib": ((open_rss - idle_rss) / max(1, held_before_post) / 1024) if proxy else None,
            "post_rps": post["rps"], "post_p50": post["p50"], "post_p99": post["p99"],
            "post_errors": post["non2xx"] + post["sockerr"],
            "ref_rps": ref["rps"], "ref_p50": ref["p50"], "ref_p99": ref["p99"],
            "body_bytes": st["body_bytes"],
        }
    return asyncio.run(run())


def prepare(target, a):
    """Before start(): let nginx/HAProxy accept every stream plus wrk's connections."""
    target.conns = a.idle_streams + 200
    target.nofile = a.nofile


def streams_for(requested, nofile):
    """A single-process proxy needs two fds per stream (client and upstream legs): N is capped
    so that it fits in RLIMIT_NOFILE with 1000 to spare. Returns (N, note or None)."""
    cap = (nofile - 1000) // 2
    if requested <= cap:
        return requested, None
    return cap, (f"{requested} streams requested, capped at {cap}: RLIMIT_NOFILE is {nofile} here "
                 f"(hard limit) and a single-process proxy needs 2 fds per stream")


w7_idle.prepare = prepare
