#!/usr/bin/env python3
"""CPU per POST with auth, against the same POST without, in one run (not part of the suite).

    cargo build --release -p mcp-edge && python3 tests/bench/auth_cpu.py [--seconds N]

One mcp-edge (release) serves two routes to the same fixed-response upstream (nginx):
`/open` without auth, and `/mcp` protected (an RS256 token, keys from a JWKS file, the
route's scope and a per-tool rule). wrk POSTs a tools/call to each in turn, several rounds
interleaved, and the edge's CPU seconds per request are read from /proc. A second edge with
`token_cache_entries: 0` gives the cost of a cold signature check: every request verifies
the token's RS256 signature.

Prints a JSON summary; docs/benchmarks.md ("Auth") has the figures and the command.
"""

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import EDGE_BIN, JSON_BODY, free_port, log, wait_port  # noqa: E402
from measure import cpu_seconds  # noqa: E402
from targets import start_upstreams, stop_upstreams  # noqa: E402


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rsa_key(d):
    """A 2048-bit RSA key made by openssl, and its JWKS."""
    key = os.path.join(d, "key.pem")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    modulus = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], check=True,
                             capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    jwk = {"kty": "RSA", "kid": "bench", "alg": "RS256", "use": "sig",
           "n": b64(bytes.fromhex(modulus)), "e": b64((65537).to_bytes(3, "big"))}
    jwks = os.path.join(d, "jwks.json")
    with open(jwks, "w") as f:
        json.dump({"keys": [jwk]}, f)
    return key, jwks


def token(key, claims):
    """An RS256 JWT signed by openssl (PKCS#1 v1.5 signatures are raw bytes)."""
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "bench"}).encode())
    payload = b64(json.dumps(claims).encode())
    signing = f"{header}.{payload}".encode()
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing,
                               check=True, capture_output=True).stdout
    return f"{header}.{payload}.{b64(signature)}"


def edge_config(d, name, listen, admin, upstream, jwks, cache):
    conf = os.path.join(d, f"{name}.yaml")
    with open(conf, "w") as f:
        f.write(f"""version: 1
server: {{threads: 2, pid_file: {d}/{name}.pid, upgrade_sock: {d}/{name}.sock}}
listeners: [{{address: "127.0.0.1:{listen}"}}]
admin: {{address: "127.0.0.1:{admin}"}}
upstreams: {{fixed: {{servers: ["127.0.0.1:{upstream}"]}}}}
routes:
  - {{match: {{path_prefix: /open}}, upstream: fixed}}
  - {{match: {{path_prefix: /mcp}}, upstream: fixed}}
auth:
  token_cache_entries: {cache}
  issuers: [{{issuer: "https://as.example.com", jwks_file: "{jwks}", algorithms: [RS256]}}]
  routes:
    - route: /mcp
      resource: "http://127.0.0.1:{listen}/mcp"
      scopes: [mcp:tools]
      rules: [{{tools: ["admin_*"], scopes: [mcp:admin]}}]
""")
    return conf


def wrk(port, path, seconds, authorization):
    script = os.path.join(tempfile.gettempdir(), "bench-auth-post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = \'%s\'\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                'wrk.headers["Accept"] = "application/json, text/event-stream"\n' % JSON_BODY)
        if authorization:
            f.write('wrk.headers["Authorization"] = "%s"\n' % authorization)
    out = subprocess.run(["wrk", "-t2", "-c50", f"-d{seconds}s", "-s", script,
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        sys.exit(f"{path}: {non2xx.group(1)} non-2xx answers\n{out}")
    return requests


def measure(pid, port, path, seconds, authorization):
    cpu0 = cpu_seconds({pid})
    requests = wrk(port, path, seconds, authorization)
    return (cpu_seconds({pid}) - cpu0), requests


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5, help="per wrk run (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    a = ap.parse_args()
    if not os.path.exists(EDGE_BIN):
        sys.exit(f"{EDGE_BIN} missing: cargo build --release -p mcp-edge")
    d = tempfile.mkdtemp(prefix="bench-auth-")
    env = {"fixed_port": free_port(), "sse_port": free_port()}
    ups, updir = start_upstreams(env)
    procs = []
    try:
        key, jwks = rsa_key(d)
        edges = {}
        for name, cache in (("cached", 10000), ("cold", 0)):
            listen, admin = free_port(), free_port()
            conf = edge_config(d, name, listen, admin, env["fixed_port"], jwks, cache)
            p = subprocess.Popen([EDGE_BIN, "-c", conf], stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(d, f"{name}.log"), "w"))
            procs.append(p)
            if not wait_port(listen):
                sys.exit(f"{name} edge did not start")
            claims = {"iss": "https://as.example.com", "aud": f"http://127.0.0.1:{listen}/mcp",
                      "sub": "bench", "scope": "mcp:tools", "iat": int(time.time()),
                      "exp": int(time.time()) + 3600}
            edges[name] = (p.pid, listen, "Bearer " + token(key, claims))
        time.sleep(0.5)
        totals = {k: [0.0, 0] for k in ("open", "auth_cached", "auth_cold")}
        pid, port, bearer = edges["cached"]
        cold_pid, cold_port, cold_bearer = edges["cold"]
        for r in range(a.rounds):
            for label, (p, prt, path, auth) in (
                    ("open", (pid, port, "/open", None)),
                    ("auth_cached", (pid, port, "/mcp", bearer)),
                    ("auth_cold", (cold_pid, cold_port, "/mcp", cold_bearer))):
                cpu, n = measure(p, prt, path, a.seconds, auth)
                totals[label][0] += cpu
                totals[label][1] += n
                log(f"round {r + 1} {label}: {n} requests, {cpu / n * 1e6:.1f} us CPU each")
        per = {k: v[0] / v[1] * 1e6 for k, v in totals.items()}
        summary = {
            "cpu_us_per_post": {k: round(v, 1) for k, v in per.items()},
            "auth_cached_overhead_percent": round((per["auth_cached"] / per["open"] - 1) * 100, 1),
            "cold_signature_check_us": round(per["auth_cold"] - per["open"], 1),
            "requests": {k: v[1] for k, v in totals.items()},
            "command": "python3 tests/bench/auth_cpu.py " + " ".join(sys.argv[1:]),
        }
        print(json.dumps(summary, indent=2))
    finally:
        for p in procs:
            p.kill()
            p.wait()
        stop_upstreams(ups, updir)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
