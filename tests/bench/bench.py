#!/usr/bin/env python3
"""mcp-edge comparative benchmark (Python 3 stdlib only; wrk, nginx, haproxy from apt).

Runs the same workloads, in one invocation, against:
  direct          the upstream itself (the ceiling)
  edge-balanced   mcp-edge, filters from conf/mcp-edge.yaml (SSE_SEND_TIMEOUT=5)
  edge-nofilters  mcp-edge, `filters: []`
  nginx           proxy_buffering off, upstream keepalive 64, 2 workers, send_timeout 5s
  haproxy         nbthread 2, http-keep-alive, timeout client 5s
and prints/writes a table with ratios to the baselines measured in the same run.

Upstreams (shared by every target):
  fixed  nginx (1 worker) answering every request with `return 200 '<json-rpc result>'`
  sse    this script in `sse-upstream` mode (asyncio): /sse/full (as fast as possible),
         /sse/slow (400 KB/s), /sse/fan (10 events/s, wall-clock stamped), /stats.

Not part of the test suite. Usage: tests/bench/run.sh [--quick] [--only 1,2] [--targets a,b]
"""

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
EDGE_BIN = os.path.join(REPO, "target", "release", "mcp-edge")
CONF = os.path.join(REPO, "conf", "mcp-edge.yaml")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
JSON_BODY = ('{"jsonrpc":"2.0","id":1,"method":"tools/call",'
             '"params":{"name":"echo","arguments":{"text":"hello"}}}')
JSON_RESULT = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}],"isError":false}}'
FULL_EVENT = 1024          # bytes per event on /sse/full
SLOW_EVENT = 16000         # bytes per event on /sse/slow (25 events/s = 400 KB/s)
SLOW_INTERVAL = 0.04
FAN_INTERVAL = 0.1         # 10 events/s per stream
FAN_PAD = "x" * 96
FINDINGS_MARK = "<!-- findings: kept across regenerations -->"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def raise_nofile():
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


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


# ----------------------------------------------------------------------------- /proc
def all_procs():
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                st = f.read()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        out[int(name)] = (int(rest[1]), rest[0], int(rest[11]) + int(rest[12]), cmd)
    return out


def proc_set(root_pid, marker):
    """Pids of root's descendants plus any process whose cmdline contains marker."""
    procs = all_procs()
    pids = {p for p, v in procs.items() if marker and marker in v[3] and v[1] != "Z"}
    if root_pid in procs:
        pids.add(root_pid)
    changed = True
    while changed:
        changed = False
        for p, v in procs.items():
            if v[0] in pids and p not in pids and v[1] != "Z":
                pids.add(p)
                changed = True
    return pids


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
            rest = st[st.rfind(")") + 2:].split()
            total += int(rest[11]) + int(rest[12])
        except OSError:
            pass
    return total / CLK_TCK


