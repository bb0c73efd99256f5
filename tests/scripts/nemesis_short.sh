#!/usr/bin/env bash
# A short nemesis run (about 60-90 s): the power-loss self-test, then 3 nodes under kill,
# pause, partition, power loss, corrupt and enospc with a seed from a fixed rotation
# (NEMESIS_SEED overrides), all checks. Needs root, loop devices and nft: exits 77 (skipped) without them.
# On failure the seed, schedule, history and logs are under build/nemesis/.
set -uo pipefail
cd "$(dirname "$0")/../.."
SEEDS=(1 2 3 5 8 13 21)
seed=${NEMESIS_SEED:-${SEEDS[$((10#$(date -u +%j) % ${#SEEDS[@]}))]}}
/usr/bin/python3 tests/nemesis/selftest_powerloss.py
rc=$?
[ $rc -eq 0 ] || exit $rc
exec /usr/bin/python3 tests/nemesis/nemesis.py --nodes 3 --seconds "${NEMESIS_SECONDS:-45}" \
    --seed "$seed" --faults kill,pause,partition,powerloss,corrupt,enospc
