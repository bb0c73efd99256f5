#!/usr/bin/env bash
# The installed C++ client archive holds the client and the protocol codec only, as the
# Makefile promises: no server (ipc::Server and its connections), no libuv, spdlog or leveldb,
# no raft/, wal/ or daemon/ code. Three checks, each able to fail on its own:
#   - every object of the archive links into a program with nothing but libstdc++/libc
#     (--whole-archive, so an object no program would pull in still counts);
#   - no object references a uv_/spdlog/leveldb symbol;
#   - no object defines a raft/wal/daemon function or the server (weak symbols are the inline
#     members of raft/types.h, the vocabulary the codec shares, e.g. raft::Payload).
# CLIENT_LIB=path checks another archive (e.g. an older build) instead of building one.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -d clients/cpp/raftd ] || { echo "no C++ client in this tree"; exit 77; }
lib=${CLIENT_LIB:-}
if [ -z "$lib" ]; then
    lib=build/release/lib/libraftd-client.a
    env -u MAKEFLAGS -u MFLAGS make -s --no-print-directory "$lib" >"$work/make.log" 2>&1 ||
        { cat "$work/make.log"; echo "FAIL: make $lib"; exit 1; }
fi
[ -f "$lib" ] || { echo "FAIL: no $lib"; exit 1; }
fail=0
bad() { echo "FAIL: $*"; fail=1; }

echo 'int main() { return 0; }' >"$work/main.cpp"
g++ -std=c++20 "$work/main.cpp" -Wl,--whole-archive "$lib" -Wl,--no-whole-archive -lpthread \
    -o "$work/app" >"$work/ld.log" 2>&1 ||
    { head -n 20 "$work/ld.log"; bad "the objects of $lib need more than libstdc++ to link"; }

undef=$(nm -u "$lib" | grep -E ' U (uv_|.*spdlog|.*leveldb)' | sort -u || true)
[ -z "$undef" ] || bad "$lib references libuv/spdlog/leveldb: $(head -n 5 <<<"$undef" | tr '\n' ' ')"

server=$(nm -C --defined-only "$lib" |
    grep -E ' [TDBR] raftd::(raft|wal|daemon)::| [TWDBRV] raftd::ipc::(Server|Conn|uv::)' |
    sort -u || true)
[ -z "$server" ] || bad "$lib defines server/raft code: $(head -n 5 <<<"$server" | tr '\n' ' ')"

[ $fail -eq 0 ] && echo "$lib: client and codec only ($(ar t "$lib" | tr '\n' ' '))"
exit $fail
