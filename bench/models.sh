#!/usr/bin/env bash
# bench/models.sh: the concurrency-model lab, measured side by side.
#
# wrk asks every model (lab-iterative ... lab-epoll, and wharfd as the eighth
# column) for the static index page at increasing concurrency, with the same
# duration and pinning for all: the server (with every process or thread it
# creates) runs on CPU 0 under taskset, wrk (one thread) on CPU 1. Forking and
# threaded servers would spread over every core if we let them; pinning keeps
# the comparison about the concurrency model, not about who grabs more cores.
#
# Two client behaviours (MODES):
#   keepalive  wrk's default: each client keeps its connection (HTTP/1.1)
#   close      "Connection: close": a new connection per request, as in the
#              original ZeroHTTPd measurements
#
# Prints progress, then tables of requests/s (median of REPEAT runs) and
# errors (wrk socket errors + non-2xx, summed over the runs); writes
# bench/results/models.txt, models.csv and a plot, models.png (gnuplot).
#
# Usage: bench/models.sh [BUILD_DIR]       (default: build/release, built if missing)
#   QUICK=1      ~2 min: c = 1 10 100 1000, keepalive only, 1 run of 3 s
#   (default)    ~13 min: c = 1 10 100 1000 10000, both modes, 3 runs of 3 s
#   LEVELS="1 10 100"  MODES="keepalive"  DURATION=3  REPEAT=3  TIMEOUT=1s
#   MODELS="lab-epoll wharfd"
#   FORK_MAX=10000     highest concurrency tried for lab-forking (a process per client)
#   RESULTS_DIR=dir    where models.txt/csv/png go (default bench/results)
#   REPLOT=file.csv    no benchmark: redraw models.txt and models.png from a models.csv
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${WH_BUILD_DIR:-$root/build/release}}
out=${RESULTS_DIR:-$root/bench/results}
mkdir -p "$out"

if [[ ${QUICK:-0} == 1 ]]; then
    LEVELS=${LEVELS:-"1 10 100 1000"}
    MODES=${MODES:-"keepalive"}
    REPEAT=${REPEAT:-1}
else
    LEVELS=${LEVELS:-"1 10 100 1000 10000"}
    MODES=${MODES:-"keepalive close"}
    REPEAT=${REPEAT:-3}
fi
DURATION=${DURATION:-3}
# A request unanswered after TIMEOUT counts as an error. wrk checks for them every 2 s,
# so DURATION must be above 2 s for starved clients to show up at all.
TIMEOUT=${TIMEOUT:-1s}
FORK_MAX=${FORK_MAX:-10000}
MODELS=${MODELS:-"lab-iterative lab-forking lab-preforked lab-threaded lab-prethreaded lab-poll lab-epoll wharfd"}

if [[ -z ${REPLOT:-} ]]; then
need_tools wrk taskset
fi
if [[ -z ${REPLOT:-} && ! -x $build/lab-epoll ]]; then
    echo "models.sh: building $build (release)"
    build_if_missing "$build" lab-epoll
fi
cpus=$(nproc)
srv_cpu=0
cli_cpu=$((cpus > 1 ? 1 : 0))
# wrk and the server each need one descriptor per connection (the hard cap here is 20,000).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp=$(mktemp -d /tmp/wh-models.XXXXXX)
server_pid=
cleanup() {
    [[ -n $server_pid ]] && stop_server
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The page: a fixed 2 KiB index.html, so results do not depend on public/.
mkdir -p "$tmp/www"
{
    echo '<!DOCTYPE html><html><head><title>ZeroHTTPd lab</title></head><body>'
    for i in $(seq 1 40); do echo "<p>Line $i of the benchmark page, always the same bytes.</p>"; done
    echo '</body></html>'
} >"$tmp/www/index.html"
truncate -s 2048 "$tmp/www/index.html" # (head -c in a pipe would SIGPIPE the writer under pipefail)

start_server() { # model port
    local model=$1 port=$2 extra=()
    case $model in
    wharfd) extra=(--threads 1 --access-log off) ;;
    esac
    # The Redis address points nowhere: the guestbook is not part of this benchmark.
    taskset -c $srv_cpu "$build/$model" --bind "127.0.0.1:$port" --root "$tmp/www" \
        --redis 127.0.0.1:1 "${extra[@]}" >"$tmp/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "models.sh: $model did not start:" >&2
    cat "$tmp/server.log" >&2
    return 1
}

stop_server() {
    [[ -n $server_pid ]] || return 0
    # The server's own children (forking/pre-forked workers), by parent PID.
    local kids
    kids=$(pgrep -P "$server_pid" || true)
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    if [[ -n $kids ]]; then
        # shellcheck disable=SC2086
        kill -KILL $kids 2>/dev/null || true
    fi
    server_pid=
}

