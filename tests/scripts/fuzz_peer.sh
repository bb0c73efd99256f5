#!/usr/bin/env bash
# Fuzzes what a peer can send (daemon/fuzz/peer_fuzz_main.cpp) with libFuzzer for
# FUZZ_SECONDS (default 20; `make soak-fuzz` runs 600): TLS records into an accepting
# session that must never open for them, and the plaintext handshake and message frames that
# follow an accepted handshake. Seeds (a real ClientHello, a hello, a welcome) and the
# certificates are made at run time. Exit 0: no crash, leak or sanitizer finding; a finding
# is copied to build/fuzz/findings/ and fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/scripts/lib/fuzz.sh
fuzz_setup build/fuzz/peer_fuzz
tools/peer-certs.sh ca "$dir/pki"
tools/peer-certs.sh node "$dir/pki" fuzz 1
tools/peer-certs.sh node "$dir/pki" fuzz 2
/usr/bin/python3 - "$dir/corpus" "$dir/pki" <<'PY'
import ssl, struct, sys, msgpack
out, pki = sys.argv[1], sys.argv[2]
def frame(b): return struct.pack(">I", len(b)) + b
hello = frame(msgpack.packb({"raftd_peer": 1, "cluster": "fuzz", "from": 2, "to": 1,
                             "addr": "127.0.0.1:7002", "incarnation": 7, "bootstrapping": True}))
welcome = frame(msgpack.packb({"ok": False, "node": 1, "cluster": "fuzz", "error": "no",
                               "incarnation": 3, "known_incarnation": 2}))
fwd = frame(msgpack.packb({"fwd": 1, "seq": 5, "data": b"entry"}, use_bin_type=True))
# A ClientHello as node 2's TLS client sends it.
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.check_hostname = False
ctx.load_verify_locations(f"{pki}/ca.pem")
ctx.load_cert_chain(f"{pki}/node-2.pem", f"{pki}/node-2.key")
inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(inc, outg, server_side=False)
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
client_hello = outg.read()
for name, data in {"hello": b"\x07" + hello + fwd, "welcome": b"\x30" + welcome,
                   "client_hello": b"\xff" + client_hello,
                   "client_hello_split": b"\x04" + client_hello + hello}.items():
    with open(f"{out}/{name}", "wb") as f:
        f.write(data)
PY
RAFTD_FUZZ_PKI="$dir/pki" fuzz_run fuzz_peer 8192
