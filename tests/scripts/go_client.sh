#!/usr/bin/env bash
# The Go client (clients/go): `go vet` over every Go package of the tree and its unit tests
# (against an in-process fake server: pipelining, typed errors, deadlines, no goroutine left
# after Close). Offline, from Debian's packages; skipped only where `make deps` was not run.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v go >/dev/null || { echo "skip: go is not installed (make deps installs golang-go)"; exit 77; }
exec make -s go-test
