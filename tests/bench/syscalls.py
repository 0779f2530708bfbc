"""`--strace`: syscalls per request of a proxy under wrk, from `strace -f -c` attached to it.

strace slows the traced process down a lot, so only the counts per request mean anything
(not the rate or the time). A separate wrk run from the measured one.
"""

import os
import re
import signal
import subprocess
import tempfile
import time

from clients import wrk

SHOWN = ("sendto", "recvfrom", "writev", "readv", "write", "read", "epoll_wait", "futex")
ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$")


def strace_per_request(target, seconds):
    """Calls per request by syscall name (and "total") over a wrk run of `seconds`."""
    pids = sorted(target.pids())
    if not pids:
        return None
    out = tempfile.NamedTemporaryFile(prefix="bench-strace-", suffix=".txt", delete=False).name
    args = ["strace", "-f", "-c", "-o", out]
    for p in pids:
        args += ["-p", str(p)]
    st = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)   # attach to every thread
    r = wrk(target.url_port("fixed"), seconds)
    st.send_signal(signal.SIGINT)
    try:
        st.wait(timeout=20)
    except subprocess.TimeoutExpired:
        st.kill()
        st.wait()
    calls = {}
    try:
        for line in open(out):
            m = ROW.match(line)
            if m and m.group(3) != "total":
                calls[m.group(3)] = int(m.group(1))
    finally:
        os.unlink(out)
    reqs = r["requests"]
    if not reqs or not calls:
        return None
    per = {k: v / reqs for k, v in calls.items()}
    per["total"] = sum(calls.values()) / reqs
    return {"requests": reqs, "per_req": per}
