#!/usr/bin/env bash
# bench/compare.sh [N]: altsock's pubsub example against nginx + nchan, one
# after the other in the same run, with the same N subscribers, driven by the
# same load tool (the altsock-load crate in bench/load, a workspace member).
# Prints a table with the ratios and writes it, the raw figures and the logs
# to bench-out/.
#
# Environment (all optional):
#   ROUNDS=11       publish rounds per server (the table takes the median)
#   IDLE=60s        idle window for the CPU / keepalive phase (4 keepalives)
#   KEEPALIVE=15    keepalive interval in seconds, both servers (altsock
#                   --keepalive, nchan_eventsource_ping_interval)
#   POLL=1s         altsock --poll-interval
#   ALTSOCK_PORT=19400  NCHAN_PORT=19401  HUB_PORT=19402
#   HUB=1           also run `altsock serve`'s hub: fan-out on /sub/CHANNEL
#                   (SSE, publisher token), reported in a second table
#   PIN=1           servers on CPU 0, the load tool on CPU 1 (taskset)
#
# Needs nginx-light and libnginx-mod-nchan; installs them with apt-get when run
# as root and they are missing. Touches neither the system nginx config nor its
# service: nginx runs with its own config in a temporary prefix.
set -euo pipefail

N=${1:-15000}
ROUNDS=${ROUNDS:-11}
IDLE=${IDLE:-60s}
# Longer than altsock's 10 s header timeout, like the 60 s default: a shorter
# keepalive gives each connection a second deadline-heap entry for its first
# 10 s, which shows as about 16 more bytes of RSS per connection.
KEEPALIVE=${KEEPALIVE:-15}
POLL=${POLL:-1s}
ALTSOCK_PORT=${ALTSOCK_PORT:-19400}
NCHAN_PORT=${NCHAN_PORT:-19401}
HUB_PORT=${HUB_PORT:-19402}
HUB=${HUB:-1}
# Pinning keeps the server and the load tool from preempting each other in the
# middle of a fan-out (other processes on a shared machine still may).
PIN=${PIN:-1}
SERVER_ON=()
CLIENT_ON=()
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SERVER_ON=(taskset -c 0)
    CLIENT_ON=(taskset -c 1)
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/bench-out"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN="$OUT/$STAMP"
TMP=$(mktemp -d /tmp/altsock-bench.XXXXXX)
LOAD="$ROOT/target/release/altsock-load"
PUBSUB="$ROOT/target/release/examples/pubsub"
SERVE="$ROOT/target/release/altsock"
NCHAN_MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so
PIDS=()

# Stops every process this script started, even on failure or Ctrl-C.
cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.5
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '== %s\n' "$*" >&2; }

# Waits until something accepts connections on 127.0.0.1:$1.
wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

# Refuses to start when a port is already taken (by someone else's server).
check_free() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        echo "port $1 is in use; set ALTSOCK_PORT / NCHAN_PORT" >&2
        exit 1
    fi
}

install_nginx() {
    if command -v nginx >/dev/null && [ -f "$NCHAN_MODULE" ]; then return 0; fi
    if [ "$(id -u)" != 0 ]; then
        echo "nginx-light and libnginx-mod-nchan are missing; run as root or install them" >&2
        exit 1
    fi
    say "installing nginx-light and libnginx-mod-nchan"
    apt-get update >"$TMP/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light libnginx-mod-nchan \
        >>"$TMP/apt.log" 2>&1 || { cat "$TMP/apt.log" >&2; exit 1; }
}

# Runs the load tool against a server; $1 label, $2 port, $3 pid, $4 source
# base, then extra flags.
run_load() {
    local label=$1 port=$2 pid=$3 base=$4
    shift 4
    say "$label: $N connections on 127.0.0.1:$port (server pid $pid)"
    "${CLIENT_ON[@]}" "$LOAD" --label "$label" --target "127.0.0.1:$port" -n "$N" \
        --server-pid "$pid" --source-base "$base" --source-addrs 64 \
        --rounds "$ROUNDS" --idle "$IDLE" --out "$RUN/$label.txt" "$@" \
        >"$RUN/$label.log" 2>&1 &
    background $! "$RUN/$label.log"
}

