#!/usr/bin/env bash
# Starts the local three-node demo cluster of daemon/demo/node{1,2,3}.toml in the
# foreground: data under run/, client sockets run/node1.sock .. run/node3.sock, peers on
# 127.0.0.1:7101-7103. Each node's log lines are prefixed with its id. Ctrl-C (or SIGTERM)
# stops all three gracefully and waits for them. Run from the repository root (`make run`).
set -uo pipefail
cd "$(dirname "$0")/../.."
raftd=${RAFTD_BUILD:-build/release}/bin/raftd
[ -x "$raftd" ] || { echo "run.sh: $raftd is not built (use 'make run')" >&2; exit 1; }
mkdir -p run

pids=()
stop() {
    trap - INT TERM
    echo "run.sh: stopping the cluster"
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    wait "${pids[@]}"
    wait "${prefixers[@]}" 2>/dev/null
    echo "run.sh: all nodes stopped; data stays in run/ (delete it to start afresh)"
    exit 0
}
trap stop INT TERM

prefixers=()
for i in 1 2 3; do
    # raftd's output goes through a prefixer that ignores SIGINT, so it keeps copying until
    # raftd has logged its last line; the parent closes its copy of the pipe at once.
    exec {out}> >(trap '' INT; exec sed -u "s/^/node$i | /")
    prefixers+=($!)
    "$raftd" --config "daemon/demo/node$i.toml" >&"$out" 2>&1 &
    pids+=($!)
    exec {out}>&-
done

cat <<MSG
run.sh: three raftd nodes are starting (Ctrl-C stops them).
run.sh: client sockets: run/node1.sock run/node2.sock run/node3.sock
MSG
wait "${pids[@]}"
wait "${prefixers[@]}" 2>/dev/null
echo "run.sh: all nodes exited"
