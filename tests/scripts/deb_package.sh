#!/usr/bin/env bash
# `make deb` builds raftd_<version>_<arch>.deb whose contents are the install tree, whose
# control fields name the package, version, architecture and the runtime libraries the
# binaries link, whose conffile is the configuration, and which apt accepts for
# installation here (simulated: nothing on this machine changes).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/release/bin/raftd ] || { echo "no build/release/bin/raftd; build first"; exit 1; }
command -v dpkg-deb >/dev/null || { echo "dpkg-deb missing (not a Debian system)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

env -u MAKEFLAGS -u MFLAGS make -s --no-print-directory deb DEB_DIR="$work" >"$work/make.log" 2>&1 ||
    { cat "$work/make.log"; echo "FAIL: make deb"; exit 1; }
version=$(build/release/bin/raftd --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
deb=$work/raftd_${version}_${arch}.deb
[ -f "$deb" ] || { ls -l "$work"; echo "FAIL: no $deb"; exit 1; }

contents=$(dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's#^\./#/#')
for f in /usr/bin/raftd /etc/raftd/raftd.toml /usr/lib/systemd/system/raftd.service \
         /usr/lib/systemd/system/raftd@.service /usr/lib/systemd/system/raftd.socket \
         /usr/lib/systemd/system/raftd@.socket \
         /usr/lib/sysusers.d/raftd.conf /usr/lib/tmpfiles.d/raftd.conf \
         /usr/share/doc/raftd/README.md /usr/share/doc/raftd/raftd.toml \
         /usr/share/doc/raftd/raftd-alerts.yml; do
    grep -qxF "$f" <<<"$contents" || bad "the package lacks $f"
done
[ -x build/release/bin/raftctl ] && { grep -qx /usr/bin/raftctl <<<"$contents" || bad "the package lacks /usr/bin/raftctl"; }
dpkg-deb --contents "$deb" | awk '{print $2}' | grep -vqx root/root && bad "files not owned by root"

field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = raftd ] || bad "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || bad "Version: $(field Version), want $version"
[ "$(field Architecture)" = "$arch" ] || bad "Architecture: $(field Architecture)"
[ -n "$(field Maintainer)" ] && [ -n "$(field Description)" ] || bad "Maintainer or Description empty"
depends=$(field Depends)
# Every library raftd links must be provided by a package in Depends.
for lib in $(objdump -p build/release/bin/raftd | awk '$1 == "NEEDED" {print $2}'); do
    path=$(ldd build/release/bin/raftd | awk -v l="$lib" '$1 == l {print $3}')
    pkg=$(dpkg-query -S "$path" 2>/dev/null || dpkg-query -S "$(readlink -f "$path")" 2>/dev/null || true)
    pkg=${pkg%%:*}
    [ -n "$pkg" ] && grep -q "\b$pkg (>= " <<<"$depends" || bad "Depends ($depends) lacks the owner of $lib ($pkg)"
done
echo "Depends: $depends"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/raftd/raftd.toml ||
    bad "conffiles does not list /etc/raftd/raftd.toml"
for s in postinst prerm postrm; do
    dpkg-deb --ctrl-tarfile "$deb" | tar -tv "./$s" | grep -q '^-rwx' || bad "no executable $s"
    dpkg-deb --ctrl-tarfile "$deb" | tar -xO "./$s" | sh -n || bad "$s does not parse"
done
# The maintainer scripts enable and start nothing.
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postinst | grep -E 'systemctl +(enable|start|restart)' &&
    bad "postinst enables or starts a unit"

# postinst configure creates the user and directories through sysusers/tmpfiles (stubbed
# here: they record their arguments) and prerm/postrm succeed for every action.
mkdir -p "$work/stub"
for t in systemd-sysusers systemd-tmpfiles systemctl; do
    printf '#!/bin/sh\necho "%s $*" >> "%s"\n' "$t" "$work/calls" > "$work/stub/$t"
    chmod +x "$work/stub/$t"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$work" ./postinst ./prerm ./postrm
PATH="$work/stub:$PATH" sh "$work/postinst" configure || bad "postinst configure failed"
grep -qx 'systemd-sysusers raftd.conf' "$work/calls" || bad "postinst did not run systemd-sysusers raftd.conf"
grep -qx 'systemd-tmpfiles --create raftd.conf' "$work/calls" || bad "postinst did not run systemd-tmpfiles"
for a in remove upgrade purge; do
    PATH="$work/stub:$PATH" sh "$work/prerm" $a || bad "prerm $a failed"
    PATH="$work/stub:$PATH" sh "$work/postrm" $a || bad "postrm $a failed"
done

# apt resolves the package and its Depends against this system without installing.
if out=$(timeout 120 apt-get install --simulate -q "$deb" 2>&1); then
    grep -q '^Inst raftd ' <<<"$out" || { bad "apt-get --simulate would not install raftd:"; echo "$out"; }
elif grep -qi 'lock' <<<"$out"; then
    echo "apt busy (lock held), skipping the apt simulation: $out"
else
    bad "apt-get install --simulate failed:"; echo "$out"
fi
[ $fail -eq 0 ] && echo "deb package: all checks passed"
exit $fail