def rss_bytes(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
    return total


def tcp_table():
    rows = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    lport = int(parts[1].rsplit(":", 1)[1], 16)
                    rport = int(parts[2].rsplit(":", 1)[1], 16)
                    rows.append((lport, rport, int(parts[3], 16)))
        except OSError:
            pass
    return rows


# ----------------------------------------------------------------------------- SSE upstream
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


# ----------------------------------------------------------------------------- targets
class Target:
    """A process (tree) on 127.0.0.1 under test."""
    proxy = True

    def __init__(self, name, env):
        self.name = name
        self.env = env
        self.proc = None
        self.dir = None
        self.port = None

    def pids(self):
        return proc_set(self.proc.pid, self.dir) if self.proc else set()

    def stop(self):
        if not self.proc:
            return
        pids = self.pids()
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None
        time.sleep(0.3)

    def url_port(self, kind):
        return self.port

    def reload(self, i):
        raise NotImplementedError


class Direct(Target):
    proxy = False

    def start(self):
        self.port = None

    def url_port(self, kind):
        return self.env["fixed_port"] if kind == "fixed" else self.env["sse_port"]

    def stop(self):
        pass

    def pids(self):
        return set()


class Edge(Target):
    def __init__(self, name, env, filters, extra_env=None):
        super().__init__(name, env)
        self.filters = filters
        self.extra_env = extra_env or {}

    def config(self, i=0):
        src = open(CONF).read()
        head, _, rest = src.partition("\nupstreams:")
        _, _, filt = rest.partition("\nfilters:")
        head = head.replace("127.0.0.1:8080", f"127.0.0.1:{self.port}")
        head = head.replace("127.0.0.1:9901", f"127.0.0.1:{self.admin}")
        head = head.replace("/tmp/mcp-edge.pid", f"{self.dir}/mcp-edge.pid")
        head = head.replace("/tmp/mcp-edge-upgrade.sock", f"{self.dir}/upgrade.sock")
        read_timeout = 60 + (i % 2)   # reloads alternate between two files
        ups = "\nupstreams:\n"
        for name, port in (("fixed", self.env["fixed_port"]), ("sse", self.env["sse_port"])):
            ups += (f"  {name}:\n    servers: [127.0.0.1:{port}]\n    connect_timeout: 5\n"
                    f"    read_timeout: {read_timeout}\n    sse_idle_timeout: 0\n    write_timeout: 30\n")
        ups += ("routes:\n  - match: {path_prefix: /sse/}\n    upstream: sse\n"
                "  - match: {path_prefix: /}\n    upstream: fixed\n")
        filters = ("\nfilters:" + filt) if self.filters else "\nfilters: []\n"
        return head + ups + filters

    def start(self):
        self.dir = tempfile.mkdtemp(prefix=f"bench-{self.name}-")
        self.port, self.admin = free_port(), free_port()
        self.cfg = os.path.join(self.dir, "mcp-edge.yaml")
        with open(self.cfg, "w") as f:
            f.write(self.config())
        env = dict(os.environ)
        env.update(self.extra_env)
        self.log = open(os.path.join(self.dir, "mcp-edge.log"), "w")
        self.proc = subprocess.Popen([EDGE_BIN, "-c", self.cfg], stdout=subprocess.DEVNULL,
                                     stderr=self.log, env=env)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if http_get(self.admin, "/readyz", 1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready; see {self.dir}/mcp-edge.log")

    def reload(self, i):
        with open(self.cfg + ".new", "w") as f:
            f.write(self.config(i))
        os.replace(self.cfg + ".new", self.cfg)
        for p in self.pids():
            try:
                os.kill(p, signal.SIGHUP)
            except OSError:
                pass

    def recycles(self):
        try:
            return open(os.path.join(self.dir, "mcp-edge.log")).read().count("successor waiting")
        except OSError:
            return 0

    def stop(self):
        super().stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def nginx_upstream_conf(d, port):
    return f"""worker_processes 1;
worker_rlimit_nofile 20000;
pid {d}/nginx.pid;
error_log {d}/error.log error;
events {{ worker_connections 9000; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ default_type application/json; return 200 '{JSON_RESULT}'; }}
  }}
}}
"""


class Nginx(Target):
    def conf(self, i=0):
        d = self.dir
        proxy = ("proxy_http_version 1.1; proxy_set_header Connection \"\"; "
                 "proxy_set_header Host $http_host; proxy_buffering off;")
        return f"""worker_processes 2;
worker_rlimit_nofile 20000;
pid {d}/nginx.pid;
error_log {d}/error.log error;
events {{ worker_connections 9000; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout {75 + i % 2}s;
  send_timeout 5s;
  upstream fixed {{ server 127.0.0.1:{self.env['fixed_port']}; keepalive 64; }}
  upstream sse {{ server 127.0.0.1:{self.env['sse_port']}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{self.port} backlog=4096;
    location / {{ proxy_pass http://fixed; {proxy} }}
    location /sse/ {{ proxy_pass http://sse; {proxy} proxy_read_timeout 3600s; }}
  }}
}}
"""

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="bench-nginx-")
        self.port = free_port()
        self.cfg = os.path.join(self.dir, "nginx.conf")
        with open(self.cfg, "w") as f:
            f.write(self.conf())
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", self.cfg, "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.port):
            raise RuntimeError("nginx did not start: " + open(f"{self.dir}/error.log").read())

    def reload(self, i):
        with open(self.cfg, "w") as f:
            f.write(self.conf(i))
        subprocess.run(["nginx", "-p", self.dir, "-c", self.cfg, "-s", "reload"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Haproxy(Target):
    def conf(self, i=0):
        return f"""global
  nbthread 2
  maxconn 9000
defaults
  mode http
  maxconn 9000
  timeout connect 5s
  timeout client 5s
  timeout server 3600s
  timeout http-keep-alive {60 + i % 2}s
  timeout http-request 10s
  # forward small SSE frames at once (without it HAProxy coalesces them: ~100 ms p50)
  option http-no-delay
frontend fe
  bind 127.0.0.1:{self.port}
  use_backend sse if {{ path_beg /sse/ }}
  default_backend fixed
backend fixed
  server s1 127.0.0.1:{self.env['fixed_port']}
backend sse
  server s1 127.0.0.1:{self.env['sse_port']}
"""

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="bench-haproxy-")
        self.port = free_port()
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(self.conf())
        self.log = open(os.path.join(self.dir, "haproxy.log"), "w")
        self.proc = subprocess.Popen(["haproxy", "-W", "-db", "-f", self.cfg],
                                     stdout=self.log, stderr=self.log)
        if not wait_port(self.port):
            raise RuntimeError("haproxy did not start")

    def reload(self, i):
        with open(self.cfg, "w") as f:
            f.write(self.conf(i))
        os.kill(self.proc.pid, signal.SIGUSR2)

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------------------- wrk
def wrk(port, duration, conns=50, threads=2):
    script = os.path.join(tempfile.gettempdir(), "bench-post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = \'%s\'\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                'wrk.headers["Accept"] = "application/json, text/event-stream"\n' % JSON_BODY)
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


# ----------------------------------------------------------------------------- SSE clients
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


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


# ----------------------------------------------------------------------------- workloads
def w1_post(target, a):
    pids = target.pids()
    cpu0 = cpu_seconds(pids)
    r = wrk(target.url_port("fixed"), a.duration)
    pids |= target.pids()
    cpu = cpu_seconds(pids) - cpu0
    r["cpu_us_per_req"] = (cpu / r["requests"] * 1e6) if (target.proxy and r["requests"]) else None
    if isinstance(target, Edge):
        r["recycles"] = target.recycles()
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
    if not target.proxy or target.name == "edge-nofilters":
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
    p = subprocess.Popen([sys.executable, __file__, "wrk-json", str(port), str(dur)],
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
]


# ----------------------------------------------------------------------------- report
def f(v, fmt="{:.1f}", none="n/a"):
    return none if v is None else fmt.format(v)


def ratio(v, base):
    if v is None or not base:
        return "n/a"
    return f"{v / base:.2f}x"


def render(results, a, machine, command):
    R = results
    names = [t for t in a.target_names]
    lines = []
    out = lines.append
    out("# mcp-edge benchmarks\n")
    out("Generated by `tests/bench/bench.py` (not part of the test suite). Figures from one run; "
        "the machine is shared and noisy, so read ratios (measured in the same run) rather than "
        "absolute numbers, and expect a few percent of run-to-run variation.\n")
    out("## Machine\n")
    for k, v in machine.items():
        out(f"- {k}: {v}")
    out(f"\n## Command\n\n```\n{command}\n```\n")
    out("## Method\n")
    out("- Every target runs on 127.0.0.1 ephemeral ports and is started fresh for each workload (so a "
        "recycle or a reload in one workload cannot leak into the next). Upstreams are shared: nginx "
        "(1 worker) answering `return 200 '<json-rpc result>'` for POSTs; `bench.py sse-upstream` "
        "(Python asyncio) for SSE.")
    out("- Targets: `direct` (client to the upstream: the ceiling); `edge-balanced` (the release "
        "binary, filters copied verbatim from conf/mcp-edge.yaml, SSE_SEND_TIMEOUT=5); "
        "`edge-balanced-norecycle` (same, GUNICORN_MAX_REQUESTS=0; workloads 1 and 6 only); "
        "`edge-balanced-noyield` (same, SSE_RAPID_YIELD_MAX=0; workload 2 only); `edge-nofilters` "
        "(`filters: []`); nginx (2 workers, proxy_buffering off, upstream keepalive 64, HTTP/1.1 "
        "with `Connection \"\"`, send_timeout 5s, keepalive_requests 1000000); HAProxy (nbthread 2, "
        "master-worker, keep-alive both sides, timeout client 5s, option http-no-delay).")
    out("- CPU: utime+stime from /proc/PID/stat of the target's process tree plus any process whose "
        "command line names its temp dir (mcp-edge successors after a recycle), all threads. RSS: "
        "sum of VmRSS (statm) of the same processes.")
    out("- Clients: wrk 4.1 (-t2 -c50, Lua POST of a tools/call body, --latency) for POSTs; "
        "Python sockets/asyncio for SSE. The machine has 2 vCPUs shared by load generator, upstream "
        "and proxy, so absolute figures are low; compare within a column.\n")
    out("Date: " + time.strftime("%Y-%m-%d %H:%M:%S %Z") + "\n")

    if 1 in R:
        out(f"## 1. Small JSON-RPC POSTs ({a.duration} s, 50 connections, wrk -t2, 1 KiB-less JSON body)\n")
        out("Upstream: nginx (1 worker) `return 200 '<json>'`. Ratios: req/s vs direct, vs nginx; "
            "p99 vs nginx. CPU = proxy CPU time per request (all processes/threads).\n")
        out("| target | req/s | p50 ms | p99 ms | errors | CPU µs/req | req/s ÷ direct | req/s ÷ nginx | p99 ÷ nginx | notes |")
        out("|---|---|---|---|---|---|---|---|---|---|")
        d = R[1].get("direct", {})
        n = R[1].get("nginx", {})
        for t in names:
            r = R[1].get(t)
            if not r:
                continue
            note = f"{r['recycles']} worker recycles" if r.get("recycles") else ""
            out(f"| {t} | {r['rps']:.0f} | {f(r['p50'], '{:.2f}')} | {f(r['p99'], '{:.2f}')} | "
                f"{r['non2xx'] + r['sockerr']} | {f(r.get('cpu_us_per_req'))} | {ratio(r['rps'], d.get('rps'))} | "
                f"{ratio(r['rps'], n.get('rps'))} | {ratio(r['p99'], n.get('p99'))} | {note} |")
        b, nf = R[1].get("edge-balanced"), R[1].get("edge-nofilters")
        if b and nf:
            out(f"\nBalanced chain vs no filters: req/s {100 * (b['rps'] / nf['rps'] - 1):+.1f}%, "
                f"p99 {100 * (b['p99'] / nf['p99'] - 1):+.1f}%.")
        bn = R[1].get("edge-balanced-norecycle")
        if bn and nf:
            out(f"Balanced chain without worker_recycle vs no filters: req/s {100 * (bn['rps'] / nf['rps'] - 1):+.1f}%, "
                f"p99 {100 * (bn['p99'] / nf['p99'] - 1):+.1f}%.")
        out("")
    if 2 in R:
        out(f"## 2. One SSE stream at full rate ({a.sse_seconds} s, 1 KiB events, 256 per upstream write)\n")
        out("| target | MB/s | ÷ direct | ÷ nginx | notes |")
        out("|---|---|---|---|---|")
        d, n = R[2].get("direct", {}), R[2].get("nginx", {})
        for t in names:
            r = R[2].get(t)
            if not r:
                continue
            note = (f"stream closed after {r['seconds']:.2f} s / {r['mb']:.1f} MB" if r["closed_early"] else "")
            if r["closed_early"] and t.startswith("edge-balanced"):
                note += " (sse_guard rapid_yield: >50 events/s is a runaway by design)"
            out(f"| {t} | {r['mbps']:.0f} | {ratio(r['mbps'], d.get('mbps'))} | {ratio(r['mbps'], n.get('mbps'))} | {note} |")
        out("")
    if 3 in R:
        out(f"## 3. Stuck readers: 20 clients (SO_RCVBUF 4096) never read a 400 KB/s stream (window {a.stuck_window} s)\n")
        out("cut = the proxy closed the client connection (its side of it left ESTABLISHED, /proc/net/tcp), "
            "seconds from request. upstream closed = the upstream saw its connection close. "
            "absorbed = bytes the upstream wrote per stream before the close / end of window. "
            "Goal: cut within send_timeout + 2 s = 7 s.\n")
        out("| target | cut (of 20) | cut p50 s | cut max s | upstream closed (of 20) | upstream closed max s | absorbed MB/stream | goal ≤ 7 s |")
        out("|---|---|---|---|---|---|---|---|")
        for t in names:
            if t not in R[3]:
                continue
            r = R[3][t]
            if r is None:
                why = "no proxy" if t == "direct" else "no sse_guard: never cut"
                out(f"| {t} | skipped ({why}) | | | | | | |")
                continue
            ok = "met" if r["cut"] == 20 and r["cut_max"] <= 7 else "missed"
            out(f"| {t} | {r['cut']} | {f(r['cut_p50'])} | {f(r['cut_max'])} | {r['up_closed']} | "
                f"{f(r['up_closed_max'])} | {f(r['absorbed_mb'], '{:.2f}')} | {ok} |")
        out("")
    if 4 in R:
        out(f"## 4. SSE fan-out: {a.streams} streams at 10 events/s ({a.fan_seconds} s measured)\n")
        out("CPU = proxy CPU % of one core (all threads/processes). RSS/stream = (RSS loaded - RSS idle) / streams. "
            "Latency = client receive time - upstream write stamp. Goal: ≤ 16 KiB RSS per stream.\n")
        out("| target | streams | events/s | CPU % | RSS idle MB | RSS/stream KiB | p50 ms | p99 ms | CPU ÷ nginx | RSS/stream ÷ nginx | p99 ÷ direct |")
        out("|---|---|---|---|---|---|---|---|---|---|---|")
        d, n = R[4].get("direct", {}), R[4].get("nginx", {})
        for t in names:
            r = R[4].get(t)
            if not r:
                continue
            out(f"| {t} | {r['streams']} | {r['events_per_s']:.0f} | {f(r['cpu_pct'])} | {r['rss_idle_mb']:.1f} | "
                f"{f(r['rss_per_stream_kib'])} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                f"{ratio(r['cpu_pct'], n.get('cpu_pct'))} | {ratio(r['rss_per_stream_kib'], n.get('rss_per_stream_kib'))} | "
                f"{ratio(r['p99_ms'], d.get('p99_ms'))} |")
        out("")
    if 5 in R:
        out(f"## 5. Idle after abuse: {a.abuse_streams} streaming clients reset (SO_LINGER 0) at once\n")
        out("CPU in the first second and mean of seconds 2-5 after the resets; time until no proxy→upstream "
            "connection is ESTABLISHED (/proc/net/tcp). Goal: CPU < 1% within 1 s.\n")
        out("| target | streams | CPU % 0-1 s | CPU % 1-5 s | upstream conns before | upstream conns → 0 after s | CPU % 1 s after that | goal (< 1 % by 1 s) |")
        out("|---|---|---|---|---|---|---|---|")
        for t in names:
            if t not in R[5]:
                continue
            r = R[5][t]
            if r is None:
                out(f"| {t} | skipped (no proxy) | | | | | | |")
                continue
            ok = "met" if r["cpu_2_5s"] is not None and r["cpu_2_5s"] < 1 else "missed"
            out(f"| {t} | {r['streams']} | {f(r['cpu_1s'])} | {f(r['cpu_2_5s'], '{:.2f}')} | {r['upstream_before']} | "
                f"{f(r['zero_at'], '{:.2f}', 'not within window')} | {f(r.get('cpu_after_drain'), '{:.2f}')} | {ok} |")
        out("")
    if 6 in R:
        out(f"## 6. Reload under load: {a.reloads} reloads every {a.reload_gap} s while wrk (50 conns) POSTs\n")
        out("mcp-edge: config rewritten (two variants alternately) + SIGHUP; nginx: rewritten + `nginx -s reload`; "
            "haproxy: master-worker (-W), rewritten + SIGUSR2. Goal: 0 failed requests.\n")
        out("| target | requests | non-2xx | socket errors | failed | notes |")
        out("|---|---|---|---|---|---|")
        for t in names:
            if t not in R[6]:
                continue
            r = R[6][t]
            if r is None:
                out(f"| {t} | skipped (no proxy) | | | | |")
                continue
            note = r["sockdetail"]
            if r.get("recycles"):
                note += f"; {r['recycles']} worker recycles during the run"
            out(f"| {t} | {r['requests']} | {r['non2xx']} | {r['sockerr']} | {r['non2xx'] + r['sockerr']} | {note} |")
        out("")
    return "\n".join(lines)


def machine_info():
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = open("/proc/meminfo").readline().split(":", 1)[1].strip()
    except OSError:
        pass

    def ver(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except OSError:
            return "missing"
    return {
        "nproc": os.cpu_count(),
        "CPU": model,
        "memory": mem,
        "kernel": platform.release(),
        "OS": platform.platform(),
        "nginx": ver(["nginx", "-v"]),
        "haproxy": ver(["haproxy", "-v"]),
        "wrk": ver(["wrk", "-v"]),
        "python": platform.python_version(),
        "mcp-edge": subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                   capture_output=True, text=True).stdout.strip() + " (working tree), release build",
    }


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "sse-upstream":
        run_sse_upstream(int(sys.argv[2]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "wrk-json":
        r = wrk(int(sys.argv[2]), int(sys.argv[3]))
        print(json.dumps(r))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs, fewer streams (development)")
    ap.add_argument("--only", default="1,2,3,4,5,6", help="workload numbers, e.g. 1,4")
    ap.add_argument("--targets", default="direct,edge-balanced,edge-balanced-norecycle,edge-balanced-noyield,edge-nofilters,nginx,haproxy")
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
    a.target_names = a.targets.split(",")
    only = {int(x) for x in a.only.split(",")}

    raise_nofile()
    for tool in ("wrk", "nginx", "haproxy"):
        if not shutil.which(tool):
            sys.exit(f"{tool} missing: run tests/bench/run.sh (installs it)")
    if not os.path.exists(EDGE_BIN):
        sys.exit(f"{EDGE_BIN} missing: cargo build --release -p mcp-edge")

    env = {"fixed_port": free_port(), "sse_port": free_port()}
    a.env = env
    updir = tempfile.mkdtemp(prefix="bench-upstream-")
    with open(f"{updir}/nginx.conf", "w") as fh:
        fh.write(nginx_upstream_conf(updir, env["fixed_port"]))
    ups = [subprocess.Popen(["nginx", "-p", updir, "-c", f"{updir}/nginx.conf", "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
           subprocess.Popen([sys.executable, __file__, "sse-upstream", str(env["sse_port"])])]
    if not (wait_port(env["fixed_port"]) and wait_port(env["sse_port"])):
        sys.exit("upstreams did not start")

    balanced_env = {"SSE_SEND_TIMEOUT": "5"}
    factories = {
        "direct": lambda: Direct("direct", env),
        "edge-balanced": lambda: Edge("edge-balanced", env, True, balanced_env),
        "edge-balanced-norecycle": lambda: Edge("edge-balanced-norecycle", env, True,
                                                dict(balanced_env, GUNICORN_MAX_REQUESTS="0")),
        "edge-balanced-noyield": lambda: Edge("edge-balanced-noyield", env, True,
                                              dict(balanced_env, SSE_RAPID_YIELD_MAX="0")),
        "edge-nofilters": lambda: Edge("edge-nofilters", env, False),
        "nginx": lambda: Nginx("nginx", env),
        "haproxy": lambda: Haproxy("haproxy", env),
    }
    results = {}
    try:
        for num, label, fn in WORKLOADS:
            if num not in only:
                continue
            results[num] = {}
            for name in a.target_names:
                if name == "edge-balanced-norecycle" and num not in (1, 6):
                    continue   # the variant only matters where requests are counted
                if name == "edge-balanced-noyield" and num != 2:
                    continue   # rapid_yield closes a full-rate stream by design
                t = factories[name]()
                log(f"[{num}] {label}: {name} ...")
                try:
                    t.start()
                    time.sleep(0.5)
                    r = fn(t, a)
                except Exception as e:   # keep going: one broken target must not hide the rest
                    log(f"    failed: {e!r}")
                    r = None
                finally:
                    t.stop()
                results[num][name] = r
                log("    " + json.dumps({k: v for k, v in (r or {}).items() if k not in ("raw", "cpu_samples")},
                                        default=str))
                time.sleep(1)
    finally:
        for p in ups:
            for pid in proc_set(p.pid, updir if p is ups[0] else None):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            p.wait()
        shutil.rmtree(updir, ignore_errors=True)

    command = "tests/bench/run.sh " + " ".join(sys.argv[1:])
    report = render(results, a, machine_info(), command.strip())
    print(report)
    if a.doc and not a.quick:
        keep = ""
        try:
            old = open(a.doc).read()
            if FINDINGS_MARK in old:
                keep = old[old.index(FINDINGS_MARK):]
        except OSError:
            pass
        with open(a.doc, "w") as fh:
            fh.write(report + "\n" + (keep or FINDINGS_MARK + "\n"))
        log(f"wrote {a.doc}")
    with open(os.path.join(tempfile.gettempdir(), "bench-results.json"), "w") as fh:
        json.dump({str(k): v for k, v in results.items()}, fh, default=str)


if __name__ == "__main__":
    main()
