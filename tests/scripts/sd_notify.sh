#!/usr/bin/env bash
# raftd under a fake systemd: READY=1 with STATUS=, periodic WATCHDOG=1 when WATCHDOG_USEC
# is set (none when it is not), STOPPING=1 and exit 0 on SIGTERM, every datagram from
# raftd's own pid. The harness is tests/scripts/lib/notify_harness.py.
exec "$(dirname "$0")/lib/python_harness.sh" notify_harness.py
