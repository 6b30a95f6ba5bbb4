#!/usr/bin/env bash
# bench/storm.sh [N]: the presence storm of issue 13 against one `altsock
# serve`. Seeds N+1 accounts in one group (`altsock seed-bench`, weak hashes,
# a throwaway database), then in the same server process:
#   1. the hub's fan-out to N SSE subscribers of one channel (altsock-load),
#      the yardstick for "one more member online";
#   2. the storm (altsock-storm): N members open /jchat one by one at RATE per
#      second, then one more comes online.
# Prints both tools' key = value lines and writes them to bench-out/storm-*.
# Build first: cargo build --release -p altsock -p altsock-load (the load
# tools are the altsock-load crate in bench/load, a workspace member).
#
# Environment (all optional):
#   RATE=1000        pipes opened per second
#   QUERY='&v=2'     extra /jchat parameters ('' for the old single updates)
#   SERVE=target/release/altsock   the server binary (e.g. an older build)
#   SERVE_ARGS=''    extra `altsock serve` flags
#   HUB=1            run the hub fan-out first
#   RUST_LOG=warn    the server's log (altsock::server::presence=debug: the
#                    time each presence batch took to write)
#   STORM_ARGS=''    extra altsock-storm flags (e.g. --shuffle: pipes open
#                    in a fixed random order, not by name)
#   PORT=19410
set -euo pipefail

N=${1:-3000}
RATE=${RATE:-1000}
QUERY=${QUERY-&v=2}
PORT=${PORT:-19410}
HUB=${HUB:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SEED="$ROOT/target/release/altsock"
SERVE=${SERVE:-$SEED}
LOAD="$ROOT/target/release/altsock-load"
STORM="$ROOT/target/release/altsock-storm"
OUT="$ROOT/bench-out"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
TMP=$(mktemp -d /tmp/altsock-storm.XXXXXX)
mkdir -p "$OUT"
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

"$SEED" seed-bench --db "$TMP/storm.db" -n $((N + 1)) >/dev/null
# shellcheck disable=SC2086
RUST_LOG=${RUST_LOG:-warn} "$SERVE" serve --listen "127.0.0.1:$PORT" --db "$TMP/storm.db" \
    --publish-token bench --node-id bench ${SERVE_ARGS:-} &
SERVER_PID=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
echo "server $SERVER_PID on $PORT: $N members, $RATE pipes/s, query '$QUERY' ${STORM_ARGS:-}"
uptime
if [ "$HUB" = 1 ]; then
    nice "$LOAD" --target "127.0.0.1:$PORT" --sub-path /sub/storm-yardstick \
        --pub-path /pub/storm-yardstick --pub-header 'Authorization: Bearer bench' \
        --accept-sse -n "$N" --rounds 5 --idle 0s --server-pid "$SERVER_PID" \
        --label hub --out "$OUT/storm-$STAMP-hub.txt" | grep -E 'fanout_p|held|received_min'
fi
# shellcheck disable=SC2086
nice "$STORM" --target "127.0.0.1:$PORT" -n "$N" --rate "$RATE" --query "$QUERY" \
    --server-pid "$SERVER_PID" --label storm --out "$OUT/storm-$STAMP.txt" ${STORM_ARGS:-}
uptime
