#!/usr/bin/env bash
# bench/compare.sh: one command, wharfd against every peer, every scenario.
#
# Servers (all started once, each on its own port, all pinned to the same
# server CPU(s); configurations for the peers are in bench/conf/):
#   wharfd        access log off             wharfd-log    access log to a file
#   nginx         access_log off             nginx-log     combined, buffer=64k
#   h2o           no access log              h2o-log       access-log file
#   lighttpd      no access log              lighttpd-log  mod_accesslog file
#   ceiling       bench/ceiling.c: canned answers, no parsing (the floor of
#                 CPU per request an epoll server can reach)
#   hello         examples/hello (library only; plaintext scenarios; not in
#                 the default list)
#   before        before-log  another wharfd binary, WH_BEFORE=PATH (an older
#                 commit built elsewhere: the before/after table of a hot-path
#                 change in one run; not in the default list)
#   wharfd-uring  wharfd --backend io_uring, access log off (the io_uring
#                 loop backend against epoll's wharfd and the ceiling; not in
#                 the default list)
#   wharfd-nodefer  nginx-deferred  wharfd --defer-accept 0 and nginx with
#                 "listen ... deferred": wharfd's default is TCP_DEFER_ACCEPT
#                 (1 s; the ceiling uses it too), nginx's is not, so these two
#                 give the connclose scenario like for like both ways;
#                 nginx-deferred counts as a peer for "best peer". connclose
#                 only; not in the default list
# Every server gets one worker, the same document root (plaintext: 13 bytes
# "Hello, World!", 1k.bin, 64k.bin, 1m.bin), keep-alive with no request cap.
#
# Scenarios (--only):
#   plaintext   GET /plaintext, keep-alive, wrk -c CONNS
#   pipelined   the same, 16 requests back to back (bench/pipeline.lua)
#   static1k, static64k, static1m   GET of the files, keep-alive
#   connclose   a new TCP connection per request: wrk with "Connection: close"
#               (wrk reconnects when the answer says close). Checked in every
#               run: accepted connections (Tcp PassiveOpens, /proc/net/snmp)
#               per request must be about 1, and the table shows it
#   idle        user-space bytes per idle keep-alive connection
#               (bench/http_idle.py --port, IDLE_CONNS connections), round 1
#               only: a server reuses that memory afterwards
# The -log servers run plaintext, static1k and connclose only (where a log
# line per request is a visible share of the cost).
#
# Measurement: the server on CPU 0 (taskset), wrk on CPU 1. Rounds are
# interleaved (each round runs every scenario on every server, the server
# order rotating per round); medians of ROUNDS rounds with min-max. Per run:
# requests/s, the busy time of the server's CPU from /proc/stat per request
# (user+nice+system+irq+softirq: the kernel's work for the sockets counts; so
# does anything else running there, which on a shared machine inflates every
# server alike) and the server processes' own utime+stime per request (not
# touched by other processes, but without softirq work). Before every run
# curl checks the status code and body size of the URL the run uses (and the
# "Connection: close" answer for connclose); wrk's errors are counted.
#
# Output: progress on stderr; the markdown tables on stdout and in
# OUT/compare.md (ratios to nginx and to the ceiling, "wharfd vs best
# peer"), the raw runs in OUT/compare.csv, charts OUT/compare_cpu.png and
# OUT/compare_rps.png (gnuplot). OUT is bench/results (--quick: BUILD/compare-quick).
#
# Usage: bench/compare.sh [options] [BUILD_DIR]    (default build/release; the
#        needed targets are brought up to date first)
#   --quick              1 round of 2 s, IDLE_CONNS=1000 (a smoke test)
#   --only S[,S..]       scenarios (default: all, in the order above)
#   --servers N[,N..]    servers (default: all but hello)
#   --threads N          scaling mode: N workers on CPUs 0..N-1, wrk on the
#                        other CPUs (one wrk thread each); needs nproc > N
#   --out DIR            where results go
#   --readme             also rewrite README.md's section between the
#                        compare.sh markers from this run (not with --quick)
#   --strict             exit 1 if any run had errors or a new-connection run
#                        accepted fewer than 0.9 connections per request
#   --replot             no benchmark: redo the tables, charts (and README
#                        with --readme) from OUT/compare.csv
#   env: ROUNDS=3 DURATION=5 CONNS=64 DEPTH=16 IDLE_CONNS=9000
# Takes about ROUNDS x 42 runs (5 servers x 6 scenarios + 4 -log servers x
# 3) x (DURATION + ~1 s) plus the idle test: 12-15 minutes with the defaults.
# "plaintext" is a 13-byte file for every server (wharfd is a file server);
# add "hello" to --servers for the library's own handler on the same path.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)

