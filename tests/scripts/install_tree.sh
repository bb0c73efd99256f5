#!/usr/bin/env bash
# `make install DESTDIR=...` lays out the documented tree, rewrites the units' paths for
# another PREFIX, never overwrites an existing configuration; `make uninstall` removes every
# file it installed and keeps a configuration the operator edited.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/release/bin/raftd ] || { echo "no build/release/bin/raftd; build first"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
mk() { env -u MAKEFLAGS -u MFLAGS make -s --no-print-directory "$@" >"$work/make.log" 2>&1 ||
    { cat "$work/make.log"; echo "FAIL: make $*"; exit 1; }; }

# ---- default PREFIX=/usr -----------------------------------------------------------------
d=$work/dest
mk install DESTDIR="$d"
expect="etc/raftd/raftd.toml usr/bin/raftd usr/lib/systemd/system/raftd.service
usr/lib/systemd/system/raftd@.service usr/lib/systemd/system/raftd.socket usr/lib/systemd/system/raftd@.socket
usr/lib/sysusers.d/raftd.conf usr/lib/tmpfiles.d/raftd.conf usr/share/doc/raftd/README.md
usr/share/doc/raftd/raftd.toml usr/share/doc/raftd/protocol.md usr/share/doc/raftd/configuration.md
usr/share/doc/raftd/raftd-alerts.yml usr/share/doc/raftd/metrics.md"
[ -x build/release/bin/raftctl ] && expect+=" usr/bin/raftctl"
[ -d clients/cpp/raftd ] && expect+=" usr/include/raftd/client.h usr/lib/libraftd-client.a"
[ -f clients/cpp/raftd/apply_loop.h ] && expect+=" usr/include/raftd/apply_loop.h"
[ -f docs/operations.md ] && expect+=" usr/share/doc/raftd/operations.md"
for f in $expect; do [ -f "$d/$f" ] || bad "make install did not create /$f"; done
[ -x "$d/usr/bin/raftd" ] || bad "/usr/bin/raftd is not executable"
cmp -s "$d/usr/lib/systemd/system/raftd.service" systemd/raftd.service ||
    bad "raftd.service changed although PREFIX=/usr"
cmp -s "$d/etc/raftd/raftd.toml" systemd/raftd.toml || bad "installed config differs from the example"
"$d/usr/bin/raftd" --config "$d/etc/raftd/raftd.toml" --check-config >/dev/null ||
    bad "installed raftd rejects the installed config"
find "$d" -type f | sed "s#^$d##" | sort > "$work/installed"

# The installed C++ client is usable on its own: a program including <raftd/client.h> from
# the installed include directory links against the installed archive alone (and so does
# one on the apply loop, <raftd/apply_loop.h>, when the tree has it).
if [ -f "$d/usr/include/raftd/client.h" ]; then
    if [ -f "$d/usr/include/raftd/apply_loop.h" ]; then
        cat > "$work/app.cpp" <<'CPP'
#include <raftd/apply_loop.h>
#include <cstdio>
int main(int argc, char** argv) {
    raftd::client::ApplyCallbacks cb;
    cb.apply = [](const raftd::client::Entry&) {};
    auto c = raftd::client::ApplyLoop::open(argc > 1 ? argv[1] : "/nonexistent/raftd.sock", cb);
    std::puts(c ? "connected" : "no raftd");
    return 0;
}
CPP
    else
        cat > "$work/app.cpp" <<'CPP'
#include <raftd/client.h>
#include <cstdio>
int main(int argc, char** argv) {
    auto c = raftd::client::Client::connect(argc > 1 ? argv[1] : "/nonexistent/raftd.sock");
    std::puts(c ? "connected" : "no raftd");
    return 0;
}
CPP
    fi
    g++ -std=c++20 -I"$d/usr/include" "$work/app.cpp" "$d/usr/lib/libraftd-client.a" -o "$work/app" \
        >"$work/cc.log" 2>&1 || { cat "$work/cc.log"; bad "a program cannot build against the installed client"; }
    [ ! -x "$work/app" ] || [ "$("$work/app")" = "no raftd" ] || bad "the client program misbehaved"
fi

# ---- an existing configuration survives install, and an edited one survives uninstall ----
echo "# edited by the operator" >> "$d/etc/raftd/raftd.toml"
cp "$d/etc/raftd/raftd.toml" "$work/edited.toml"
mk install DESTDIR="$d"
cmp -s "$d/etc/raftd/raftd.toml" "$work/edited.toml" || bad "make install overwrote an edited config"
mk uninstall DESTDIR="$d"
left=$(find "$d" -type f | sed "s#^$d##")
[ "$left" = /etc/raftd/raftd.toml ] || bad "after uninstall with an edited config, left: $left"

# ---- uninstall of an untouched install leaves no file ------------------------------------
rm -f "$d/etc/raftd/raftd.toml"
mk install DESTDIR="$d"
mk uninstall DESTDIR="$d"
left=$(find "$d" -type f)
[ -z "$left" ] || bad "uninstall left files: $left"
[ ! -e "$d/etc/raftd" ] && [ ! -e "$d/usr/share/doc/raftd" ] || bad "uninstall left raftd directories"

# ---- another PREFIX: units start the binary where it was installed -----------------------
d2=$work/local
mk install DESTDIR="$d2" PREFIX=/usr/local
[ -x "$d2/usr/local/bin/raftd" ] || bad "PREFIX=/usr/local: no /usr/local/bin/raftd"
grep -qx 'ExecStart=/usr/local/bin/raftd --config /etc/raftd/raftd.toml' \
    "$d2/usr/local/lib/systemd/system/raftd.service" || bad "PREFIX=/usr/local: ExecStart not rewritten"
[ -f "$d2/etc/raftd/raftd.toml" ] || bad "PREFIX=/usr/local: config not in /etc/raftd"
mk uninstall DESTDIR="$d2" PREFIX=/usr/local
[ -z "$(find "$d2" -type f)" ] || bad "PREFIX=/usr/local: uninstall left files"

[ $fail -eq 0 ] && { echo "install tree:"; cat "$work/installed"; }
exit $fail
