#!/usr/bin/env bash
# Socket activation as raftd.socket performs it: a listening Unix socket handed to raftd as
# fd 3 with LISTEN_FDS=1 and LISTEN_PID=<raftd's pid>; a client that connected before raftd
# started gets its ping answered. The harness is tests/scripts/lib/activation_harness.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
raftd=$(pwd)/${RAFTD_BUILD:-build/release}/bin/raftd
[ -x "$raftd" ] || { echo "no $raftd; build first"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 tests/scripts/lib/activation_harness.py "$raftd" "$work"
