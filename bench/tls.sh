#!/usr/bin/env bash
# bench/tls.sh [N]: TLS figures of `altsock serve`'s hub, in one run, with
# the same load tool (bench/load, `--tls-ca` mode) and the same N SSE
# subscribers of one channel:
#   1. altsock, plain HTTP          (the baseline of the same run)
#   2. altsock, TLS (--listen-tls)  (ECDSA P-256 certificate, made here)
#   3. nginx-light + nchan, TLS     (`listen ... ssl`, the same certificate)
# Each server is pinned to CPU 0 and the load tool to CPU 1 (PIN=1). Reports
# RSS per held connection, fan-out p50/p99 (subscribers on TLS, the publisher
# on each server's plain port), full handshakes per second of server CPU
# (the load tool never resumes a session), and idle CPU. Writes the table and
# the raw figures to bench-out/tls-STAMP/. Run it with `nice` on a shared machine.
#
# Environment: ROUNDS=11 IDLE=20s KEEPALIVE=15 POLL=1s PIN=1 BASE_PORT=29500
set -euo pipefail

N=${1:-15000}
ROUNDS=${ROUNDS:-11}
IDLE=${IDLE:-20s}
KEEPALIVE=${KEEPALIVE:-15}
POLL=${POLL:-1s}
PIN=${PIN:-1}
BASE_PORT=${BASE_PORT:-29500}
SERVER_ON=()
CLIENT_ON=()
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SERVER_ON=(taskset -c 0)
    CLIENT_ON=(taskset -c 1)
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN="$ROOT/bench-out/tls-$(date -u +%Y%m%dT%H%M%SZ)"
TMP=$(mktemp -d /tmp/altsock-tls-bench.XXXXXX)
LOAD="$ROOT/target/release/altsock-load"
SERVE="$ROOT/target/release/altsock"
NCHAN_MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so
PIDS=()

cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '== %s\n' "$*" >&2; }

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

