"""The measured workloads; each takes (target, args) and returns a result dict or None.

A workload function may carry a `prepare(target, args)` attribute, called before the target
starts (workloads 7 and 8 raise the proxies' connection limits with it), and a
`finish(args)` attribute, called after the target stopped.
"""

import asyncio
import json
import socket
import struct
import subprocess
import sys
import time

from clients import open_fan, sse_request, wrk
from common import BENCH_PY, http_get
from measure import cpu_seconds, pct, rss_bytes, tcp_table
from syscalls import strace_per_request
from targets import Edge
from workload_burst import w8_burst
from workload_idle import w7_idle
from workload_soak import w9_soak


def w1_post(target, a):
    pids = target.pids()
    cpu0 = cpu_seconds(pids)
    r = wrk(target.url_port("fixed"), a.duration)
    pids |= target.pids()
    cpu = cpu_seconds(pids) - cpu0
    r["cpu_us_per_req"] = (cpu / r["requests"] * 1e6) if (target.proxy and r["requests"]) else None
    if isinstance(target, Edge):
        r["recycles"] = target.recycles()
    if a.strace and target.proxy:
        r["strace"] = strace_per_request(target, a.strace_seconds)
    return r


def w2_full(target, a):
    port = target.url_port("sse")
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(sse_request("/sse/full?tag=full"))
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    total = 0
    s.settimeout(2)
    start = time.time()
    end = start + a.sse_seconds
    closed = False
    try:
        while time.time() < end:
            n = s.recv_into(view)
            if n == 0:
                closed = True
                break
            total += n
    except OSError:
        closed = True
    elapsed = time.time() - start
    s.close()
    return {"mbps": total / elapsed / 1e6, "closed_early": closed, "seconds": elapsed,
            "mb": total / 1e6}


def w3_stuck(target, a):
    if not target.proxy or (isinstance(target, Edge) and not target.filters):
        return None
    port = target.url_port("sse")
    tag = f"stuck-{target.name}-{time.time():.0f}"
    socks = []
    t0 = time.time()
    for _ in range(20):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.sendall(sse_request(f"/sse/slow?tag={tag}"))
        socks.append(s)
    ports = {s.getsockname()[1] for s in socks}
    # The proxy's close cannot reach a client that does not read (its FIN waits behind
    # unsent data in a zero window), so "cut" is seen from the proxy's side of each client
    # connection: it leaves ESTABLISHED (FIN_WAIT1 after close(), gone after a reset).
    cut = {}
    deadline = t0 + a.stuck_window
    while time.time() < deadline and len(cut) < len(ports):
        established = {r for l, r, st in tcp_table() if l == port and r in ports and st == 0x01}
        for p in ports - established - set(cut):
            cut[p] = time.time() - t0
        time.sleep(0.1)
    # upstream side: give a draining proxy its cleanup deadline to close the upstream leg
    wait_until = time.time() + (7 if cut else 0)
    while time.time() < wait_until:
        infos = json.loads(http_get(a.env["sse_port"], f"/stats?tag={tag}")[1])
        if infos and all(i["closed"] for i in infos):
            break
        time.sleep(0.2)
    infos = json.loads(http_get(a.env["sse_port"], f"/stats?tag={tag}")[1])
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    up_closed = [i["closed"] - i["opened"] for i in infos if i["closed"]]
    stalled = [i["stalled"] - i["opened"] for i in infos if i["stalled"]]
    absorbed = [i["bytes"] for i in infos]
    return {
        "cut": len(cut), "cut_p50": pct(list(cut.values()), 50), "cut_max": max(cut.values()) if cut else None,
        "up_closed": len(up_closed), "up_closed_max": max(up_closed) if up_closed else None,
        "stalled_p50": pct(stalled, 50),
        "absorbed_mb": (sum(absorbed) / len(absorbed) / 1e6) if absorbed else None,
        "window": a.stuck_window,
    }


