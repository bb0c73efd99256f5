#!/usr/bin/env bash
# raftd under a fake systemd: READY=1 with STATUS=, periodic WATCHDOG=1 when WATCHDOG_USEC
# is set (none when it is not), STOPPING=1 and exit 0 on SIGTERM, every datagram from
# raftd's own pid. The harness is tests/scripts/lib/notify_harness.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
raftd=$(pwd)/${RAFTD_BUILD:-build/release}/bin/raftd
[ -x "$raftd" ] || { echo "no $raftd; build first"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 tests/scripts/lib/notify_harness.py "$raftd" "$work"
