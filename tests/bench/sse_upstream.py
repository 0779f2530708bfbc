"""The asyncio SSE upstream (`bench.py sse-upstream PORT`).

/sse/full (as fast as possible), /sse/slow (400 KB/s), /sse/fan (10 events/s,
wall-clock stamped), /sse/idle (the head, then silence: a standing GET stream),
/stats?tag= (per-connection open/close/stall/bytes as JSON).
"""

import asyncio
import json
import time
import urllib.parse

from common import raise_nofile

FULL_EVENT = 1024          # bytes per event on /sse/full
SLOW_EVENT = 16000         # bytes per event on /sse/slow (25 events/s = 400 KB/s)
SLOW_INTERVAL = 0.04
FAN_INTERVAL = 0.1         # 10 events/s per stream
FAN_PAD = "x" * 96


class UpstreamConn(asyncio.Protocol):
    server = None  # the SseUpstream

    def connection_made(self, transport):
        self.t = transport
        self.buf = b""
        self.info = None
        self.task = None
        transport.set_write_buffer_limits(high=4 << 20, low=1 << 20)
        self.paused = False
        self.resume = None

    def data_received(self, data):
        if self.info is not None:
            return
        self.buf += data
        if b"\r\n\r\n" not in self.buf:
            return
        line = self.buf.split(b"\r\n", 1)[0].decode()
        path = line.split(" ")[1]
        url = urllib.parse.urlsplit(path)
        q = dict(urllib.parse.parse_qsl(url.query))
        self.server.handle(self, url.path, q)

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False
        if self.resume:
            self.resume()

    def connection_lost(self, exc):
        if self.info is not None:
            self.info["closed"] = time.time()
        self.server.fan_remove(self)
        if self.task:
            self.task.cancel()


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")


class SseUpstream:
    def __init__(self):
        self.conns = {}       # tag -> list of info dicts
        self.fan = [set() for _ in range(10)]
        self.fan_i = 0
        ev = b"data: " + b"y" * (FULL_EVENT - 8) + b"\n\n"
        self.full_chunk = chunk(ev * 256)
        self.slow_chunk = chunk(b"data: " + b"z" * (SLOW_EVENT - 8) + b"\n\n")

    def handle(self, c, path, q):
        c.info = {"opened": time.time(), "closed": None, "stalled": None, "bytes": 0}
        tag = q.get("tag", "")
        if path == "/stats":
            body = json.dumps(self.conns.get(tag, [])).encode()
            c.info = {"closed": None}
            c.t.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n%s" % (len(body), body))
            c.t.close()
            return
        if path.endswith("/idle"):
            c.buf = b""
            c.t.write(SSE_HEAD)   # and nothing more: no task, no timer, not in /stats
            return
        self.conns.setdefault(tag, []).append(c.info)
        c.t.write(SSE_HEAD)
        if path.endswith("/full"):
            def pump():
                while not c.paused and not c.t.is_closing():
                    c.t.write(self.full_chunk)
                    c.info["bytes"] += len(self.full_chunk)
            c.resume = pump
            pump()
        elif path.endswith("/slow"):
            c.task = asyncio.get_running_loop().create_task(self.slow(c))
        elif path.endswith("/fan"):
            self.fan[self.fan_i % 10].add(c)
            self.fan_i += 1
            c.t.write(chunk(b'data: {"t":%.6f,"p":"%s"}\n\n' % (time.time(), FAN_PAD.encode())))

    async def slow(self, c):
        nxt = time.monotonic()
        while not c.t.is_closing():
            c.t.write(self.slow_chunk)
            c.info["bytes"] += len(self.slow_chunk)
            if c.info["stalled"] is None and c.t.get_write_buffer_size() > 256 * 1024:
                c.info["stalled"] = time.time()
            nxt += SLOW_INTERVAL
            await asyncio.sleep(max(0, nxt - time.monotonic()))

    def fan_remove(self, c):
        for s in self.fan:
            s.discard(c)

    async def ticker(self):
        slot = 0
        nxt = time.monotonic()
        while True:
            nxt += FAN_INTERVAL / 10
            await asyncio.sleep(max(0, nxt - time.monotonic()))
            for c in list(self.fan[slot]):
                if c.t.is_closing():
                    continue
                c.t.write(chunk(b'data: {"t":%.6f,"p":"%s"}\n\n' % (time.time(), FAN_PAD.encode())))
            slot = (slot + 1) % 10


def run_sse_upstream(port):
    raise_nofile()
    up = SseUpstream()
    UpstreamConn.server = up

    async def main():
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(UpstreamConn, "127.0.0.1", port, backlog=4096)
        loop.create_task(up.ticker())
        async with srv:
            await srv.serve_forever()
    asyncio.run(main())
