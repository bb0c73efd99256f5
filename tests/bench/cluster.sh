# Sourced by the benchmark scripts: start and stop local raftd clusters in a temp dir.
#   start_cluster N NAME   -> SOCKETS (comma-separated), PIDS (space-separated), LEADER_SOCKET
#   stop_cluster           -> SIGTERM, wait, SIGKILL what is left
# BENCH_RAFTD_ARGS: extra raftd flags; "{id}" in them becomes each node's id (TLS files).
# Ports are picked free at run time; each node logs to $BENCH_TMP/NAME/nN.log.
RAFTD=${RAFTD:-build/release/bin/raftd}
RAFTBENCH=${RAFTBENCH:-build/release/bin/raftbench}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_cluster() {  # $1 = nodes, $2 = name
    local n=$1 name=$2 dir=$BENCH_TMP/$2 i peers="" ports=()
    mkdir -p "$dir"
    for i in $(seq 1 "$n"); do ports[$i]=$(free_port); peers+="${peers:+,}$i=127.0.0.1:${ports[$i]}"; done
    SOCKETS="" PIDS=""
    for i in $(seq 1 "$n"); do
        "$RAFTD" --node-id "$i" --cluster "$name" --data-dir "$dir/n$i" --socket "$dir/n$i.sock" \
            --listen "127.0.0.1:${ports[$i]}" --initial-cluster "$peers" --log-level ${BENCH_LOG_LEVEL:-warn} \
            ${BENCH_RAFTD_ARGS:+${BENCH_RAFTD_ARGS//\{id\}/$i}} >"$dir/n$i.log" 2>&1 &
        PIDS+="${PIDS:+ }$!"
        SOCKETS+="${SOCKETS:+,}$dir/n$i.sock"
    done
    local deadline=$((SECONDS + 30))
    for i in $(seq 1 "$n"); do
        while [ ! -S "$dir/n$i.sock" ]; do
            if [ $SECONDS -gt $deadline ]; then
                echo "cluster $name: node $i did not open its socket:" >&2; tail -n 20 "$dir/n$i.log" >&2
                return 1
            fi
            sleep 0.05
        done
    done
    LEADER_SOCKET=$("$RAFTBENCH" --sockets "$SOCKETS" --wait-leader 30) || return 1
}

stop_cluster() {
    local p
    [ -n "${PIDS:-}" ] || return 0
    kill -TERM $PIDS 2>/dev/null || true
    for p in $PIDS; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    PIDS=""
}
