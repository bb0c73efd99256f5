#!/usr/bin/env bash
# Fuzzes the frame decoder and request parser (ipc/fuzz/frame_fuzz_main.cpp) with libFuzzer
# for FUZZ_SECONDS (default 20; `make soak-fuzz` runs 600). Seeds are valid requests of every
# op plus a few broken frames, written at run time. Exit 0: no crash, leak or sanitizer
# finding; a finding leaves its input in the temporary directory's crash-* file and fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/scripts/lib/fuzz.sh
fuzz_setup build/fuzz/frame_fuzz
/usr/bin/python3 - "$dir/corpus" <<'PY'
import struct, sys, msgpack
out = sys.argv[1]
reqs = [
    {"op": "hello", "id": 1, "version": 1, "name": "x"}, {"op": "ping", "id": 2},
    {"op": "propose", "id": 3, "data": b"abc"}, {"op": "subscribe", "id": 4, "from": 1},
    {"op": "unsubscribe", "id": 5, "sub": 4}, {"op": "read_index", "id": 6},
    {"op": "snapshot", "id": 7, "index": 3, "offset": 0, "data": b"s", "done": True},
    {"op": "status", "id": 8}, {"op": "members", "id": 9},
    {"op": "add_member", "id": 10, "node": 4, "addr": "h:1", "learner": True},
    {"op": "remove_member", "id": 11, "node": 4}, {"op": "promote", "id": 12, "node": 4},
    {"op": "demote", "id": 13, "node": 4},
    {"op": "change_members", "id": 14, "add": [{"node": 5, "addr": "h:2"}], "remove": [2]},
    {"op": "transfer_leader", "id": 15, "to": 2}, {"op": "campaign", "id": 16},
]
def frame(b): return struct.pack(">I", len(b)) + b
for i, r in enumerate(reqs):
    with open(f"{out}/req{i}", "wb") as f:
        f.write(b"\x07" + frame(msgpack.packb(r, use_bin_type=True)))
with open(f"{out}/all", "wb") as f:
    f.write(b"\x10" + b"".join(frame(msgpack.packb(r, use_bin_type=True)) for r in reqs))
with open(f"{out}/bad", "wb") as f:
    f.write(b"\x02" + frame(b"\x93\x01\x02\x03") + frame(b"\xc1") + b"\xff\xff\xff\xff")
PY
fuzz_run fuzz_frame 4096
