#!/usr/bin/env bash
# Runs one Python harness of tests/scripts/lib against the built raftd (RAFTD_BUILD, default
# build/release) in a scratch directory that is removed afterwards:
#   tests/scripts/lib/python_harness.sh NAME.py
# The harness gets raftd's path and the directory as its arguments; its status is the test's.
set -euo pipefail
cd "$(dirname "$0")/../../.."
raftd=$(pwd)/${RAFTD_BUILD:-build/release}/bin/raftd
[ -x "$raftd" ] || { echo "no $raftd; build first"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "tests/scripts/lib/$1" "$raftd" "$work"