for port in $(seq "$BASE_PORT" $((BASE_PORT + 3))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port is in use; set BASE_PORT" >&2
        exit 1
    fi
done

if ! command -v nginx >/dev/null || [ ! -f "$NCHAN_MODULE" ]; then
    say "installing nginx-light and libnginx-mod-nchan"
    apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y nginx-light libnginx-mod-nchan >/dev/null
fi

mkdir -p "$RUN"
say "building (release)"
(cd "$ROOT" && cargo build --release --bin altsock && cargo build --release -p altsock-load) \
    >"$RUN/build.log" 2>&1

say "an ECDSA P-256 certificate for localhost"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -addext basicConstraints=critical,CA:FALSE \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null

# $1 label, $2 subscriber port, $3 server pid, $4 source base, then flags.
run_load() {
    local label=$1 port=$2 pid=$3 base=$4
    shift 4
    say "$label: $N subscribers on 127.0.0.1:$port"
    "${CLIENT_ON[@]}" "$LOAD" --label "$label" --target "127.0.0.1:$port" -n "$N" \
        --server-pid "$pid" --source-base "$base" --source-addrs 64 --rounds "$ROUNDS" \
        --idle "$IDLE" --connect-timeout 120s --out "$RUN/$label.txt" "$@" >"$RUN/$label.log" 2>&1
}

# $1 label, $2 "tls" or "plain".
bench_altsock() {
    local label=$1 mode=$2 port=$((BASE_PORT)) tls_port=$((BASE_PORT + 1))
    "${SERVER_ON[@]}" "$SERVE" serve --listen "127.0.0.1:$port" \
        --listen-tls "127.0.0.1:$tls_port" --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem" \
        --poll-interval "$POLL" --keepalive "${KEEPALIVE}s" --publish-token bench \
        --db "$TMP/$label.db" >"$RUN/$label-server.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_port "$port"
    wait_port "$tls_port"
    local flags=(--accept-sse --sub-path /sub/bench --pub-path /pub/bench
        --pub-header "Authorization: Bearer bench" --pub-target "127.0.0.1:$port")
    if [ "$mode" = tls ]; then
        run_load "$label" "$tls_port" "$pid" 127.4.0.1 "${flags[@]}" --tls-ca "$TMP/cert.pem"
    else
        run_load "$label" "$port" "$pid" 127.5.0.1 "${flags[@]}"
    fi
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

bench_nginx_tls() {
    local prefix="$TMP/nginx" port=$((BASE_PORT + 2)) tls_port=$((BASE_PORT + 3))
    mkdir -p "$prefix"
    sed -e "s#@PREFIX@#$prefix#g; s#@PORT@#$port#g; s#@PING@#$KEEPALIVE#g" \
        -e "s#^\( *\)listen 127.0.0.1:$port backlog=4096;#&\n\1listen 127.0.0.1:$tls_port ssl backlog=4096;\n\1ssl_certificate $TMP/cert.pem;\n\1ssl_certificate_key $TMP/key.pem;#" \
        "$ROOT/bench/nchan.conf.in" >"$prefix/nchan.conf"
    grep -q "ssl_certificate " "$prefix/nchan.conf"
    "${SERVER_ON[@]}" nginx -c "$prefix/nchan.conf" -p "$prefix" >"$RUN/nginx-tls-server.log" 2>&1 &
    local master=$!
    PIDS+=("$master")
    wait_port "$tls_port"
    local worker
    worker=$(pgrep -P "$master" | head -n 1)
    run_load nginx-tls "$tls_port" "$worker" 127.6.0.1 --accept-sse \
        --pub-target "127.0.0.1:$port" --tls-ca "$TMP/cert.pem"
    cp "$prefix/nchan.conf" "$RUN/nginx-tls.conf"
    kill -TERM "$master" 2>/dev/null || true
    wait "$master" 2>/dev/null || true
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_altsock altsock-plain plain
sleep 2
bench_altsock altsock-tls tls
sleep 2
bench_nginx_tls
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

get() { awk -F= -v k="$2" '$1 == k { print $2 }' "$1"; }
row() {
    printf '| %s | %s | %s | %s |\n' "$1" "$(get "$RUN/altsock-plain.txt" "$2")" \
        "$(get "$RUN/altsock-tls.txt" "$2")" "$(get "$RUN/nginx-tls.txt" "$2")"
}
{
    echo "TLS: altsock serve hub, plain and TLS, and nginx-light + nchan over TLS;"
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $LOAD_BEFORE before, $LOAD_AFTER after"
    echo "command: bench/tls.sh $N (ROUNDS=$ROUNDS IDLE=$IDLE KEEPALIVE=${KEEPALIVE}s PIN=$PIN)"
    echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //'); certificate ECDSA P-256"
    echo
    echo "| N = $N SSE subscribers | altsock plain | altsock TLS | nginx + nchan TLS |"
    echo "|---|---|---|---|"
    row "subscribers held" held
    row "**RSS per held connection (bytes)**" rss_per_conn_bytes
    row "server RSS with N held (KiB)" rss_held_kb
    row "connect rate (conn/s, wall)" connect_rate
    row "server CPU while connecting (ms)" connect_server_cpu_ms
    row "**connections per second of server CPU** (TLS: full handshakes)" connects_per_server_cpu_sec
    row "fan-out p50 (ms), median of rounds" fanout_p50_ms
    row "**fan-out p99 (ms), median of rounds**" fanout_p99_ms
    row "fan-out max (ms), worst round" fanout_worst_max_ms
    row "subscribers reached, worst round" fanout_received_min
    row "server CPU per publish (ms)" fanout_server_cpu_ms
    row "server CPU while idle (ms)" idle_cpu_ms
    row "keepalive bytes per connection in window" keepalive_bytes_per_conn
    row "connections dropped" dropped
} >"$RUN/table.md"
cat "$RUN/table.md"
say "written to $RUN/"
