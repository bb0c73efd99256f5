#!/usr/bin/env bash
# raftctl against fake_raftd (the real ipc server over an in-memory backend): every
# command's output format and the documented exit codes (docs/raftctl.md).
set -euo pipefail
B=${RAFTD_BUILD:-build/release}
for f in "$B/bin/raftctl" "$B/tests/fake_raftd"; do
    [ -x "$f" ] || { echo "missing $f (build it first)"; exit 1; }
done
dir=$(mktemp -d)
fake_pid=
cleanup() { [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
sock=$dir/raftd.sock
"$B/tests/fake_raftd" "$sock" > "$dir/fake.out" 2>&1 &
fake_pid=$!
for _ in $(seq 100); do grep -q ready "$dir/fake.out" 2>/dev/null && break; sleep 0.05; done
R() { "$B/bin/raftctl" --socket "$sock" "$@"; }
expect_rc() {  # expected-rc command...
    local want=$1; shift
    set +e; "$@" > "$dir/out" 2> "$dir/err"; local rc=$?; set -e
    [ "$rc" -eq "$want" ] || { echo "FAIL: '$*' exited $rc, want $want"; cat "$dir/out" "$dir/err"; exit 1; }
}

R ping | grep -q '^ok node 1 cluster test$'
[ "$(R propose hello)" = "1 3" ]
[ "$(printf 'from\nstdin' | R propose)" = "2 3" ]
[ "$(printf 'dash' | R propose -)" = "3 3" ]
[ "$(R read-index)" = "3" ]
# RAFTD_SOCKET is used when --socket is absent
[ "$(RAFTD_SOCKET=$sock "$B/bin/raftctl" read-index)" = "3" ]
R status | grep -q '^role      leader$'
R status --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["commit"]==3 and d["role"]=="leader" and len(d["members"])==3, d'
R members | grep -q '^2 .*127.0.0.1:7002 .*voter'
R members --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert [m["node"] for m in d["members"]]==[1,2,3], d'
R member add 4 127.0.0.1:7004 --learner | grep -q '^4 .*learner'
R member promote 4 | grep -q '^4 .*voter'
R member demote 4 | grep -q '^4 .*learner'
R member remove 4 > "$dir/m"; ! grep -q '^4 ' "$dir/m"
[ "$(R transfer-leader 2)" = "leader 2" ]
R campaign | grep -q '^term 4$'
# tail: everything from 1, stop after N entries; data printed escaped, one line each
[ "$(R tail --from 1 --count 2)" = "$(printf '1 3 data hello\n2 3 data from\\x0astdin')" ]
R tail --from 2 --count 1 --hex | grep -q '^2 3 data 66726f6d0a737464696e$'
R tail --from 1 --count 1 --json | /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.readline()); assert d["index"]==1 and d["data"]=="hello", d'
# snapshot: save a file at an index, then a new subscriber from 1 sees it first
head -c 300000 /dev/urandom > "$dir/snap"
idx=$(R read-index)
R snapshot --index "$idx" "$dir/snap" | grep -q "^snapshot $idx saved (300000 bytes)$"
R tail --from 1 --count 1 | head -n1 | grep -Eq "^$idx [0-9]+ snapshot 300000 bytes$"

# exit codes
expect_rc 2 R
expect_rc 2 R frobnicate
expect_rc 2 R member add
expect_rc 8 R member remove 99              # NOT_FOUND
expect_rc 9 R member add 2 127.0.0.1:1      # BAD_REQUEST: already a member
grep -q '^raftctl: BAD_REQUEST: ' "$dir/err"
expect_rc 9 R snapshot --index 999999 "$dir/snap"
expect_rc 3 "$B/bin/raftctl" --socket "$dir/nope.sock" ping
grep -q '^raftctl: CONNECTION: cannot connect' "$dir/err"
head -c 1048577 /dev/zero > "$dir/big"
expect_rc 9 R propose - < "$dir/big"         # TOO_LARGE
expect_rc 0 R --help
echo "raftctl_fake: ok"
