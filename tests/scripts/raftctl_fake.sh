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
# tail: everything from 1, stop after N entries; text as it is, anything else as 0x + hex
[ "$(R tail --from 1 --count 2)" = "$(printf '1 3 data hello\n2 3 data 0x66726f6d0a737464696e')" ]
R tail --from 2 --count 1 --hex | grep -q '^2 3 data 66726f6d0a737464696e$'
R tail --from 1 --count 1 --json | /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.readline()); assert d["index"]==1 and d["data"]=="hello", d'
# config entries decoded (4: add 4 as a learner, 5: promote it), not their bytes
[ "$(R tail --from 4 --count 2)" = "$(printf '4 3 config voters=1,2,3 learners=4\n5 3 config voters=1,2,3,4')" ]
R tail --from 4 --count 1 --json | /usr/bin/python3 -c '
import json,sys; d=json.loads(sys.stdin.readline())
assert d["type"]=="config" and [m["voter"] for m in d["members"]]==[True,True,True,False] and d["joint"] is False and "data" not in d, d'
# UTF-8 text is text; text starting with 0x and bytes that are not text are hex
first=$(printf 'h\xc3\xa9llo' | R propose | cut -d' ' -f1)
printf '0xabc' | R propose > /dev/null
printf '\xff\x00' | R propose > /dev/null
[ "$(R tail --from "$first" --count 3 | cut -d' ' -f3-)" = "$(printf 'data h\xc3\xa9llo\ndata 0x3078616263\ndata 0xff00')" ]
R tail --from "$first" --count 3 --json | /usr/bin/python3 -c '
import json,sys; d=[json.loads(l) for l in sys.stdin]
assert [x.get("data") for x in d]==["h\u00e9llo","0xabc",None] and d[2]["hex"]=="ff00", d'
# snapshot: save a file at an index, then a new subscriber from 1 sees it first
head -c 300000 /dev/urandom > "$dir/snap"
idx=$(R read-index)
R snapshot --index "$idx" "$dir/snap" | grep -q "^snapshot $idx saved (300000 bytes)$"
R tail --from 1 --count 1 | head -n1 | grep -Eq "^$idx [0-9]+ snapshot 300000 bytes$"

# health: one line per node, non-zero exit when any is unhealthy
R health | grep -Eq "^$sock is healthy: node 1, leader 1, term [0-9]+, took [0-9.]+ms$"
"$B/bin/raftctl" health --sockets "$sock,$sock" > "$dir/h"
[ "$(grep -c ' is healthy: ' "$dir/h")" = 2 ]
expect_rc 3 "$B/bin/raftctl" health --sockets "$sock,$dir/nope.sock"
grep -q "^$sock is healthy: " "$dir/out"
grep -q "^$dir/nope.sock is unhealthy: CONNECTION: cannot connect" "$dir/out"
printf 'node_id = 1\nsocket = "%s"\n' "$sock" > "$dir/node1.toml"
printf 'node_id = 2\nsocket = "%s"\n' "$dir/nope.sock" > "$dir/node2.toml"
"$B/bin/raftctl" health --config "$dir/node1.toml" --json | /usr/bin/python3 -c '
import json,sys; d=[json.loads(l) for l in sys.stdin]
assert len(d)==1 and d[0]["healthy"] is True and d[0]["leader"]==1 and "error" not in d[0], d'
expect_rc 3 "$B/bin/raftctl" health --config "$dir/node1.toml,$dir/node2.toml" --json
/usr/bin/python3 -c '
import json,sys; d=[json.loads(l) for l in open(sys.argv[1])]
assert [x["healthy"] for x in d]==[True,False] and d[1]["error"]["code"]=="CONNECTION", d' "$dir/out"
expect_rc 2 "$B/bin/raftctl" health --config "$dir/missing.toml"

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