ALL_SCENARIOS="plaintext pipelined static1k static64k static1m connclose idle"
ALL_SERVERS="wharfd wharfd-log nginx nginx-log h2o h2o-log lighttpd lighttpd-log ceiling"
LOG_SCENARIOS=" plaintext static1k connclose "

quick=0 readme=0 replot=0 strict=0 threads=1 only="" servers="" out="" build=""
while (($#)); do
    case $1 in
    --quick) quick=1 ;;
    --readme) readme=1 ;;
    --replot) replot=1 ;;
    --strict) strict=1 ;;
    --only) only=${2:?--only needs a list}; shift ;;
    --servers) servers=${2:?--servers needs a list}; shift ;;
    --threads) threads=${2:?--threads needs N}; shift ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "compare.sh: unknown option $1 (--help)" >&2; exit 2 ;;
    *) build=$1 ;;
    esac
    shift
done
build=${build:-${WH_BUILD_DIR:-$root/build/release}}
if ((quick && readme && !replot)); then
    echo "compare.sh: --readme wants a full run, not --quick" >&2
    exit 2
fi
if ((quick)); then
    ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-2} IDLE_CONNS=${IDLE_CONNS:-1000}
    out=${out:-$build/compare-quick}
fi
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-64}
DEPTH=${DEPTH:-16}
IDLE_CONNS=${IDLE_CONNS:-9000}
out=${out:-$root/bench/results}
scenarios=${only:-$ALL_SCENARIOS}
scenarios=${scenarios//,/ }
servers=${servers:-$ALL_SERVERS}
servers=${servers//,/ }
for s in $scenarios; do
    [[ " $ALL_SCENARIOS " == *" $s "* ]] || { echo "compare.sh: unknown scenario $s ($ALL_SCENARIOS)" >&2; exit 2; }
done
for s in $servers; do
    extra="hello before before-log wharfd-uring wharfd-nodefer nginx-deferred"
    [[ " $ALL_SERVERS $extra " == *" $s "* ]] ||
        { echo "compare.sh: unknown server $s ($ALL_SERVERS $extra)" >&2; exit 2; }
    [[ $s != before* || -x ${WH_BEFORE:-} ]] || { echo "compare.sh: $s needs WH_BEFORE=PATH of a wharfd binary" >&2; exit 2; }
done
[[ $threads =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --threads needs a positive number" >&2; exit 2; }
log() { echo "compare: $*" >&2; }

# ---------------------------------------------------------------- report
# report: compare.csv (+ compare.meta) -> compare.md, stdout, charts, README.
report() {
    need_tools python3
    python3 - "$out" "$root/README.md" "$readme" <<'PY'
import os, re, statistics, sys
out, readme_path, do_readme = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
meta = dict(l.rstrip("\n").split("=", 1) for l in open(os.path.join(out, "compare.meta")) if "=" in l)
rows = []
for line in open(os.path.join(out, "compare.csv")):
    f = line.strip().split(",")
    if f[0] == "round" or len(f) < 10:
        continue
    rows.append(dict(round=int(f[0]), scen=f[1], server=f[2], rps=float(f[3]), reqs=int(f[4]),
                     cpu=float(f[5]), proc=float(f[6]), errors=int(f[7]), accepts=float(f[8]),
                     idle=float(f[9])))
LABEL = {"plaintext": "plaintext keep-alive", "pipelined": "pipelined x" + meta.get("depth", "16"),
         "static1k": "static 1 KiB", "static64k": "static 64 KiB", "static1m": "static 1 MiB",
         "connclose": "new connection per request"}
BASE = [s for s in ("wharfd", "wharfd-uring", "wharfd-nodefer", "before", "hello", "nginx",
                    "nginx-deferred", "h2o", "lighttpd", "ceiling")
        if any(r["server"] in (s, s + "-log") for r in rows)]
PEERS = [s for s in ("nginx", "nginx-deferred", "h2o", "lighttpd") if s in BASE]

def vals(scen, server, key):
    return [r[key] for r in rows if r["scen"] == scen and r["server"] == server]

def med(scen, server, key):
    v = vals(scen, server, key)
    return statistics.median(v) if v else None

def fmt(x, unit):
    if x is None:
        return "-"
    if unit == "us":
        return "%.2f" % x if x < 10 else ("%.1f" % x if x < 100 else "{:,.0f}".format(x))
    return "{:,.0f}".format(x)

def cell(scen, server, key, unit, scale):
    v = [x * scale for x in vals(scen, server, key)]
    if not v:
        return "-"
    m = statistics.median(v)
    s = fmt(m, unit)
    if len(v) > 1:
        s += " (%s-%s)" % (fmt(min(v), unit), fmt(max(v), unit))
    return s

def ratio(a, b):
    return "%.2fx" % (a / b) if a is not None and b else "-"

scen_rows = []  # (label, scenario, suffix): the -log servers make rows of their own
for s in ("plaintext", "pipelined", "static1k", "static64k", "static1m", "connclose"):
    if any(r["scen"] == s and not r["server"].endswith("-log") for r in rows):
        scen_rows.append((LABEL[s], s, ""))
    if any(r["scen"] == s and r["server"].endswith("-log") for r in rows):
        scen_rows.append((LABEL[s] + ", access log on", s, "-log"))

def table(key, unit, scale, lower_better, title):
    lines = ["", "### " + title, ""]
    uring = "wharfd-uring" in BASE
    cols = BASE + ["wharfd / nginx", "wharfd / ceiling", "wharfd vs best peer"]
    if uring:
        cols += ["wharfd-uring / ceiling", "wharfd-uring / wharfd"]
    lines.append("| scenario | " + " | ".join(cols) + " |")
    lines.append("|---|" + "---:|" * len(cols))
    for label, scen, suf in scen_rows:
        cells = []
        for b in BASE:
            name = b + suf if b not in ("ceiling", "hello") else (b if not suf else None)
            cells.append(cell(scen, name, key, unit, scale) if name else "-")
        w = med(scen, "wharfd" + suf, key)
        n = med(scen, "nginx" + suf, key)
        c = med(scen, "ceiling", key) if not suf else None
        peers = [(med(scen, p + suf, key), p) for p in PEERS]
        peers = [(v, p) for v, p in peers if v is not None]
        best = ""
        if w is not None and peers:
            v, p = min(peers) if lower_better else max(peers)
            r = w / v if v else None
            if r is not None:
                behind = round(r, 2) > 1 if lower_better else round(r, 2) < 1
                best = ("**%.2fx** (%s)" if behind else "%.2fx (%s)") % (r, p)
        cells += [ratio(w, n), ratio(w, c), best or "-"]
        if uring:
            u = med(scen, "wharfd-uring", key) if not suf else None
            cells += [ratio(u, c), ratio(u, w)]
        lines.append("| %s | %s |" % (label, " | ".join(cells)))
    return lines

md = ["# bench/compare.sh results", ""]
md.append("%s; %s round(s) of %s s, medians (min-max); server on CPU %s, wrk (%s thread%s, %s connections) "
          "on CPU %s; %s." % (meta.get("machine", "?"), meta.get("rounds"), meta.get("duration"),
                              meta.get("server_cpus"), meta.get("wrk_threads"),
                              "" if meta.get("wrk_threads") == "1" else "s", meta.get("conns"),
                              meta.get("load_cpus"), meta.get("date")))
md.append("")
md.append("Versions: %s. Server CPU = busy time of the server's CPU(s) from /proc/stat "
          "(the kernel's work for the sockets included); process CPU = the server processes' "
          "utime+stime. Ratios are wharfd's value over the other's: below 1 is better for CPU, "
          "above 1 for requests/s; **bold** where wharfd is behind the best peer."
          % meta.get("versions", "?"))
md += table("cpu", "us", 1e-3, True, "Server CPU per request (µs)")
md += table("proc", "us", 1e-3, True, "Server process CPU per request (µs, utime+stime)")
md += table("rps", "n", 1, False, "Requests/s")
idle = [r for r in rows if r["scen"] == "idle"]
if idle:
    md += ["", "### Idle keep-alive connection (user-space bytes each, %s connections)"
           % meta.get("idle_conns", "?"), ""]
    md.append("| " + " | ".join(BASE) + " | wharfd / nginx | wharfd vs best peer |")
    md.append("|" + "---:|" * (len(BASE) + 2))
    w = med("idle", "wharfd", "idle")
    peers = [(med("idle", p, "idle"), p) for p in PEERS if med("idle", p, "idle") is not None]
    best = "%.2fx (%s)" % (w / min(peers)[0], min(peers)[1]) if w is not None and peers and min(peers)[0] > 0 else "-"
    md.append("| " + " | ".join(fmt(med("idle", b, "idle"), "n") for b in BASE) + " | %s | %s |"
              % (ratio(w, med("idle", "nginx", "idle")), best))
errs = {}
for r in rows:
    errs[(r["scen"], r["server"])] = errs.get((r["scen"], r["server"]), 0) + r["errors"]
bad = ["%s/%s: %d" % (k[1], k[0], v) for k, v in sorted(errs.items()) if v]
md += ["", "Errors (wrk socket errors and non-2xx answers, all rounds): " + (", ".join(bad) if bad else "none") + "."]
acc = [(s, statistics.median(vals("connclose", s, "accepts"))) for s in sorted({r["server"] for r in rows if r["scen"] == "connclose"})]
if acc:
    md.append("Accepted connections per request in the new-connection scenario (Tcp PassiveOpens, "
              "counted for the whole host, so other traffic adds to it): "
              + ", ".join("%s %.2f" % a for a in acc) + ".")
    low = [a[0] for a in acc if a[1] < 0.9]
    if low:
        md.append("**Warning**: below 0.9 accepted connections per request for %s: "
                  "those runs reused connections." % ", ".join(low))
md.append("")
md.append("![server CPU per request](compare_cpu.png) ![requests/s](compare_rps.png)")
text = "\n".join(md) + "\n"
open(os.path.join(out, "compare.md"), "w").write(text)
print(text)

# gnuplot data: one line per scenario row, one column per base server
for key, fname, scale in (("cpu", "compare_cpu.dat", 1e-3), ("rps", "compare_rps.dat", 1)):
    with open(os.path.join(out, fname), "w") as f:
        f.write('scenario ' + " ".join(BASE) + "\n")
        for label, scen, suf in scen_rows:
            v = []
            for b in BASE:
                name = b + suf if b not in ("ceiling", "hello") else (b if not suf else None)
                m = med(scen, name, key) if name else None
                v.append("%.6g" % (m * scale) if m else "NaN")
            f.write('"%s" %s\n' % (label.replace(", access log on", " +log"), " ".join(v)))

if do_readme:
    readme = open(readme_path).read()
    b, e = "<!-- compare.sh:begin -->", "<!-- compare.sh:end -->"
    if b not in readme or e not in readme:
        sys.exit("README.md has no %s ... %s markers" % (b, e))
    body = text.replace("# bench/compare.sh results\n", "").strip().replace("\n### ", "\n#### ")
    rel = os.path.relpath(out, os.path.dirname(os.path.abspath(readme_path)))
    body = body.replace("](compare_", "](%s/compare_" % rel)
    head, rest = readme.split(b, 1)
    _, tail = rest.split(e, 1)
    gen = ("\n<!-- generated by `bench/compare.sh --readme`; edits here are overwritten -->\n"
           "%s\n" % body)
    open(readme_path, "w").write(head + b + gen + e + tail)
    print("README.md: performance section rewritten", file=sys.stderr)
PY
    if command -v gnuplot >/dev/null; then
        local key file ylabel better
        for key in cpu rps; do
            file=$out/compare_$key.dat
            ylabel="server CPU per request (µs, log scale)" better="lower"
            [[ $key == rps ]] && ylabel="requests/s (log scale)" better="higher"
            gnuplot <<GP || log "gnuplot failed for $key"
set terminal pngcairo size 1400,600 font "DejaVu Sans,10"
set output "$out/compare_$key.png"
set title "bench/compare.sh: $ylabel, $better is better" noenhanced
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set grid ytics
set ylabel "$ylabel" noenhanced
set xtics rotate by -20 noenhanced
set key outside right top noenhanced
set datafile missing "NaN"
plot for [i=2:*] "$file" using i:xtic(1) title columnheader(i)
GP
        done
    else
        log "gnuplot not installed: no charts"
    fi
    log "results: $out/compare.md $out/compare.csv $out/compare_cpu.png $out/compare_rps.png"
}

if ((replot)); then
    [[ -f $out/compare.csv ]] || { echo "compare.sh: no $out/compare.csv to replot" >&2; exit 1; }
    report
    exit 0
fi

# ---------------------------------------------------------------- setup
need_tools wrk curl taskset python3 awk
cpus=$(nproc)
((cpus > threads)) || { echo "compare.sh: needs more CPUs than --threads ($cpus <= $threads)" >&2; exit 1; }
server_cpus="0"
((threads > 1)) && server_cpus="0-$((threads - 1))"
load_cpus="$threads"
((cpus - 1 > threads)) && load_cpus="$threads-$((cpus - 1))"
wrk_threads=$((cpus - threads))
((threads == 1)) && wrk_threads=1 # the 2-core default: one wrk thread on CPU 1

targets=(wharfd ceiling)
[[ " $servers " == *" hello "* ]] && targets+=(example-hello)
for s in $servers; do
    case $s in
    nginx*) need_tools nginx ;;
    h2o*) need_tools h2o ;;
    lighttpd*) need_tools lighttpd ;;
    esac
done
log "building ${targets[*]} in $build"
build_targets "$build" "${targets[@]}"
for t in wharfd ceiling; do
    [[ -x $build/$t ]] || { echo "compare.sh: no $build/$t (configure with -DWH_BENCH=ON)" >&2; exit 1; }
done

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bench_tmp "${TMPDIR:-/tmp}/wharf-compare.XXXXXX"
tmp=${tmp:?} # (set by bench_tmp)
trap 'exit 130' INT TERM
mkdir -p "$out" "$tmp/www"
printf 'Hello, World!' >"$tmp/www/plaintext"
head -c 1024 /dev/urandom >"$tmp/www/1k.bin"
head -c $((64 * 1024)) /dev/urandom >"$tmp/www/64k.bin"
head -c $((1024 * 1024)) /dev/urandom >"$tmp/www/1m.bin"
hz=$(getconf CLK_TCK)
user_nginx="" user_h2o=""
[[ $(id -u) -eq 0 ]] && user_nginx="user root;" user_h2o="user: root"

declare -A PORT CPORT PID LOGF
# start NAME: starts server NAME pinned to the server CPUs; fills PORT/CPORT/PID/LOGF.
start() {
    local name=$1 base=${1%-log} dir=$tmp/$1 port al="" mw=0
    mkdir -p "$dir"
    port=$(free_port)
    PORT[$name]=$port CPORT[$name]=$port LOGF[$name]=""
    [[ $name == *-log ]] && LOGF[$name]=$dir/access.log
    case $base in
    wharfd | before | wharfd-uring | wharfd-nodefer)
        local bin=$build/wharfd be=()
        [[ $base == before ]] && bin=$WH_BEFORE
        [[ $base == wharfd-uring ]] && be=(--backend io_uring)
        [[ $base == wharfd-nodefer ]] && be=(--defer-accept 0)
        taskset -c "$server_cpus" "$bin" --root "$tmp/www" --bind "127.0.0.1:$port" \
            --threads "$threads" --keepalive-timeout 600 --access-log "${LOGF[$name]:-off}" \
            "${be[@]}" --error-log "$dir/error.log" >"$dir/out" 2>&1 &
        ;;
    hello)
        taskset -c "$server_cpus" "$build/hello" --host 127.0.0.1 --port "$port" \
            --threads "$threads" --no-pin --keepalive-ms 600000 >"$dir/out" 2>&1 &
        ;;
    ceiling)
        CPORT[$name]=$(free_port)
        taskset -c "$server_cpus" "$build/ceiling" --root "$tmp/www" --port "$port" \
            --close-port "${CPORT[$name]}" --threads "$threads" >"$dir/out" 2>&1 &
        ;;
    nginx | nginx-deferred)
        al="access_log off;"
        [[ -n ${LOGF[$name]} ]] && al="access_log ${LOGF[$name]} combined buffer=64k flush=1s;"
        render_conf "$root/bench/conf/nginx.conf" "$dir/nginx.conf" USER="$user_nginx" \
            WORKERS="$threads" DIR="$dir" ROOT="$tmp/www" PORT="$port" ACCESS_LOG="$al" \
            LISTEN_OPTS="$([[ $base == nginx-deferred ]] && echo deferred)"
        taskset -c "$server_cpus" nginx -p "$dir" -c "$dir/nginx.conf" >"$dir/out" 2>&1 &
        ;;
    h2o)
        [[ -n ${LOGF[$name]} ]] && al="access-log: ${LOGF[$name]}"
        render_conf "$root/bench/conf/h2o.conf" "$dir/h2o.conf" USER="$user_h2o" \
            WORKERS="$threads" DIR="$dir" ROOT="$tmp/www" PORT="$port" ACCESS_LOG="$al"
        taskset -c "$server_cpus" h2o -c "$dir/h2o.conf" >"$dir/out" 2>&1 &
        ;;
    lighttpd)
        [[ -n ${LOGF[$name]} ]] &&
            al=$'server.modules += ( "mod_accesslog" )\naccesslog.filename = "'"${LOGF[$name]}"'"'
        ((threads > 1)) && mw=$threads
        render_conf "$root/bench/conf/lighttpd.conf" "$dir/lighttpd.conf" DIR="$dir" \
            ROOT="$tmp/www" PORT="$port" MAXWORKER="$mw" ACCESS_LOG="$al"
        taskset -c "$server_cpus" lighttpd -D -f "$dir/lighttpd.conf" >"$dir/out" 2>&1 &
        ;;
    esac
    PID[$name]=$!
    pids+=("${PID[$name]}")
    if ! wait_port "$port" 200 || ! wait_port "${CPORT[$name]}" 200; then
        echo "compare.sh: $name did not start:" >&2
        cat "$dir/out" "$dir/error.log" 2>/dev/null | tail -20 >&2
        exit 1
    fi
}

