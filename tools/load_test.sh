#!/usr/bin/env bash
# Load test: examples/http_server.rs under wrk, pooled bodies (leased from the shared pool and
# handed to hyper with into_bytes) against plain Vec bodies, for a few body sizes.
#
#   bash tools/load_test.sh                         # 1 KiB, 16 KiB, 256 KiB; 10 s each
#   DURATION=5 SIZES="4096 65536" bash tools/load_test.sh
#   MODES="plain pooled" bash tools/load_test.sh    # the other order, to see order effects
#   MALLOC_MMAP_THRESHOLD_=131072 SIZES=262144 bash tools/load_test.sh   # glibc's threshold pinned
#
# Loopback only (the server binds 127.0.0.1, wrk targets the address it prints), every loop
# bounded, and the server stops by itself (after DURATION + 30 s at the latest, else when we
# send it SIGINT once wrk is done). Prints a Markdown table and keeps it, with every wrk and
# server log, in target/load_test/. wrk comes from Debian's packages and is installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}         # seconds per wrk run
THREADS=${THREADS:-2}            # wrk threads
CONNECTIONS=${CONNECTIONS:-50}   # wrk connections
SIZES=${SIZES:-"1024 16384 262144"}
MODES=${MODES:-"pooled plain"}
OUT=target/load_test

fail() { printf 'load_test: %s\n' "$*" >&2; exit 1; }

if ! command -v wrk >/dev/null; then
    echo "wrk is missing: installing Debian's package"
    if [ "$(id -u)" -ne 0 ]; then fail "wrk is not installed and we are not root: apt-get install wrk"; fi
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null || fail "cannot install wrk"
fi

cargo build --release --example http_server --features bytes
server=target/release/examples/http_server
mkdir -p "$OUT"

# `VmHWM` or `VmRSS` of a process in KiB.
status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
# The value of one row of the pool's statistics table in a server log.
stat_row() { awk -v row="$2" 'index($0, row) == 1 { print $NF }' "$1"; }

table="$OUT/results.md"
{
    echo "| body | mode | requests/s | p50 | p99 | RSS after (KiB) | peak RSS (KiB) | rented | served from pool | allocated | held bytes |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} > "$table"

for size in $SIZES; do
    for mode in $MODES; do
        log="$OUT/server-$mode-$size.log"
        "$server" --mode "$mode" --size "$size" --secs $((DURATION + 30)) > "$log" 2>&1 &
        pid=$!
        url=""
        for _ in $(seq 100); do  # at most 10 s for the server to come up
            url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$log" || true)
            [ -n "$url" ] && break
            sleep 0.1
        done
        [ -n "$url" ] || { kill "$pid" 2>/dev/null || true; fail "the server did not start: $log"; }
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s --latency "$url" \
            > "$OUT/wrk-$mode-$size.txt" 2>&1 || true
        rss=$(status_kib "$pid" VmRSS)
        hwm=$(status_kib "$pid" VmHWM)
        kill -INT "$pid" 2>/dev/null || true
        wait "$pid" || true
        wrk_out="$OUT/wrk-$mode-$size.txt"
        rps=$(awk '/^Requests\/sec:/ { print $2 }' "$wrk_out")
        p50=$(awk '$1 == "50%" { print $2 }' "$wrk_out")
        p99=$(awk '$1 == "99%" { print $2 }' "$wrk_out")
        rented=$(stat_row "$log" "rented")
        hits=$(stat_row "$log" "  served from the pool")
        allocated=$(stat_row "$log" "  allocated (pool exhausted)")
        held=$(stat_row "$log" "held now: bytes")
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
            "$size" "$mode" "${rps:-?}" "${p50:-?}" "${p99:-?}" "$rss" "$hwm" \
            "${rented:-?}" "${hits:-?}" "${allocated:-?}" "${held:-?}" | tee -a "$table"
    done
done

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency, $(nproc) CPUs shared by wrk and the server"
cat "$table"
