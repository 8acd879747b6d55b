"""The table of bench/compare.sh: medians of its runs, ratios and targets.

usage: compare_report.py WORK GROUPS
WORK is compare.sh's temp folder: WORK/rows.txt has one row a line,
"id|group|server|mode|target|reference id|python id|needs", and
WORK/res/ID.ROUND the output of round ROUND of row ID (`sockhost-bench load
--tsv` or `spawn --tsv`: req/s, p50 µs, p99 µs, errors; wrk's report for mode
http). GROUPS: the comma-separated groups selected (--only). Prints one
markdown table on stdout: per row run, the median req/s, p50 and p99 over the
rounds, the errors of all rounds, the median of per-round ratios to its
reference and to its Python peer, and the targets below, met or MISSED.
Rows without a result (not selected, server missing) are left out.
"""
import os, re, statistics, sys

work, only = sys.argv[1], sys.argv[2].split(",")
GROUPS = {
    "conn": "TCP, new connection per request",
    "workers": "TCP, new connection per request, `workers = N`",
    "persist": "TCP, persistent connections (ping-pong)",
    "dgram": "UDP, one datagram per request",
    "unix": "unix stream sockets",
    "http": "HTTP/1.1 keep-alive (wrk -t2)",
    "proxy": "TCP via HAProxy, new connection per request",
    "python": "Python handler class, TCP, new connection per request",
    "exec": "a program (/bin/cat) per connection, new connection per request",
    "sandbox": "TCP, new connection per request: [listener.sandbox] enforce vs none",
}
TARGETS = {  # id: [(reference id, minimum ratio)]
    "sh-sync": [("ref", 0.8)],
    "sh-thread": [("ref", 0.8), ("py", 2.0)],
    "sh-fork": [("ref", 0.8), ("py", 5.0)],
    "sh-thread-p": [("ref", 0.9)],
    "sh-fork-p": [("ref", 0.9)],
    "sh-udp-sync": [("ref", 0.8)],
    # The PROXY header's cost: the same daemon and load with and without it.
    "hap-pp": [("ref", 0.95)],
    "sh-py-sync": [("ref", 1.0)],
    "sh-py-sync-w2": [("ref", 1.6)],
    # Issue #22's: thread >= 2x ThreadingTCPServer by req/s; fork at least
    # level with ForkingTCPServer (its CPU and page-fault targets are
    # bench/python-cpu.sh's).
    "sh-py-thread": [("ref", 2.0)],
    "sh-py-fork": [("ref", 1.05)],
    # Within 1.1× of the spawn floor measured in the same round.
    "exec-fork": [("ref", 1 / 1.1)],
    "exec-thread": [("ref", 1 / 1.1)],
    # The sandbox's cost: at most 3 % slower than the same listener without.
    "sh-fork-sb": [("ref", 0.97)],
    "sh-thread-sb": [("ref", 0.97)],
}

def to_us(v, unit):
    return float(v) * {"us": 1, "ms": 1000, "s": 1e6}[unit]

def parse(path, mode):
    text = open(path).read()
    if mode != "http":
        f = text.split()
        return tuple(map(float, f[:4])) if len(f) >= 4 else None
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        return None
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", text, re.M))
    def pct(k):
        mm = re.match(r"([\d.]+)(us|ms|s)", lat.get(k, "0us"))
        return to_us(*mm.groups()) if mm else 0.0
    errs = sum(map(int, re.findall(r"(?:connect|read|write|timeout) (\d+)", text)))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errs += int(non2xx.group(1)) if non2xx else 0
    return (float(m.group(1)), pct("50"), pct("99"), errs)

rows, res, per_round = [], {}, {}
for line in open(os.path.join(work, "rows.txt")):
    rid, group, name, mode, _, ref, py, _ = line.rstrip("\n").split("|")
    runs = {}
    for f in os.listdir(os.path.join(work, "res")):
        base, rep = f.rsplit(".", 1)
        if base == rid:
            r = parse(os.path.join(work, "res", f), mode)
            if r:
                runs[rep] = r
    if runs:
        vals = list(runs.values())
        med = tuple(statistics.median(r[i] for r in vals) for i in range(3))
        rates = [r[0] for r in vals]
        res[rid] = med + (sum(r[3] for r in vals), min(rates), max(rates))
        per_round[rid] = {rep: r[0] for rep, r in runs.items()}
    rows.append((rid, group, name, ref, py))

names = {r[0]: r[2] for r in rows}
print("| group | server | req/s | (min–max) | p50 µs | p99 µs | errors (all rounds) | ratio | vs Python | target |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |")
for key in [g for g in GROUPS if g in only]:
    for rid, group, name, ref, py in rows:
        if group != key or rid not in res:
            continue
        rps, p50, p99, errs, lo, hi = res[rid]
        def ratio(other):
            # The median of per-round ratios: in each round both servers
            # run within seconds of each other, so drifts in the machine's
            # load cancel out.
            if not other or other not in per_round:
                return None
            mine, theirs = per_round[rid], per_round[other]
            rs = [mine[k] / theirs[k] for k in mine if theirs.get(k, 0) > 0]
            return statistics.median(rs) if rs else None
        r_ref, r_py = ratio(ref), ratio(py)
        ref_txt = f"{r_ref:.2f} × {names[ref]}" if r_ref is not None else ""
        py_txt = f"{r_py:.1f} × {names[py]}" if r_py is not None else ""
        checks = []
        for which, need in TARGETS.get(rid, []):
            got = r_ref if which == "ref" else r_py
            if got is not None:
                checks.append(f"≥ {round(need, 2):g}: {'met' if got >= need else 'MISSED'}")
        print(f"| {GROUPS[key]} | {name} | {rps:,.0f} | {lo:,.0f}–{hi:,.0f} | {p50:,.0f} | {p99:,.0f} | {errs:.0f} | "
              f"{ref_txt} | {py_txt} | {', '.join(checks)} |")