# path SCENARIO: the URL path a scenario asks for.
path() {
    case $1 in
    static1k) echo /1k.bin ;;
    static64k) echo /64k.bin ;;
    static1m) echo /1m.bin ;;
    *) echo /plaintext ;;
    esac
}

# runs SERVER SCENARIO: true when SERVER takes part in SCENARIO.
runs() {
    case $1 in
    *-log) [[ $LOG_SCENARIOS == *" $2 "* ]] ;;
    hello) [[ $2 != static* ]] ;;
    wharfd-nodefer | nginx-deferred) [[ $2 == connclose ]] ;;
    *) return 0 ;;
    esac
}

# check SERVER SCENARIO: curl gets status 200 and the file's size (and, for connclose, "Connection: close").
check() {
    local name=$1 scen=$2 p want got port hdrs=()
    p=$(path "$scen")
    port=${PORT[$name]}
    [[ $scen == connclose ]] && port=${CPORT[$name]} hdrs=(-H 'Connection: close')
    want="200 $(stat -c %s "$tmp/www${p}")"
    got=$(curl -s --max-time 10 "${hdrs[@]}" -D "$tmp/headers" -o /dev/null \
        -w '%{http_code} %{size_download}' "http://127.0.0.1:$port$p") || true
    if [[ $got != "$want" ]]; then
        echo "compare.sh: $name answered GET $p with '$got', expected '$want'" >&2
        exit 1
    fi
    if [[ $scen == connclose ]] && ! grep -qi '^connection: *close' "$tmp/headers"; then
        echo "compare.sh: $name did not answer 'Connection: close' for connclose" >&2
        exit 1
    fi
}

