#!/usr/bin/env bash
# The shipped alert rules (systemd/raftd-alerts.yml) parse and each fires for the node in
# trouble and stays silent for a healthy one: promtool test rules on
# tests/alerts/raftd-alerts_test.yml. Skipped (77) where promtool (Debian's prometheus
# package, `make deps`) is not installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v promtool >/dev/null || { echo "skip: promtool not installed (make deps)"; exit 77; }
promtool check rules systemd/raftd-alerts.yml
cd tests/alerts && promtool test rules raftd-alerts_test.yml