# Clients starved at the end of a keep-alive run: client sockets that never
# received a byte, plus those still in SYN-SENT (the accept queue was full).
# wrk itself does not count them: its --timeout errors never fire for a
# connection that was simply never served.
starved_now() { # port
    local est out socks=0 got=0 syn
    est=$(taskset -c $cli_cpu ss -tnH state established "( dport = :$1 )" | wc -l)
    # A socket dump with TCP info (-i) can come back empty or short when the
    # kernel's table changes during the dump: retry until it lists them all.
    for _ in 1 2 3 4 5 6 7 8; do
        out=$(taskset -c $cli_cpu ss -tniH state established "( dport = :$1 )" 2>/dev/null || true)
        socks=$(grep -c '^[^[:space:]]' <<<"$out" || true)
        got=$(grep -c bytes_received <<<"$out" || true)
        ((socks >= est)) && break
    done
    syn=$(taskset -c $cli_cpu ss -tnH state syn-sent "( dport = :$1 )" | wc -l)
    echo $((socks - got + syn))
}

# One wrk run; prints "REQS_PER_SEC ERRORS STARVED" (or "- fail -").
run_wrk() { # port conns mode
    local port=$1 c=$2 mode=$3 hdr=() starved=- wpid
    [[ $mode == close ]] && hdr=(-H "Connection: close")
    taskset -c $cli_cpu wrk -t1 -c"$c" -d"${DURATION}s" --timeout "$TIMEOUT" "${hdr[@]}" \
        "http://127.0.0.1:$port/" >"$tmp/wrk.out" 2>&1 &
    wpid=$!
    # lab-iterative closes after every response, so a fresh connection that has
    # not been answered YET looks the same as a starved one: not measured there.
    if [[ $mode == keepalive && $model != lab-iterative ]]; then
        sleep "$(awk -v d="$DURATION" 'BEGIN { print d - 0.4 }')"
        starved=$(starved_now "$port")
    fi
    if ! wait $wpid; then
        echo "- fail -"
        return
    fi
    awk -v s="$starved" '/^Requests\/sec:/ { rps = $2 }
         /Socket errors:/ { gsub(",", ""); err += $4 + $6 + $8 + $10 }
         /Non-2xx or 3xx responses:/ { err += $5 }
         END { if (rps == "") print "- fail -"; else printf "%d %d %s\n", rps, err, s }' "$tmp/wrk.out" 2>/dev/null || echo "- fail -"
}

results=$tmp/results # lines: mode model conns rps errors
if [[ -n ${REPLOT:-} ]]; then
    # Everything comes from the CSV: its '#' lines are the header of models.txt.
    grep '^#' "$REPLOT" >"$tmp/meta" || true
    grep -v '^#' "$REPLOT" | tail -n +2 | tr ',' ' ' >"$results"
    MODES=$(awk '!s[$1]++ { printf "%s ", $1 }' "$results")
    MODELS=$(awk '!s[$2]++ { printf "%s ", $2 }' "$results")
    LEVELS=$(awk '{ print $3 }' "$results" | sort -n | uniq | tr '\n' ' ')
    t_start=$(date +%s)
else
: >"$results"
declare -A broken=()
total=0
for mode in $MODES; do for model in $MODELS; do for c in $LEVELS; do total=$((total + 1)); done; done; done
n=0
t_start=$(date +%s)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "models.sh: $total cells x $REPEAT run(s) x ${DURATION}s; server on CPU $srv_cpu, wrk on CPU $cli_cpu; build $build"
for mode in $MODES; do
    for model in $MODELS; do
        if [[ ! -x $build/$model ]]; then
            echo "  $model: not built, skipped"
            continue
        fi
        for c in $LEVELS; do
            n=$((n + 1))
            if [[ $model == lab-forking && $c -gt $FORK_MAX ]]; then
                echo "$mode $model $c skip skip skip" >>"$results"
                printf '  [%d/%d] %-9s %-16s c=%-6s skipped (FORK_MAX=%s)\n' $n $total "$mode" "$model" "$c" "$FORK_MAX"
                continue
            fi
            port=$(free_port)
            if [[ -n ${broken[$model]:-} ]] || ! start_server "$model" "$port"; then
                broken[$model]=1 # a server that cannot start is not retried at every level
                echo "$mode $model $c - fail -" >>"$results"
                continue
            fi
            rates=() errs=0 starves=()
            for _ in $(seq 1 "$REPEAT"); do
                read -r rps err st < <(run_wrk "$port" "$c" "$mode")
                if [[ $rps == - ]]; then errs=fail; break; fi
                rates+=("$rps")
                starves+=("$st")
                errs=$((errs + err))
            done
            stop_server
            med=- starved=-
            if [[ $errs != fail ]]; then
                med=$(printf '%s\n' "${rates[@]}" | median)
                [[ $mode == keepalive && $model != lab-iterative ]] && starved=$(printf '%s\n' "${starves[@]}" | median)
            fi
            echo "$mode $model $c $med $errs $starved" >>"$results"
            printf '  [%d/%d] %-9s %-16s c=%-6s %8s req/s  errors %-5s starved %-5s (%ds)\n' $n $total \
                "$mode" "$model" "$c" "$med" "$errs" "$starved" $(($(date +%s) - t_start))
        done
    done