# Waits for a background job so that a signal reaches the traps at once (bash
# runs traps only between foreground commands), showing its log meanwhile.
background() {
    local job=$1 log=$2 shown
    PIDS+=("$job")
    tail -n +1 -F --pid="$job" "$log" 2>/dev/null &
    shown=$!
    PIDS+=("$shown")
    wait "$job"
    wait "$shown" || true
}

bench_altsock() {
    check_free "$ALTSOCK_PORT"
    "${SERVER_ON[@]}" "$PUBSUB" --listen "127.0.0.1:$ALTSOCK_PORT" --poll-interval "$POLL" \
        --keepalive "${KEEPALIVE}s" >"$RUN/altsock-server.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_port "$ALTSOCK_PORT"
    run_load altsock "$ALTSOCK_PORT" "$pid" 127.1.0.1
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

bench_nchan() {
    check_free "$NCHAN_PORT"
    local prefix="$TMP/nginx"
    mkdir -p "$prefix"
    sed -e "s#@PREFIX@#$prefix#g; s#@PORT@#$NCHAN_PORT#g; s#@PING@#$KEEPALIVE#g" \
        "$ROOT/bench/nchan.conf.in" >"$prefix/nchan.conf"
    "${SERVER_ON[@]}" nginx -c "$prefix/nchan.conf" -p "$prefix" >"$RUN/nchan-server.log" 2>&1 &
    local master=$!
    PIDS+=("$master")
    wait_port "$NCHAN_PORT"
    local worker
    worker=$(pgrep -P "$master" | head -n 1)
    [ -n "$worker" ] || { echo "no nginx worker under $master" >&2; exit 1; }
    PIDS+=("$worker")
    run_load nchan "$NCHAN_PORT" "$worker" 127.2.0.1 --accept-sse
    cp "$prefix/error.log" "$RUN/nchan-error.log" 2>/dev/null || true
    kill -TERM "$master" 2>/dev/null || true
    wait "$master" 2>/dev/null || true
}

# The notification hub of `altsock serve`: N SSE subscribers of one channel,
# published to with the bearer token.
bench_hub() {
    check_free "$HUB_PORT"
    "${SERVER_ON[@]}" "$SERVE" serve --listen "127.0.0.1:$HUB_PORT" --poll-interval "$POLL" \
        --keepalive "${KEEPALIVE}s" --publish-token bench --db "$TMP/hub.db" \
        >"$RUN/hub-server.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_port "$HUB_PORT"
    run_load hub "$HUB_PORT" "$pid" 127.3.0.1 --accept-sse --sub-path /sub/bench \
        --pub-path /pub/bench --pub-header "Authorization: Bearer bench"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# get FILE KEY: one value from a load tool result file.
get() { awk -F= -v k="$2" '$1 == k { print $2 }' "$1"; }

# ratio A B: A / B with two decimals, "-" when B is zero or missing.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }

table() {
    local a="$RUN/altsock.txt" n="$RUN/nchan.txt"
    row() { # label key ratio-direction(n/a or a/n) note
        local av nv r
        av=$(get "$a" "$2"); nv=$(get "$n" "$2")
        if [ "$3" = n/a ]; then r=$(ratio "$nv" "$av"); else r=$(ratio "$av" "$nv"); fi
        printf '| %s | %s | %s | %s %s |\n' "$1" "${av:--}" "${nv:--}" "$r" "$4"
    }
    echo "| N = $N held SSE subscribers | altsock (pubsub example) | nginx + nchan | ratio |"
    echo "|---|---|---|---|"
    row "subscribers held" held a/n ""
    row "connect rate (conn/s)" connect_rate a/n "(altsock / nchan)"
    row "load tool CPU while connecting (ms)" connect_client_cpu_ms a/n ""
    row "server RSS before (KiB)" rss_before_kb a/n ""
    row "server RSS with N held (KiB)" rss_held_kb a/n ""
    row "**RSS per held connection (bytes)**" rss_per_conn_bytes n/a "(nchan / altsock)"
    row "fan-out p50 (ms), median of rounds" fanout_p50_ms n/a "(nchan / altsock)"
    row "fan-out p99 (ms), median of rounds" fanout_p99_ms n/a "(nchan / altsock)"
    row "fan-out max (ms), median of rounds" fanout_max_ms n/a "(nchan / altsock)"
    row "fan-out max (ms), worst round" fanout_worst_max_ms n/a "(nchan / altsock)"
    row "subscribers reached, worst round" fanout_received_min a/n ""
    row "server CPU per publish (ms)" fanout_server_cpu_ms n/a "(nchan / altsock)"
    row "load tool CPU per publish (ms)" fanout_client_cpu_ms a/n ""
    row "idle window (s)" idle_secs a/n ""
    row "server CPU while idle (ms)" idle_cpu_ms n/a "(nchan / altsock)"
    row "server CPU while idle (% of a core)" idle_cpu_pct n/a "(nchan / altsock)"
    row "keepalive bytes per connection in window" keepalive_bytes_per_conn n/a "(nchan / altsock)"
    row "connections dropped" dropped a/n ""
    echo
    echo "RSS per held connection = (server VmRSS with N held - VmRSS before) / N; for"
    echo "nchan the nginx worker's. Fan-out = from just before the POST is written to"
    echo "the read that delivers the marker, per subscriber; median of $ROUNDS rounds."
    echo "CPU = utime + stime from /proc (10 ms ticks). Ratios > 1 favour altsock."
}

hub_table() {
    local h="$RUN/hub.txt" n="$RUN/nchan.txt"
    hrow() { # label key ratio-direction(n/h or h/n)
        local hv nv r
        hv=$(get "$h" "$2"); nv=$(get "$n" "$2")
        if [ "$3" = n/h ]; then r=$(ratio "$nv" "$hv"); else r=$(ratio "$hv" "$nv"); fi
        printf '| %s | %s | %s | %s |\n' "$1" "${hv:--}" "${nv:--}" "$r"
    }
    echo "| N = $N SSE subscribers of one channel | altsock serve hub (/sub/CHANNEL) | nginx + nchan | nchan / hub |"
    echo "|---|---|---|---|"
    hrow "subscribers held" held n/h
    hrow "**RSS per held connection (bytes)**" rss_per_conn_bytes n/h
    hrow "fan-out p50 (ms), median of rounds" fanout_p50_ms n/h
    hrow "fan-out p99 (ms), median of rounds" fanout_p99_ms n/h
    hrow "fan-out max (ms), median of rounds" fanout_max_ms n/h
    hrow "fan-out max (ms), worst round" fanout_worst_max_ms n/h
    hrow "subscribers reached, worst round" fanout_received_min n/h
    hrow "server CPU per publish (ms)" fanout_server_cpu_ms n/h
    hrow "server CPU while idle (ms)" idle_cpu_ms n/h
    echo
    echo "The hub buffers each message for resume (Last-Event-ID) and checks the"
    echo "publisher token; ratios > 1 favour the hub."
}

main() {
    mkdir -p "$RUN"
    install_nginx
    say "building (release)"
    (cd "$ROOT" && cargo build --release --example pubsub --bin altsock &&
        exec cargo build --release -p altsock-load) >"$RUN/build.log" 2>&1 &
    background $! "$RUN/build.log"
    bench_altsock
    sleep 2
    bench_nchan
    if [ "$HUB" = 1 ]; then
        sleep 2
        bench_hub
    fi
    {
        echo "altsock vs nginx + nchan, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r)"
        echo "command: bench/compare.sh $N (ROUNDS=$ROUNDS IDLE=$IDLE KEEPALIVE=${KEEPALIVE}s POLL=$POLL PIN=$PIN)"
        echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //'), nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || echo '?')"
        echo
        table
        if [ "$HUB" = 1 ]; then
            echo
            hub_table
        fi
    } >"$RUN/table.md"
    cp "$RUN/table.md" "$OUT/latest.md"
    echo
    cat "$RUN/table.md"
    say "written to $RUN/ and $OUT/latest.md"
}

main
