"""Processes under test and the shared upstreams: start/stop/reload and their generated configs.

Targets: direct (the upstream itself), mcp-edge (filters from conf/mcp-edge.yaml or none),
nginx and haproxy as proxies. Upstreams: nginx `return 200 '<json>'` and the SSE upstream.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from common import BENCH_PY, CONF, EDGE_BIN, JSON_RESULT, free_port, http_get, wait_port
from measure import proc_set


class Target:
    """A process (tree) on 127.0.0.1 under test."""
    proxy = True
    # Set by a workload's `prepare` before start() (workload 7 holds ~10k streams): client
    # connections to allow, and the fd limit the processes may use (RLIMIT_NOFILE).
    conns = None
    nofile = 20000

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

    def exited(self):
        """The main process's exit status if it died (a crash under load), else None."""
        return self.proc.poll() if self.proc else None

    def log_tail(self, lines=5):
        """The last lines of the target's log file, if it has one."""
        log = getattr(self, "log", None)
        try:
            return "".join(open(log.name).readlines()[-lines:]).strip() if log else ""
        except OSError:
            return ""


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
    def __init__(self, name, env, filters, extra_env=None, binary=EDGE_BIN, filter_edits=(),
                 conf=CONF):
        super().__init__(name, env)
        self.filters = filters
        self.extra_env = extra_env or {}
        self.binary = binary
        self.conf = conf   # the profile the filters are copied from (the baseline's own for before-*)
        self.filter_edits = filter_edits   # (old, new) replacements in the filters block

    def config(self, i=0):
        src = open(self.conf).read()
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
        for old, new in self.filter_edits:
            filt = filt.replace(old, new)
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
        self.proc = subprocess.Popen([self.binary, "-c", self.cfg], stdout=subprocess.DEVNULL,
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

    def exited(self):
        """None while serving, and after a clean hand-over to a recycled successor (the
        first process exits 0 by design); the exit status otherwise."""
        code = super().exited()
        if code == 0 and self.recycles() > 0:
            return None
        return code

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
worker_rlimit_nofile {self.nofile if self.conns else 20000};
pid {d}/nginx.pid;
error_log {d}/error.log error;
events {{ worker_connections {min(2 * self.conns, self.nofile - 100) if self.conns else 9000}; }}
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
  maxconn {self.conns or 9000}
defaults
  mode http
  maxconn {self.conns or 9000}
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


def make_factories(env, baseline_bin=None, baseline_conf=CONF):
    """Target name -> constructor of a fresh, not yet started target. With baseline_bin
    (a release build of an earlier commit), also before-nofilters / before-balanced: the
    same as edge-nofilters / edge-balanced-norecycle, started from that binary."""
    balanced_env = {"SSE_SEND_TIMEOUT": "5"}
    before = {}
    if baseline_bin:
        before = {
            "before-nofilters": lambda: Edge("before-nofilters", env, False, binary=baseline_bin,
                                             conf=baseline_conf),
            "before-balanced": lambda: Edge("before-balanced", env, True,
                                            dict(balanced_env, GUNICORN_MAX_REQUESTS="0"),
                                            binary=baseline_bin, conf=baseline_conf),
        }
    return {**before,
        "direct": lambda: Direct("direct", env),
        "edge-balanced": lambda: Edge("edge-balanced", env, True, balanced_env),
        "edge-balanced-norecycle": lambda: Edge("edge-balanced-norecycle", env, True,
                                                dict(balanced_env, GUNICORN_MAX_REQUESTS="0")),
        "edge-process-recycle": lambda: Edge(
            "edge-process-recycle", env, True, balanced_env,
            filter_edits=(("process_max_requests: 0", "process_max_requests: 5000"),
                          ("process_max_requests_jitter: 0", "process_max_requests_jitter: 500"))),
        "edge-balanced-noyield": lambda: Edge("edge-balanced-noyield", env, True,
                                              dict(balanced_env, SSE_RAPID_YIELD_MAX="0")),
        "edge-nofilters": lambda: Edge("edge-nofilters", env, False),
        "nginx": lambda: Nginx("nginx", env),
        "haproxy": lambda: Haproxy("haproxy", env),
    }


def start_upstreams(env):
    """Start the fixed-response nginx and the SSE upstream on env's ports; returns (procs, dir)."""
    updir = tempfile.mkdtemp(prefix="bench-upstream-")
    with open(f"{updir}/nginx.conf", "w") as fh:
        fh.write(nginx_upstream_conf(updir, env["fixed_port"]))
    ups = [subprocess.Popen(["nginx", "-p", updir, "-c", f"{updir}/nginx.conf", "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
           subprocess.Popen([sys.executable, BENCH_PY, "sse-upstream", str(env["sse_port"])])]
    if not (wait_port(env["fixed_port"]) and wait_port(env["sse_port"])):
        sys.exit("upstreams did not start")
    return ups, updir


def stop_upstreams(ups, updir):
    """Kill the upstreams' process trees and remove their temp dir."""
    for p in ups:
        for pid in proc_set(p.pid, updir if p is ups[0] else None):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        p.wait()
    shutil.rmtree(updir, ignore_errors=True)
