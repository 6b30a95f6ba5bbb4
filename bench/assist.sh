#!/usr/bin/env bash
# bench/assist.sh [N]: the live-assist benchmark of issue 8 against one
# `altsock serve` (altsock-visitors, the load tool's visitor mode). Seeds R
# representatives in the site group (`altsock seed-bench`, weak hashes, a
# throwaway database), starts the server, and in that one process measures:
#   1. idle: N widget visitors (hub connection + /assist/open); the server's
#      RSS per hub connection alone, and per visitor above it;
#   2. presenter: one card to all N visitors (POST /assist/console/present)
#      next to the hub's fan-out to the same N connections (POST /pub/bench),
#      p50/p99 from the command to every visitor's read;
#   3. routing: ASKERS visitors ask at once with R representatives holding
#      consoles: time until all are offered or queued; none lost, none
#      offered twice.
# Prints key = value lines (and the load average) and writes them to
# bench-out/assist-*.txt. Build first:
#   cargo build --release -p altsock -p altsock-load
#
# Environment (all optional):
#   REPS=20  ASKERS=1000  ROUNDS=5  PORT=19420
#   CAP=4          --assist-chat-cap (offers count against it)
#   SERVE=target/release/altsock   SERVE_ARGS=''   extra serve flags
set -euo pipefail

N=${1:-10000}
REPS=${REPS:-20}
ASKERS=${ASKERS:-1000}
ROUNDS=${ROUNDS:-5}
PORT=${PORT:-19420}
CAP=${CAP:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SEED="$ROOT/target/release/altsock"
SERVE=${SERVE:-$SEED}
VISITORS="$ROOT/target/release/altsock-visitors"
OUT="$ROOT/bench-out"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
TMP=$(mktemp -d /tmp/altsock-assist.XXXXXX)
mkdir -p "$OUT"
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

"$SEED" seed-bench --db "$TMP/assist.db" --group support --prefix rep -n "$REPS" >/dev/null
# The queue holds every asker; an offer waits a minute (no lapse mid-run);
# every visitor arrives from the load tool's one setup address, so the cap
# on new visitors per address is lifted (it is not what is measured here).
# shellcheck disable=SC2086
RUST_LOG=warn "$SERVE" serve --listen "127.0.0.1:$PORT" --db "$TMP/assist.db" \
    --publish-token bench --node-id bench --max-connections 19000 \
    --assist-max-queue $((ASKERS + 100)) --assist-chat-cap "$CAP" \
    --assist-answer-timeout 60s --assist-max-visitors $((N + 100)) \
    --assist-arrivals-per-addr 1000000 \
    ${SERVE_ARGS:-} 2> "$OUT/assist-$STAMP-server.log" &
SERVER_PID=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "server $SERVER_PID on $PORT: $N visitors, $REPS representatives, $ASKERS askers; load average $LOAD_BEFORE"
nice "$VISITORS" --target "127.0.0.1:$PORT" --server-pid "$SERVER_PID" --site support \
    -n "$N" --reps "$REPS" --askers "$ASKERS" --rounds "$ROUNDS" --publish-token bench \
    | tee "$TMP/out.txt"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
{
    echo "# bench/assist.sh $N at $STAMP; load average before: $LOAD_BEFORE, after: $LOAD_AFTER"
    cat "$TMP/out.txt"
} > "$OUT/assist-$STAMP.txt"
echo "load average after: $LOAD_AFTER; written to bench-out/assist-$STAMP.txt"
