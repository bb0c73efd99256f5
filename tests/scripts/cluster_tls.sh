#!/usr/bin/env bash
# Integration test: peer TLS on a 3-node cluster: election, replication, snapshot transfer,
# restart, and a rotation to a new CA by SIGHUP under load with no acknowledged entry lost;
# half the TLS options or a certificate naming another node stop raftd at start.
# Real raftd processes on loopback; see tests/integration/cluster_tls.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_tls.py tls_cluster_ops tls_mismatch_startup
