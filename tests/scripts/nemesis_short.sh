#!/usr/bin/env bash
# A short nemesis run (about 60-90 s): the power-loss self-test, then 3 nodes under kill,
# pause, partition, power loss, corrupt and enospc with a seed from a fixed rotation
# (NEMESIS_SEED overrides), all checks. Needs root, loop devices and nft: exits 77 (skipped) without them.
# On failure the seed, schedule, history and logs are under build/nemesis/.
set -uo pipefail
cd "$(dirname "$0")/../.."
# Seeds whose 45 s, 3-node schedule holds every fault kind (pick them again when a kind is
# added: make_schedule in tests/nemesis/nemesis.py).
SEEDS=(5 9 12 26 38 44 49)
seed=${NEMESIS_SEED:-${SEEDS[$((10#$(date -u +%j) % ${#SEEDS[@]}))]}}
/usr/bin/python3 tests/nemesis/selftest_powerloss.py
rc=$?
[ $rc -eq 0 ] || exit $rc
exec /usr/bin/python3 tests/nemesis/nemesis.py --nodes 3 --seconds "${NEMESIS_SECONDS:-45}" \
    --seed "$seed" --faults kill,pause,partition,powerloss,corrupt,enospc