# busy: busy jiffies of the server CPUs.
busy() {
    local c t=0
    for ((c = 0; c < threads; c++)); do t=$((t + $(cpu_busy "$c"))); done
    echo $t
}

# measure ROUND SERVER SCENARIO: one wrk run (or the idle test); appends a line to compare.csv.
measure() {
    local round=$1 name=$2 scen=$3 p port args=() o0 o1 b0 b1 p0 p1 res reqs secs errs bytes
    p=$(path "$scen")
    port=${PORT[$name]}
    if [[ $scen == idle ]]; then
        res=$(N=$IDLE_CONNS timeout 300 python3 "$root/bench/http_idle.py" --port "$port" \
            --pid "${PID[$name]}" --name "$name" | tail -1)
        log "  $name idle: $res"
        read -r _ _ bytes _ alive <<<"$res"
        [[ $alive -gt 0 ]] || log "  $name closed the idle connections"
        echo "$round,idle,$name,0,0,0,0,0,0,$bytes" >>"$out/compare.csv"
        return
    fi
    case $scen in
    pipelined) args=(-s "$root/bench/pipeline.lua") ;;
    connclose) port=${CPORT[$name]} args=(-H 'Connection: close') ;;
    esac
    local url="http://127.0.0.1:$port$p"
    local tail=("$url")
    [[ $scen == pipelined ]] && tail+=(-- "$DEPTH")
    o0=$(tcp_passive_opens) b0=$(busy) p0=$(proc_ticks "${PID[$name]}")
    res=$(timeout $((DURATION + 60)) taskset -c "$load_cpus" wrk -t"$wrk_threads" -c"$CONNS" \
        -d"${DURATION}s" "${args[@]}" "${tail[@]}" | wrk_numbers)
    p1=$(proc_ticks "${PID[$name]}") b1=$(busy) o1=$(tcp_passive_opens)
    read -r reqs secs errs bytes <<<"$res"
    ((reqs > 0)) || { echo "compare.sh: $name answered no request in $scen" >&2; exit 1; }
    awk -v r="$reqs" -v s="$secs" -v e="$errs" -v b=$((b1 - b0)) -v p=$((p1 - p0)) -v o=$((o1 - o0)) \
        -v hz="$hz" -v round="$round" -v scen="$scen" -v name="$name" -v csv="$out/compare.csv" 'BEGIN {
        rps = r / s; cpu = b * 1e9 / hz / r; proc = p * 1e9 / hz / r
        printf "%d,%s,%s,%.1f,%d,%.1f,%.1f,%d,%.3f,0\n", round, scen, name, rps, r, cpu, proc, e, o / r >> csv
        printf "compare:   round %d %-10s %-13s %11.0f req/s %9.2f us CPU/req %9.2f us proc/req  errors %d  accepts/req %.2f\n",
            round, scen, name, rps, cpu / 1000, proc / 1000, e, o / r > "/dev/stderr" }'
    [[ -n ${LOGF[$name]} ]] && : >"${LOGF[$name]}" # bound the disk the logs take
    return 0
}

