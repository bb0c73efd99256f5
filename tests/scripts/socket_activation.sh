#!/usr/bin/env bash
# Socket activation as raftd.socket performs it: a listening Unix socket handed to raftd as
# fd 3 with LISTEN_FDS=1 and LISTEN_PID=<raftd's pid>; a client that connected before raftd
# started gets its ping answered. The harness is tests/scripts/lib/activation_harness.py.
exec "$(dirname "$0")/lib/python_harness.sh" activation_harness.py
