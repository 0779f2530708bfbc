"""Workload 9 (`--only soak`): minutes of mixed MCP traffic, sampling the proxy's RSS, fds
and threads. Not part of the default run; `--soak-minutes N` (default 10).

Traffic, all at once for the whole run, through the proxy to `soak_upstream.py` (and to the
fixed nginx upstream for plain JSON POSTs):
  - wrk POSTs tools/call to /mcp (JSON answers), paced: WRK_CONNS connections, WRK_DELAY_MS
    between requests on each;
  - CALLERS keep-alive clients POST tools/call to /sse/mcp, answered as SSE responses;
  - STANDING standing GET streams (/sse/stream); every ROTATE_EVERY s the ROTATE oldest are
    closed (half FIN, half reset) and as many new ones opened;
  - LEGACY legacy SSE sessions: GET /sse/legacy, the `endpoint` event, then tools/calls
    POSTed to it every LEGACY_GAP s, each result read from the stream; a session ends after
    20-100 calls (half FIN, half reset) and a new one starts;
  - abrupt disconnects: every VICTIM_EVERY s a client process opens VICTIM_CALLS slow calls
    (1-8 s each) and is killed (SIGKILL) 0.1-1 s after their first events, mid-call;
  - slow readers: every SLOW_EVERY s SLOW_BATCH clients (SO_RCVBUF 4096) open /sse/firehose
    (400 KB/s) and never read; they reset their connection after SLOW_HOLD s.
The proxy's processes are sampled every `a.soak_sample` s (RSS, open fds, threads, CPU);
after the run the load stops and, SETTLE s later, the idle figures are taken once more.
"""

import asyncio
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time

from clients import wrk
from common import BENCH_PY, log
from measure import cpu_seconds, rss_bytes

WRK_CONNS, WRK_DELAY_MS = 10, 2
CALLERS = 8
STANDING, ROTATE, ROTATE_EVERY = 200, 10, 5.0
LEGACY, LEGACY_GAP = 20, 0.1
VICTIM_EVERY, VICTIM_CALLS = 2.0, 4
SLOW_EVERY, SLOW_BATCH, SLOW_HOLD = 3.0, 2, 12.0
SETTLE = 10.0


def call_body(rid):
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": "echo", "arguments": {"text": "hello"}}}).encode()


def post(path, body, extra=""):
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body


def get(path):
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()


def reset(writer):
    """Close with an RST (SO_LINGER 0): an abrupt disconnect."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            fields[k.strip().lower()] = v.strip().lower()
    return status, fields


class Events:
    """SSE events from a chunked (or close-delimited) body, however the proxy re-chunks it."""

    def __init__(self, reader, chunked):
        self.reader, self.chunked, self.buf, self.ended = reader, chunked, b"", False

    async def _more(self):
        if not self.chunked:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("stream closed")
            self.buf += data
            return
        size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await self.reader.readuntil(b"\r\n")
            self.ended = True
            raise EOFError
        self.buf += (await self.reader.readexactly(size + 2))[:-2]

    async def next(self):
        """The next event's (name, data); comments (keepalives) are skipped."""
        while True:
            cut = self.buf.find(b"\n\n")
            if cut < 0:
                await self._more()
                continue
            raw, self.buf = self.buf[:cut], self.buf[cut + 2:]
            name, data = b"message", []
            for line in raw.split(b"\n"):
                if line.startswith(b"event:"):
                    name = line[6:].strip()
                elif line.startswith(b"data:"):
                    data.append(line[5:].strip())
            if data:
                return name, b"\n".join(data)


