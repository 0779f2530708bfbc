"""Workload 8: memory given back after a connection burst.

N client connections are opened concurrently (in waves of WAVE, each connection sending a
tools/call POST as soon as it is up); each reads its response and then holds its
keep-alive connection open. Once every connection holds (or the wait ran out), all are
closed at once and the proxy's RSS is sampled every SAMPLE_EVERY s while it sits idle.

Reported against the base RSS measured before the burst (after a short warm-up): the peak
while all connections were held, and the idle RSS 1 s, 5 s and `a.burst_settle` s after
the close. retained = (RSS at the end - base) / (peak - base): the share of the burst's
memory that the process keeps although nothing is open any more.

Client connections are spread over several 127.0.0.x source addresses so that no
(source address, port) range runs short. N is capped by RLIMIT_NOFILE: a single-process
proxy needs one fd per held connection plus its upstream connections in flight.
"""

import asyncio
import socket
import struct
import time

from clients import wrk
from common import JSON_BODY
from measure import rss_bytes

WAVE = 500            # connections opened (and requests sent) at once
SOURCES = 16          # 127.0.0.2 .. 127.0.0.17
SAMPLE_EVERY = 0.5
REQUEST = (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           f"Accept: application/json, text/event-stream\r\nContent-Length: {len(JSON_BODY)}\r\n\r\n"
           f"{JSON_BODY}").encode()


class HoldClient(asyncio.Protocol):
    """Sends one POST, waits for a complete response (head + Content-Length body), holds."""

    def __init__(self, st):
        self.st = st
        self.buf = b""
        self.done = False
        self.answered = asyncio.get_running_loop().create_future()

    def connection_made(self, t):
        self.t = t
        t.write(REQUEST)

    def data_received(self, data):
        if self.done:
            return
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower()
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if len(self.buf) - end - 4 < length:
            return
        self.done = True
        self.buf = b""
        ok = head.split(b" ", 2)[1:2] == [b"200"]
        self.st["ok" if ok else "bad"] += 1
        if not self.answered.done():
            self.answered.set_result(ok)

    def connection_lost(self, exc):
        self.st["lost"] += 1
        if not self.answered.done():
            self.answered.set_result(False)


async def burst(port, n, answer_timeout):
    """Opens n connections in waves; returns (transports held, stats)."""
    loop = asyncio.get_running_loop()
    st = {"ok": 0, "bad": 0, "lost": 0, "failed": 0, "errors": set()}
    held = []
    t0 = time.time()
    for i in range(0, n, WAVE):
        size = min(WAVE, n - i)
        made = await asyncio.gather(*[
            loop.create_connection(lambda: HoldClient(st), "127.0.0.1", port,
                                   local_addr=(f"127.0.0.{2 + (i + k) % SOURCES}", 0))
            for k in range(size)], return_exceptions=True)
        wave = []
        for item in made:
            if isinstance(item, Exception):
                st["failed"] += 1
                st["errors"].add(repr(item)[:80])
            else:
                wave.append(item)
        # answers of this wave before the next one: upstream legs in flight stay <= WAVE
        if wave:
            await asyncio.wait([p.answered for _t, p in wave], timeout=answer_timeout)
        held.extend(t for t, _p in wave)
    st["open_s"] = time.time() - t0
    return held, st


def w8_burst(target, a):
    if not target.proxy:
        return None
    n = a.burst_conns

    async def run():
        port = target.url_port("fixed")
        await asyncio.to_thread(wrk, port, 2, 10, 1)   # warm-up: threads, pools, caches
        await asyncio.sleep(2)
        base = rss_bytes(target.pids())
        peak = base
        sampler_stop = asyncio.Event()

        async def sample_peak():
            nonlocal peak
            while not sampler_stop.is_set():
                peak = max(peak, rss_bytes(target.pids()))
                await asyncio.sleep(0.2)
        sampler = asyncio.create_task(sample_peak())
        held, st = await burst(port, n, a.head_timeout)
        await asyncio.sleep(1)
        holding = len(held) - st["lost"]
        peak = max(peak, rss_bytes(target.pids()))
        sampler_stop.set()
        await sampler
        for t in held:   # all closed at once (FIN); the proxy sees every client leave
            t.close()
        t_close = time.time()
        curve = []
        while time.time() - t_close < a.burst_settle:
            await asyncio.sleep(SAMPLE_EVERY)
            curve.append((time.time() - t_close, rss_bytes(target.pids())))
        for t in held:   # no TIME_WAIT pile-up between targets
            sock = t.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass

        def at(sec):
            return next((r for s, r in curve if s >= sec), curve[-1][1] if curve else None)
        end = curve[-1][1] if curve else None
        grew = peak - base
        return {
            "n": n, "ok": st["ok"], "bad": st["bad"], "failed": st["failed"], "held": holding,
            "errors": sorted(st["errors"])[:3], "open_s": st["open_s"],
            "base_mb": base / 2**20, "peak_mb": peak / 2**20,
            "after_1s_mb": at(1) / 2**20 if curve else None,
            "after_5s_mb": at(5) / 2**20 if curve else None,
            "end_mb": end / 2**20 if end is not None else None,
            "settle_s": a.burst_settle,
            "retained_mb": (end - base) / 2**20 if end is not None else None,
            "retained_pct": (100 * (end - base) / grew) if (end is not None and grew > 0) else None,
            "end_over_base": end / base if (end and base) else None,
            "curve": [(round(s, 1), round(r / 2**20, 1)) for s, r in curve],
        }
    return asyncio.run(run())


def prepare(target, a):
    """Before start(): let nginx accept every connection of the burst."""
    target.conns = a.burst_conns + WAVE
    target.nofile = a.nofile


def conns_for(requested, nofile):
    """The burst's size: one proxy fd per held connection plus up to WAVE upstream legs in
    flight and its own (listeners, logs): N is capped at RLIMIT_NOFILE - 1000."""
    cap = nofile - 1000
    if requested <= cap:
        return requested, None
    return cap, (f"{requested} connections requested, capped at {cap}: RLIMIT_NOFILE is {nofile} "
                 f"here (hard limit, not raisable in this sandbox) and the proxy needs one fd per "
                 f"held connection plus its upstream legs in flight")


w8_burst.prepare = prepare
