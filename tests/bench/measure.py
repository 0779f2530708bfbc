"""/proc readers: process trees, CPU seconds, RSS, the TCP table; and a percentile helper."""

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


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


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]
