#!/usr/bin/env bash
# metrics_listen against Debian's prometheus server: a 3-node cluster scraped every second;
# promtool check metrics on /metrics; /metrics names exactly docs/metrics.md's metrics;
# leader count 1 and proposals increasing through Prometheus's API; /health 503 on a node
# whose peers are SIGSTOPped, 200 otherwise. See tests/integration/metrics_test.py.
# Skipped (77) where prometheus/promtool are not installed (`make deps` installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/metrics_test.py
