#!/usr/bin/env bash
# make bench-restart: memory and time to ready after a restart, against the size of the log.
# A single node takes 4 KiB proposals until its WAL holds each size of RESTART_SIZES_MB in
# turn; at each size it is stopped (SIGTERM), the page cache is dropped (RESTART_COLD=1, the
# default as root) and it is started again on the same data directory. Measured each time:
#   hwm_kb      peak resident memory of the restarted process until ready (VmHWM)
#   anon_kb     its anonymous resident memory once ready (RssAnon)
#   ready_s     from exec until it answers `status` as leader
#   cat_s       `cat` of the same segment files with a cold cache, measured right after
# One JSON line per size on stdout (the last line of each is also in build/bench/restart.json).
# Knobs: RESTART_SIZES_MB ("1024 4096"), RESTART_CACHE (wal_cache_bytes, "64MiB"),
# RESTART_SEGMENT (wal_segment_size, "64MiB"), RESTART_COLD (1), RESTART_DIR (a temp dir).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${RAFTD_BUILD:-build/release}
RAFTD=$build/bin/raftd RAFTBENCH=$build/bin/raftbench RAFTCTL=$build/bin/raftctl
for b in "$RAFTD" "$RAFTBENCH" "$RAFTCTL"; do [ -x "$b" ] || { echo "no $b; build first" >&2; exit 1; }; done
SIZES=${RESTART_SIZES_MB:-1024 4096}
CACHE=${RESTART_CACHE:-64MiB}
SEGMENT=${RESTART_SEGMENT:-64MiB}
# Dropping the page cache needs root; without it the figures are for a warm cache (cold: 0).
COLD=${RESTART_COLD:-$([ "$(id -u)" -eq 0 ] && echo 1 || echo 0)}
dir=${RESTART_DIR:-$(mktemp -d)}
own_dir=$([ -z "${RESTART_DIR:-}" ] && echo 1 || echo 0)
mkdir -p build/bench
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    [ "$own_dir" = 1 ] && rm -rf "$dir"
    return 0
}
trap cleanup EXIT
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sock=$dir/n1.sock

now() { date +%s.%N; }
start_node() {  # sets PID and READY_S
    local t0 t1
    t0=$(now)
    "$RAFTD" --node-id 1 --cluster restart --data-dir "$dir/n1" --socket "$sock" \
        --listen "127.0.0.1:$port" --wal-cache-bytes "$CACHE" --wal-segment-size "$SEGMENT" \
        --log-level warn >>"$dir/n1.log" 2>&1 &
    PID=$!
    local deadline=$((SECONDS + 600))
    until "$RAFTCTL" --socket "$sock" --timeout 1000 status 2>/dev/null | grep -q 'leader'; do
        kill -0 "$PID" 2>/dev/null || { echo "raftd exited:" >&2; tail -n 20 "$dir/n1.log" >&2; exit 1; }
        [ $SECONDS -lt $deadline ] || { echo "raftd not ready after 600 s" >&2; exit 1; }
        sleep 0.01
    done
    t1=$(now)
    READY_S=$(printf "%.3f" "$(echo "$t1 - $t0" | bc)")
}
stop_node() {
    kill -TERM "$PID"
    wait "$PID" 2>/dev/null || true
    PID=""
}
field() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$PID/status"; }
drop_caches() {
    sync
    if [ "$COLD" = 1 ]; then echo 3 >/proc/sys/vm/drop_caches; fi
}

start_node
for mb in $SIZES; do
    # du counts preallocated segments at their full size: the log holds up to one segment
    # less than the figure printed.
    while :; do
        have=$(du -sm "$dir/n1/wal" | awk '{ print $1 }')
        [ "$have" -lt "$mb" ] || break
        left=$(((mb - have) * 1024 * 1024 / 4200 + 1))
        [ "$left" -le 200000 ] || left=200000
        "$RAFTBENCH" --sockets "$sock" --clients 4 --pipeline 32 --size 4096 --count "$left" >/dev/null
        echo "restart bench: wrote up to ${have} MiB of $mb" >&2
    done
    stop_node
    drop_caches
    start_node
    hwm=$(field VmHWM) anon=$(field RssAnon)
    stop_node
    drop_caches
    t0=$(now)
    cat "$dir"/n1/wal/*.log >/dev/null
    t1=$(now)
    cat_s=$(printf "%.3f" "$(echo "$t1 - $t0" | bc)")
    disk=$(du -sm "$dir/n1/wal" | awk '{ print $1 }')
    line="{\"wal_mib\": $disk, \"cache\": \"$CACHE\", \"hwm_kb\": $hwm, \"anon_kb\": $anon, \"ready_s\": $READY_S, \"cat_s\": $cat_s, \"cold\": $COLD}"
    echo "$line"
    echo "$line" >>build/bench/restart.json
    start_node
done
