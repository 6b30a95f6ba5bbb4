#!/usr/bin/env bash
# bench/ws.sh [N]: WebSocket figures of issue 12, in one run.
#
# 1. The pubsub example twice, fresh each time, with N subscribers: SSE, then
#    WebSocket (altsock-load --websocket, which answers the keepalive pings).
#    Reports RSS per held connection and fan-out p50/p99 of each, side by side.
# 2. Once more with N subscribers, half SSE and half WebSocket in the same
#    rounds (--websocket-mix): the fan-out comparison, since on a shared
#    machine two runs a minute apart see different loads.
# 3. Echo: examples/ws_echo on one core, altsock-echo on the other: messages
#    echoed per second, and per second of server CPU.
#
# Prints a table and writes it with the raw figures to bench-out/ws-STAMP/.
# Environment: ROUNDS=11, IDLE=20s, KEEPALIVE=15 (seconds), POLL=1s,
# PORT=19410, ECHO_SECS=10s, PIN=1 (server on CPU 0, load on CPU 1).
# Everything runs under `nice`: the machine is shared.
set -euo pipefail

N=${1:-15000}
ROUNDS=${ROUNDS:-11}
IDLE=${IDLE:-20s}
KEEPALIVE=${KEEPALIVE:-15}
POLL=${POLL:-1s}
PORT=${PORT:-19410}
ECHO_SECS=${ECHO_SECS:-10s}
PIN=${PIN:-1}
SERVER_ON=(nice)
CLIENT_ON=(nice)
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SERVER_ON=(nice taskset -c 0)
    CLIENT_ON=(nice taskset -c 1)
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN="$ROOT/bench-out/ws-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RUN"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

(cd "$ROOT" && cargo build --release -q -p altsock-load \
    && cargo build --release -q --example pubsub --example ws_echo)
LOAD="$ROOT/target/release/altsock-load"
ECHO="$ROOT/target/release/altsock-echo"

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    exit 1
}

# fanout LABEL SOURCE-BASE [load flags]: a fresh pubsub, N subscribers.
fanout() {
    local label=$1 base=$2
    shift 2
    "${SERVER_ON[@]}" "$ROOT/target/release/examples/pubsub" --listen "127.0.0.1:$PORT" \
        --poll-interval "$POLL" --keepalive "${KEEPALIVE}s" >"$RUN/$label-server.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_port "$PORT"
    echo "== $label: $N subscribers (load average: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    "${CLIENT_ON[@]}" "$LOAD" --label "$label" --target "127.0.0.1:$PORT" -n "$N" \
        --server-pid "$pid" --source-base "$base" --source-addrs 64 --rounds "$ROUNDS" \
        --idle "$IDLE" --out "$RUN/$label.txt" "$@" >"$RUN/$label.log" 2>&1
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

fanout sse 127.1.0.1 --accept-sse
fanout websocket 127.2.0.1 --websocket
fanout mixed 127.3.0.1 --accept-sse --websocket-mix

echo "== echo (load average: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
"${SERVER_ON[@]}" "$ROOT/target/release/examples/ws_echo" --listen "127.0.0.1:$PORT" \
    >"$RUN/echo-server.log" 2>&1 &
echo_pid=$!
PIDS+=("$echo_pid")
wait_port "$PORT"
"${CLIENT_ON[@]}" "$ECHO" --target "127.0.0.1:$PORT" --server-pid "$echo_pid" \
    --duration "$ECHO_SECS" >"$RUN/echo.txt" 2>&1
kill -TERM "$echo_pid" 2>/dev/null || true

get() { awk -F' = |=' -v k="$2" '$1 == k { print $2 }' "$1"; }
{
    echo "| N = $N held subscribers, pubsub example | SSE | WebSocket |"
    echo "|---|---|---|"
    for key in held rss_per_conn_bytes fanout_p50_ms fanout_p99_ms fanout_max_ms \
        idle_alive idle_cpu_pct keepalive_bytes_per_conn dropped; do
        echo "| $key | $(get "$RUN/sse.txt" "$key") | $(get "$RUN/websocket.txt" "$key") |"
    done
    echo
    echo "| N = $N, half SSE and half WebSocket, same rounds | SSE | WebSocket |"
    echo "|---|---|---|"
    for q in p50 p99; do
        echo "| fan-out $q (ms), median of $ROUNDS rounds | $(get "$RUN/mixed.txt" "fanout_sse_${q}_ms") | $(get "$RUN/mixed.txt" "fanout_ws_${q}_ms") |"
    done
    echo
    sed -n 's/^echo: //p' "$RUN/echo.txt"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RUN/table.md"
