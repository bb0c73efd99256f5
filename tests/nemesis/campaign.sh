#!/usr/bin/env bash
# `make nemesis`: a mixed campaign of about NEMESIS_SECONDS (default 600), split into runs of
# NEMESIS_RUN_SECONDS (default 120) alternating 3 and 5 nodes, every fault kind. Run k uses
# seed NEMESIS_SEED+k (NEMESIS_SEED default: random, printed). Every run is made; the exit
# status is 1 if any failed (each failure's seed and evidence is under build/nemesis/).
set -uo pipefail
cd "$(dirname "$0")/../.."
total=${NEMESIS_SECONDS:-600}
per=${NEMESIS_RUN_SECONDS:-120}
[ "$per" -le "$total" ] || per=$total
base=${NEMESIS_SEED:-$(( (RANDOM << 15 | RANDOM) + 1 ))}
faults=${NEMESIS_FAULTS:-kill,pause,partition,powerloss,clock,membership,corrupt,enospc}
echo "nemesis campaign: ${total}s in runs of ${per}s, seeds from $base, faults $faults"
/usr/bin/python3 tests/nemesis/selftest_powerloss.py || exit $?
k=0 spent=0 failed=()
while [ "$spent" -lt "$total" ]; do
    nodes=$(( k % 2 == 0 ? 3 : 5 ))
    /usr/bin/python3 tests/nemesis/nemesis.py --nodes "$nodes" --seconds "$per" \
        --seed $((base + k)) --faults "$faults"
    rc=$?
    [ $rc -eq 77 ] && exit 77
    [ $rc -eq 0 ] || failed+=("seed $((base + k)) ($nodes nodes, exit $rc)")
    k=$((k + 1)); spent=$((spent + per))
done
echo "nemesis campaign: $k runs, seeds $base..$((base + k - 1)), ${#failed[@]} failed"
for f in "${failed[@]}"; do echo "  failed: $f"; done
[ ${#failed[@]} -eq 0 ]