done

{
    echo "# bench/models.sh on $(uname -n), $(date -u '+%Y-%m-%d %H:%M UTC'), $cpus CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average at start: $load0"
    echo "# GET / (2 KiB index.html); wrk -t1 --timeout $TIMEOUT, ${DURATION}s per run, median of $REPEAT run(s);"
    echo "# server (all its processes/threads) taskset to CPU $srv_cpu, wrk to CPU $cli_cpu; wharfd with --threads 1."
    echo "# errors = wrk socket errors (connect/read/write/timeout) + non-2xx responses, summed over the runs."
    echo "# starved (keepalive) = clients that had not received a single byte ${DURATION}s - 0.4 s into the run (median)."
} >"$tmp/meta"
fi

# ---- tables ----
{
    cat "$tmp/meta"
    for mode in $MODES; do
        whats="rps err"
        [[ $mode == keepalive ]] && whats="rps err starved"
        for what in $whats; do
            echo
            case $what in
            rps) echo "## $mode: requests/s" ;;
            err) echo "## $mode: errors" ;;
            starved) echo "## $mode: starved clients (never answered)" ;;
            esac
            printf '%-16s' model
            for c in $LEVELS; do printf '%10s' "c=$c"; done
            echo
            for model in $MODELS; do
                grep -q "^$mode $model " "$results" || continue
                printf '%-16s' "$model"
                for c in $LEVELS; do
                    v=$(awk -v m="$mode" -v n="$model" -v c="$c" -v w="$what" \
                        '$1 == m && $2 == n && $3 == c { print (w == "rps" ? $4 : w == "err" ? $5 : $6) }' "$results")
                    printf '%10s' "${v:--}"
                done
                echo
            done
        done
    done
} >"$out/models.txt"
if [[ -z ${REPLOT:-} ]]; then
    {
        cat "$tmp/meta"
        echo "mode,model,concurrency,requests_per_s,errors,starved"
        tr ' ' ',' <"$results"
    } >"$out/models.csv"
fi
echo
cat "$out/models.txt"

# ---- plot: requests/s against concurrency, log x; one panel per mode ----
nmodes=$(wc -w <<<"$MODES")
gp=$tmp/plot.gp
{
    echo "set terminal pngcairo size $((700 * nmodes)),520 font 'sans,10'"
    echo "set output '$out/models.png'"
    echo "set multiplot layout 1,$nmodes title 'wharf concurrency-model lab: GET / (2 KiB), server on 1 CPU, wrk on another'"
    echo "set logscale x; set logscale y; set grid"
    echo "set xlabel 'concurrent connections (wrk -c)'; set ylabel 'requests/s (median)'"
    echo "set key left bottom font ',9'"
    echo "set format y '%.0s%c'"
    for mode in $MODES; do
        echo "set title '$mode'"
        printf 'plot '
        sep=
        for model in $MODELS; do
            dat=$tmp/$mode-$model.dat
            awk -v m="$mode" -v n="$model" '$1 == m && $2 == n && $4 ~ /^[0-9]+$/ && $4 > 0 { print $3, $4 }' \
                "$results" >"$dat"
            [[ -s $dat ]] || continue
            printf "%s'%s' using 1:2 with linespoints lw 2 title '%s'" "$sep" "$dat" "$model"
            sep=', '
        done
        echo
    done
    echo "unset multiplot"
} >"$gp"
if ! command -v gnuplot >/dev/null; then
    echo "models.sh: gnuplot not installed: no plot (redraw later with REPLOT=$out/models.csv)" >&2
elif gnuplot "$gp"; then
    echo "models.sh: wrote $out/models.txt, $out/models.csv, $out/models.png ($(($(date +%s) - t_start)) s)"
else
    echo "models.sh: gnuplot failed; table in $out/models.txt" >&2
fi