class Soak:
    def __init__(self, port, minutes):
        self.port = port
        self.end = time.time() + minutes * 60
        self.c = {k: 0 for k in (
            "calls_ok", "calls_err", "streams_opened", "streams_failed", "streams_lost",
            "legacy_sessions", "legacy_calls_ok", "legacy_err", "victims_killed",
            "slow_opened")}
        self.errors = set()

    def err(self, key, e):
        self.c[key] += 1
        self.errors.add(f"{key}: {e!r}"[:100])

    async def connect(self):
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def caller(self, i):
        rid = i * 10_000_000
        while time.time() < self.end:
            try:
                r, w = await self.connect()
                while time.time() < self.end:
                    rid += 1
                    w.write(post(f"/sse/mcp?ms={random.randint(0, 50)}", call_body(rid)))
                    status, fields = await read_head(r)
                    ev = Events(r, fields.get(b"transfer-encoding") == b"chunked")
                    got = []
                    try:
                        while True:
                            got.append(await ev.next())
                    except EOFError:
                        pass
                    if status == 200 and got and f'"id": {rid}'.encode() in got[-1][1]:
                        self.c["calls_ok"] += 1
                    else:
                        self.err("calls_err", f"status {status}, {len(got)} events")
                    await asyncio.sleep(0.01)
                w.close()
            except (OSError, asyncio.IncompleteReadError, ValueError, ConnectionError) as e:
                self.err("calls_err", e)
                await asyncio.sleep(0.1)

    async def standing(self):
        held = []

        async def one():
            try:
                r, w = await self.connect()
                w.write(get("/sse/stream"))
                status, _ = await asyncio.wait_for(read_head(r), 10)
                if status != 200:
                    raise ValueError(f"status {status}")
                self.c["streams_opened"] += 1
                drain = asyncio.ensure_future(self.drain(r))
                held.append((w, drain))
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as e:
                self.err("streams_failed", e)
        await asyncio.gather(*[one() for _ in range(STANDING)])
        flip = False
        while time.time() < self.end:
            await asyncio.sleep(ROTATE_EVERY)
            for w, drain in held[:ROTATE]:
                if drain.done():
                    self.c["streams_lost"] += 1
                drain.cancel()
                (reset if flip else lambda x: x.close())(w)
                flip = not flip
            del held[:ROTATE]
            await asyncio.gather(*[one() for _ in range(ROTATE)])
        for w, drain in held:
            drain.cancel()
            w.close()

    async def drain(self, r):
        while await r.read(65536):
            pass

    async def legacy(self):
        while time.time() < self.end:
            sw = pw = None
            try:
                sr, sw = await self.connect()
                sw.write(get("/sse/legacy"))
                status, fields = await asyncio.wait_for(read_head(sr), 10)
                if status != 200:
                    raise ValueError(f"stream status {status}")
                ev = Events(sr, fields.get(b"transfer-encoding") == b"chunked")
                name, endpoint = await asyncio.wait_for(ev.next(), 10)
                if name != b"endpoint":
                    raise ValueError(f"first event {name!r}")
                self.c["legacy_sessions"] += 1
                pr, pw = await self.connect()
                for rid in range(1, random.randint(20, 100) + 1):
                    if time.time() >= self.end:
                        break
                    pw.write(post(endpoint.decode(), call_body(rid)))
                    pstatus, _ = await asyncio.wait_for(read_head(pr), 10)
                    if pstatus != 202:
                        raise ValueError(f"POST status {pstatus}")
                    name, data = await asyncio.wait_for(ev.next(), 10)
                    if f'"id": {rid}'.encode() not in data:
                        raise ValueError(f"unexpected event {data[:60]!r}")
                    self.c["legacy_calls_ok"] += 1
                    await asyncio.sleep(LEGACY_GAP)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, EOFError) as e:
                self.err("legacy_err", e)
                await asyncio.sleep(0.1)
            finally:
                for w in (sw, pw):
                    if w is not None:
                        (reset if random.random() < 0.5 else lambda x: x.close())(w)

    async def victims(self):
        while time.time() < self.end:
            p = subprocess.Popen([sys.executable, BENCH_PY, "soak-victim", str(self.port), str(VICTIM_CALLS)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            # killed once its calls are under way (or after 5 s, whatever it is doing)
            await asyncio.wait([asyncio.ensure_future(asyncio.to_thread(p.stdout.readline))], timeout=5)
            await asyncio.sleep(random.uniform(0.1, 1.0))
            p.send_signal(signal.SIGKILL)
            await asyncio.to_thread(p.wait)
            p.stdout.close()
            self.c["victims_killed"] += 1
            await asyncio.sleep(max(0.0, VICTIM_EVERY - 1.0))

    async def slow_readers(self):
        loop = asyncio.get_running_loop()
        pending = []
        while time.time() < self.end:
            for _ in range(SLOW_BATCH):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.setblocking(False)
                try:
                    await loop.sock_connect(s, ("127.0.0.1", self.port))
                    await loop.sock_sendall(s, get("/sse/firehose"))
                    self.c["slow_opened"] += 1
                    pending.append((time.time() + SLOW_HOLD, s))
                except OSError as e:
                    self.errors.add(f"slow: {e!r}"[:100])
                    s.close()
            now = time.time()
            for due, s in [x for x in pending if x[0] <= now]:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            pending = [x for x in pending if x[0] > now]
            await asyncio.sleep(SLOW_EVERY)
        for _due, s in pending:
            s.close()


def proc_figures(pids):
    """(open fds, threads) summed over pids."""
    fds = threads = 0
    for p in pids:
        try:
            fds += len(os.listdir(f"/proc/{p}/fd"))
            with open(f"/proc/{p}/status") as f:
                threads += next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
        except (OSError, StopIteration):
            pass
    return fds, threads


def sample(target, t0, prev):
    pids = target.pids()
    now, cpu = time.time(), cpu_seconds(pids)
    fds, threads = proc_figures(pids)
    pct = (cpu - prev[1]) / (now - prev[0]) * 100 if prev else None
    return {"t": now - t0, "rss_mb": rss_bytes(pids) / 2**20, "fds": fds, "threads": threads,
            "cpu_pct": pct, "load": os.getloadavg()[0]}, (now, cpu)


def w9_soak(target, a):
    if not target.proxy:
        return None
    port = target.url_port("sse")
    minutes = a.soak_minutes

    async def run():
        soak = Soak(port, minutes)
        t0 = time.time()
        base, prev = sample(target, t0, None)
        samples = []
        wrk_task = asyncio.ensure_future(asyncio.to_thread(
            wrk, target.url_port("fixed"), int(minutes * 60), WRK_CONNS, 1, WRK_DELAY_MS))
        load = [asyncio.ensure_future(x) for x in
                [soak.caller(i) for i in range(CALLERS)]
                + [soak.standing(), soak.victims(), soak.slow_readers()]
                + [soak.legacy() for _ in range(LEGACY)]]
        next_minute = 60
        while time.time() < soak.end:
            await asyncio.sleep(a.soak_sample)
            s, prev = sample(target, t0, prev)
            s.update({k: soak.c[k] for k in ("calls_ok", "legacy_calls_ok")})
            samples.append(s)
            if s["t"] >= next_minute:
                log(f"    soak {s['t']:.0f} s: RSS {s['rss_mb']:.1f} MiB, fds {s['fds']}, "
                    f"threads {s['threads']}, {json.dumps(soak.c)}")
                next_minute += 60
        done, _ = await asyncio.wait(load, timeout=15)
        for task in load:
            task.cancel()
        w = await wrk_task
        await asyncio.sleep(SETTLE)
        after, _ = sample(target, t0, None)
        return soak, base, samples, after, w

    soak, base, samples, after, w = asyncio.run(run())
    total = samples[-1]["t"] if samples else 0
    first = [s for s in samples if s["t"] <= 60]
    last = [s for s in samples if s["t"] > total - 60]
    minutes_rows = []
    for m in range(int(total // 60 + (1 if total % 60 > 1 else 0))):
        rows = [s for s in samples if m * 60 < s["t"] <= (m + 1) * 60]
        if rows:
            minutes_rows.append(summary(rows, m + 1))
    return {
        "minutes": minutes, "sample_s": a.soak_sample, "samples": len(samples),
        "base": base, "after": after, "settle_s": SETTLE,
        "first": summary(first, 1), "last": summary(last, len(minutes_rows)), "per_minute": minutes_rows,
        "counts": soak.c, "errors": sorted(soak.errors)[:8],
        "wrk": {k: w.get(k) for k in ("requests", "rps", "p50", "p99", "non2xx", "sockerr", "sockdetail")},
        "load_mean": sum(s["load"] for s in samples) / len(samples) if samples else None,
        "peak_rss_mb": max((s["rss_mb"] for s in samples), default=None),
        "peak_fds": max((s["fds"] for s in samples), default=None),
        "peak_threads": max((s["threads"] for s in samples), default=None),
    }


def summary(rows, minute):
    cpu = [s["cpu_pct"] for s in rows if s["cpu_pct"] is not None]
    return {
        "minute": minute,
        "rss_mb": sum(s["rss_mb"] for s in rows) / len(rows) if rows else None,
        "rss_max_mb": max(s["rss_mb"] for s in rows) if rows else None,
        "fds": sum(s["fds"] for s in rows) / len(rows) if rows else None,
        "fds_max": max(s["fds"] for s in rows) if rows else None,
        "threads_max": max(s["threads"] for s in rows) if rows else None,
        "cpu_pct": sum(cpu) / len(cpu) if cpu else None,
    }


def run_victim(port, calls):
    """`bench.py soak-victim PORT N`: N slow tools/calls (1-8 s), then wait to be killed."""
    socks = []
    for i in range(calls):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(post(f"/sse/mcp?ms={random.randint(1000, 8000)}", call_body(i + 1)))
        socks.append(s)
    for s in socks:
        s.settimeout(2)
        try:
            s.recv(4096)   # the head and the progress event: the call is under way
        except OSError:
            pass
    print("ready", flush=True)
    time.sleep(60)


def prepare(target, a):
    """Before start(): the soak's own upstream behind the target's /sse/ route."""
    from common import free_port, wait_port
    port = free_port()
    a.soak_upstream = subprocess.Popen([sys.executable, BENCH_PY, "soak-upstream", str(port)])
    if not wait_port(port):
        raise RuntimeError("soak upstream did not start")
    target.env = dict(target.env, sse_port=port)


def finish(a):
    """Stop the soak upstream started by prepare()."""
    p = getattr(a, "soak_upstream", None)
    if p:
        p.kill()
        p.wait()


w9_soak.prepare = prepare
w9_soak.finish = finish