# ---------------------------------------------------------------- run
versions="wharfd $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
[[ " $servers " == *" nginx"* ]] && versions+=", $(nginx -v 2>&1 | sed 's/.*version: //')"
[[ " $servers " == *" h2o"* ]] && versions+=", h2o $(h2o --version | awk 'NR==1 {print $3}')"
[[ " $servers " == *" lighttpd"* ]] && versions+=", $(lighttpd -v | awk 'NR==1 {print $1}' | tr / ' ')"
versions+=", $( (wrk -v 2>&1 || true) | awk 'NR==1 {print $1, $2}')"
cat >"$out/compare.meta" <<META
machine=$cpus CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), Linux $(uname -r)
date=$(date -u '+%Y-%m-%d %H:%M UTC')
rounds=$ROUNDS
duration=$DURATION
conns=$CONNS
depth=$DEPTH
idle_conns=$IDLE_CONNS
server_cpus=$server_cpus
load_cpus=$load_cpus
wrk_threads=$wrk_threads
threads=$threads
versions=$versions
META
echo "round,scenario,server,rps,requests,cpu_ns,proc_ns,errors,accepts_per_req,idle_bytes" >"$out/compare.csv"

log "servers: $servers; scenarios: $scenarios; $ROUNDS x ${DURATION}s; server CPU $server_cpus, wrk CPU $load_cpus"
for s in $servers; do start "$s"; done
log "warm-up"
for s in $servers; do
    check "$s" plaintext
    taskset -c "$load_cpus" wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:${PORT[$s]}/plaintext" >/dev/null
done
read -r -a list <<<"$servers"
for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round of $ROUNDS"
    # rotate the order each round so drift on the machine hits every server alike
    order=("${list[@]:$(((round - 1) % ${#list[@]}))}" "${list[@]:0:$(((round - 1) % ${#list[@]}))}")
    for scen in $scenarios; do
        [[ $scen == idle && $round -gt 1 ]] && continue
        for s in "${order[@]}"; do
            runs "$s" "$scen" || continue
            check "$s" "$scen"
            measure "$round" "$s" "$scen"
        done
    done
done
bench_cleanup
pids=()
trap - EXIT
report
if ((strict)); then
    awk -F, 'NR > 1 && ($8 > 0 || ($2 == "connclose" && $9 < 0.9)) {
        print "compare.sh: --strict: " $3 " " $2 " round " $1 ": errors " $8 ", accepts/request " $9 > "/dev/stderr"; bad = 1 }
        END { exit bad }' "$out/compare.csv"
fi
