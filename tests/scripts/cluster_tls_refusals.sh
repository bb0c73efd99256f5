#!/usr/bin/env bash
# Integration test: peer TLS refuses expired, not-yet-valid, other-CA, revoked and wrong-SAN
# certificates with one warn line each; a plaintext node and a node of another CA cannot
# join; the cluster goes on. Real raftd processes on loopback; see
# tests/integration/cluster_tls.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_tls.py tls_refusals
