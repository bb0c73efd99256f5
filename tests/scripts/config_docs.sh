#!/usr/bin/env bash
# docs/configuration.md and systemd/raftd.toml are generated from the option table in
# daemon/config_table.cpp. This fails when either committed file differs from what the
# built raftd prints, i.e. when someone changed an option without `make config-docs`.
set -euo pipefail
cd "$(dirname "$0")/../.."
raftd=${RAFTD_BUILD:-build/release}/bin/raftd
[ -x "$raftd" ] || { echo "no $raftd; build first"; exit 1; }
status=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
check() {  # $1 = flag, $2 = committed file
    if ! diff -u "$2" <("$raftd" "$1") >"$out" 2>&1; then
        echo "$2 is out of date with the option table; run 'make config-docs':"
        head -n 40 "$out"
        status=1
    fi
}
check --print-config-reference docs/configuration.md
check --print-example-config systemd/raftd.toml
# The example must load as a configuration of its own.
"$raftd" --config systemd/raftd.toml --check-config >/dev/null
exit $status
