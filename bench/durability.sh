#!/usr/bin/env bash
# The durability benchmark (issue 14): stored chats acknowledged per second,
# pipelined on one connection and on CONNS connections, and the p99 latency of
# one stored chat while IDLE connections sit held. Each part runs against a
# fresh `altsock serve` on a fresh database; extra arguments go to the server
# (e.g. `--db-sync full`).
#   bench/durability.sh [serve flags...]
# Environment: ALTSOCK (server binary, default target/release/altsock),
# MESSAGES (20000), CONNS (connection counts besides 1: "16 64"), IDLE (10000), SAMPLES (2000), PORT (18080).
set -euo pipefail
cd "$(dirname "$0")/.."
ALTSOCK=${ALTSOCK:-target/release/altsock}
BENCH=target/release/examples/store_bench
MESSAGES=${MESSAGES:-20000} CONNS=${CONNS:-16 64} IDLE=${IDLE:-10000}
SAMPLES=${SAMPLES:-2000} PORT=${PORT:-18080}
[ -x "$BENCH" ] || cargo build --release --example store_bench
ulimit -n 20000
work=$(mktemp -d)
pid=
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
trap 'stop; rm -rf "$work"' EXIT

serve() {
  rm -f "$work"/db*
  # Another server on the port would be measured instead of ours.
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "port $PORT is in use; set PORT" >&2; exit 1
  fi
  RUST_LOG=warn "$ALTSOCK" serve --listen "127.0.0.1:$PORT" --db "$work/db" \
    --max-connections 19000 "$@" 2>"$work/log" &
  pid=$!
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return
    sleep 0.1
  done
  cat "$work/log"; exit 1
}

echo "server: $ALTSOCK $*"
for conns in 1 $CONNS; do
  serve "$@"
  nice "$BENCH" --addr "127.0.0.1:$PORT" throughput --messages "$MESSAGES" --conns "$conns"
  stop
done
serve "$@"
nice "$BENCH" --addr "127.0.0.1:$PORT" latency --idle "$IDLE" --samples "$SAMPLES"
stop