def w4_fanout(target, a):
    async def run():
        idle_rss = rss_bytes(target.pids())
        conns, stats = await open_fan(target.url_port("sse"), a.streams, f"fan-{target.name}")
        opened = stats["first"]
        await asyncio.sleep(1)
        pids = target.pids()
        cpu0, t0 = cpu_seconds(pids), time.time()
        stats["record"] = True
        ev0 = stats["events"]
        await asyncio.sleep(a.fan_seconds)
        stats["record"] = False
        cpu = cpu_seconds(pids | target.pids()) - cpu0
        el = time.time() - t0
        loaded = rss_bytes(target.pids())
        events = stats["events"] - ev0
        for t, _ in conns:
            t.abort()
        await asyncio.sleep(0.5)
        lat = stats["lat"]
        return {
            "streams": opened, "lost": stats["lost"],
            "cpu_pct": (cpu / el * 100) if target.proxy else None,
            "rss_per_stream_kib": ((loaded - idle_rss) / max(1, opened) / 1024) if target.proxy else None,
            "rss_idle_mb": idle_rss / 1e6, "rss_loaded_mb": loaded / 1e6,
            "events_per_s": events / el,
            "p50_ms": (pct(lat, 50) or 0) * 1e3, "p99_ms": (pct(lat, 99) or 0) * 1e3,
        }
    return asyncio.run(run())


def w5_abuse(target, a):
    if not target.proxy:
        return None
    sse_port = a.env["sse_port"]

    def upstream_conns():
        return sum(1 for _l, r, st in tcp_table() if r == sse_port and st == 0x01)

    async def run():
        conns, stats = await open_fan(target.url_port("sse"), a.abuse_streams, f"abuse-{target.name}")
        await asyncio.sleep(2)
        before = upstream_conns()
        pids = target.pids()
        for t, _ in conns:
            sock = t.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            t.abort()
        t0 = time.time()
        samples, zero_at = [], None
        cpu_prev, t_prev = cpu_seconds(pids), t0
        next_sample = t0 + 1
        while time.time() - t0 < max(5, a.abuse_wait):
            await asyncio.sleep(0.05)
            now = time.time()
            if zero_at is None and upstream_conns() == 0:
                zero_at = now - t0
            if now >= next_sample and len(samples) < 5:
                pids |= target.pids()
                c = cpu_seconds(pids)
                samples.append((c - cpu_prev) / (now - t_prev) * 100)
                cpu_prev, t_prev = c, now
                next_sample += 1
            if zero_at is not None and len(samples) >= 5:
                break
        after_drain = None
        if zero_at is not None:
            # the CPU of the second after the last upstream leg closed (a draining chain
            # keeps reading upstream streams until its cleanup deadline by design)
            await asyncio.sleep(0.2)
            pids |= target.pids()
            c0, ta = cpu_seconds(pids), time.time()
            await asyncio.sleep(1)
            after_drain = (cpu_seconds(pids) - c0) / (time.time() - ta) * 100
        return {"streams": stats["first"], "upstream_before": before, "cpu_after_drain": after_drain,
                "cpu_1s": samples[0] if samples else None,
                "cpu_2_5s": sum(samples[1:]) / max(1, len(samples[1:])) if len(samples) > 1 else None,
                "cpu_samples": samples, "zero_at": zero_at}
    return asyncio.run(run())


def w6_reload(target, a):
    if not target.proxy:
        return None
    port = target.url_port("fixed")
    dur = int(a.reloads * a.reload_gap + 3)
    p = subprocess.Popen([sys.executable, BENCH_PY, "wrk-json", str(port), str(dur)],
                         stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    for i in range(1, a.reloads + 1):
        target.reload(i)
        time.sleep(a.reload_gap)
    r = json.loads(p.communicate()[0])
    r["reloads"] = a.reloads
    if isinstance(target, Edge):
        r["recycles"] = target.recycles()
    return r


WORKLOADS = [
    (1, "small JSON-RPC POSTs (wrk, 50 conns)", w1_post),
    (2, "one SSE stream at full rate", w2_full),
    (3, "20 stuck SSE readers at 400 KB/s", w3_stuck),
    (4, "SSE fan-out at 10 events/s", w4_fanout),
    (5, "idle after abuse (abrupt disconnects)", w5_abuse),
    (6, "reload under load (wrk, 50 conns)", w6_reload),
    (7, "idle standing SSE streams, POSTs beside them", w7_idle),
    (8, "memory given back after a connection burst", w8_burst),
    (9, "soak: mixed MCP traffic for minutes", w9_soak),
]

# Workloads selectable by name with --only (as well as by number).
NAMES = {"burst": 8, "soak": 9}
DEFAULT_ONLY = "1,2,3,4,5,6,7,8"   # the soak (9) runs only when asked for
