"""Markdown for the memory workloads: 8 (burst, memory given back) and 9 (soak)."""

import time


def f(v, fmt="{:.1f}", none="n/a"):
    return none if v is None else fmt.format(v)


def render_burst(R8, names, a, out):
    n = a.burst_conns
    out(f"## 8. Memory given back: a burst of {n} connections, then idle\n")
    out(f"Each of {n} client connections (opened in waves of 500, spread over 16 127.0.0.x source "
        f"addresses) POSTs a tools/call, reads the answer and holds its keep-alive connection; once all "
        f"hold, all are closed at once (FIN) and the proxy sits idle. base = RSS after a 2 s warm-up "
        f"(wrk -c10), before the burst; peak = highest RSS while the connections were opened and held; "
        f"then RSS 1 s, 5 s and {a.burst_settle} s after the close. retained = RSS at the end - base; "
        f"% of burst = retained ÷ (peak - base). Goal: idle RSS back near base within seconds.\n")
    if getattr(a, "burst_note", None):
        out(f"Note: {a.burst_note}.\n")
    out(f"| target | held (of {n}) | answered | open s | base MiB | peak MiB | +1 s MiB | +5 s MiB | "
        f"+{a.burst_settle} s MiB | retained MiB | % of burst | end ÷ base | retained ÷ nginx | notes |")
    out("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    ng = R8.get("nginx") or {}
    for t in names:
        if t not in R8:
            continue
        r = R8[t]
        if r is None:
            out(f"| {t} | failed | | | | | | | | | | | | |")
            continue
        notes = []
        if r["failed"]:
            notes.append(f"{r['failed']} connects failed ({'; '.join(r['errors'])})")
        if r["bad"]:
            notes.append(f"{r['bad']} non-200 answers")
        if r.get("exited") is not None:
            notes.append(f"proxy exited (status {r['exited']})")
        ret_ratio = (f"{r['retained_mb'] / ng['retained_mb']:.2f}x"
                     if ng.get("retained_mb") and r.get("retained_mb") is not None else "n/a")
        out(f"| {t} | {r['held']} | {r['ok']} | {r['open_s']:.1f} | {r['base_mb']:.1f} | {r['peak_mb']:.1f} | "
            f"{f(r['after_1s_mb'])} | {f(r['after_5s_mb'])} | {f(r['end_mb'])} | {f(r['retained_mb'])} | "
            f"{f(r['retained_pct'], '{:.0f} %')} | {f(r['end_over_base'], '{:.2f}x')} | {ret_ratio} | "
            f"{'; '.join(notes)} |")
    out("")
    for after, before in (("edge-nofilters", "before-nofilters"), ("edge-balanced-norecycle", "before-balanced")):
        x, y = R8.get(after), R8.get(before)
        if x and y and y.get("end_mb") and y.get("retained_mb"):
            out(f"After vs before ({after} ÷ {before}): idle RSS after the burst "
                f"{x['end_mb'] / y['end_mb']:.2f}x ({x['end_mb']:.0f} vs {y['end_mb']:.0f} MiB), retained "
                f"{f(x['retained_mb'], '{:.0f}')} vs {y['retained_mb']:.0f} MiB, peak "
                f"{x['peak_mb'] / y['peak_mb']:.2f}x.")
    out("")


def render_soak(r, a, command, machine):
    """The soak's own block (kept in the doc across runs of the other workloads)."""
    lines = []
    out = lines.append
    mins = r["minutes"]
    out(f"## 9. Soak: {mins:g} minutes of mixed MCP traffic through edge-balanced\n")
    out(f"Command: `{command}`; date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; mcp-edge {machine.get('mcp-edge')}; "
        f"load average during the run: {f(r.get('load_mean'), '{:.1f}')} (1-min, mean of the samples; "
        f"2 vCPUs, shared with other builds).\n")
    out("Traffic, all at once for the whole run (tests/bench/workload_soak.py): wrk POSTs (10 connections, "
        "a 2 ms pause before each request) to the fixed nginx upstream; 8 keep-alive clients POSTing "
        "tools/calls answered as SSE responses (streamable HTTP); 200 standing GET SSE streams "
        "(a notification every 5 s; the 10 oldest replaced every 5 s, half closed with FIN, half reset); "
        "20 legacy SSE sessions (`endpoint` event, then a tools/call POSTed every 0.1 s, the result read "
        "from the stream; 20-100 calls a session, then closed or reset); every ~2 s a client process with "
        "4 calls of 1-8 s killed (SIGKILL) mid-call; every 3 s 2 slow readers (SO_RCVBUF 4096) on a "
        "400 KB/s stream that never read, reset after 12 s. The proxy (one process) is sampled every "
        f"{r['sample_s']} s: RSS, open fds, threads, CPU.\n")
    b, af = r["base"], r["after"]
    fi, la = r["first"], r["last"]
    out("| figure | before the load | first minute (mean) | last minute (mean) | last ÷ first | peak | "
        f"idle {r['settle_s']:.0f} s after the load |")
    out("|---|---|---|---|---|---|---|")

    def row(label, key_base, key_min, peak, fmt):
        x, y = fi.get(key_min), la.get(key_min)
        ratio = f"{y / x:.2f}x" if x and y is not None else "n/a"
        out(f"| {label} | {f(b.get(key_base), fmt)} | {f(x, fmt)} | {f(y, fmt)} | {ratio} | {f(peak, fmt)} | "
            f"{f(af.get(key_base), fmt)} |")
    row("RSS MiB", "rss_mb", "rss_mb", r["peak_rss_mb"], "{:.1f}")
    row("open fds", "fds", "fds", r["peak_fds"], "{:.0f}")
    row("threads", "threads", "threads_max", r["peak_threads"], "{:.0f}")
    out(f"| CPU % of one core | | {f(fi.get('cpu_pct'))} | {f(la.get('cpu_pct'))} | "
        f"{(la['cpu_pct'] / fi['cpu_pct']) if fi.get('cpu_pct') and la.get('cpu_pct') else 0:.2f}x | | |")
    out("")
    out("Per minute:\n")
    out("| minute | RSS MiB (mean) | RSS MiB (max) | fds (mean) | fds (max) | threads (max) | CPU % |")
    out("|---|---|---|---|---|---|---|")
    for m in r["per_minute"]:
        out(f"| {m['minute']} | {f(m['rss_mb'])} | {f(m['rss_max_mb'])} | {f(m['fds'], '{:.0f}')} | "
            f"{m['fds_max']} | {m['threads_max']} | {f(m['cpu_pct'])} |")
    out("")
    c, w = r["counts"], r["wrk"]
    out(f"Traffic served: wrk {w['requests']} POSTs ({f(w['rps'], '{:.0f}')} req/s, p99 {f(w['p99'], '{:.2f}')} ms, "
        f"{(w['non2xx'] or 0) + (w['sockerr'] or 0)} errors); {c['calls_ok']} streamable-HTTP calls with SSE answers "
        f"({c['calls_err']} failed); {c['streams_opened']} standing streams opened ({c['streams_failed']} failed, "
        f"{c['streams_lost']} closed by the proxy before the client closed them); {c['legacy_sessions']} legacy "
        f"sessions with {c['legacy_calls_ok']} calls ({c['legacy_err']} failed); {c['victims_killed']} client "
        f"processes killed mid-call; {c['slow_opened']} slow readers.")
    if r["errors"]:
        out("\nClient-side errors seen (first of each kind): " + "; ".join(f"`{e}`" for e in r["errors"]) + ".")
    out("")
    return "\n".join(lines)
