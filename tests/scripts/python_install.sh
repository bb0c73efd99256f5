#!/usr/bin/env bash
# The Python client installs both documented ways and works from outside the source tree:
# `make install-python` (Debian-style, DESTDIR) and `pip install clients/python` offline
# into a venv over Debian's site packages; uninstall-python removes what it installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
/usr/bin/python3 -c 'import msgpack' 2>/dev/null || { echo "python3-msgpack is not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
src=$(pwd)
probe='import raftd_client, raftd_client.aio, raftd_client.apply, raftd_client.session, sys
assert not raftd_client.__file__.startswith(sys.argv[1]), raftd_client.__file__
print(raftd_client.__file__)'

d=$work/dest
env -u MAKEFLAGS -u MFLAGS make -s --no-print-directory install-python DESTDIR="$d" >"$work/make.log" 2>&1 ||
    { cat "$work/make.log"; bad "make install-python"; }
pkg=$d/usr/lib/python3/dist-packages
[ -f "$pkg/raftd_client/__init__.py" ] || bad "no raftd_client under /usr/lib/python3/dist-packages"
[ -x "$d/usr/share/doc/raftd/examples/kv.py" ] || bad "kv.py example not installed executable"
(cd "$work" && PYTHONPATH=$pkg /usr/bin/python3 -c "$probe" "$src" >/dev/null) || bad "installed package does not import"
(cd "$work" && PYTHONPATH=$pkg /usr/bin/python3 "$d/usr/share/doc/raftd/examples/kv.py" --help >/dev/null) ||
    bad "installed kv.py does not run"
env -u MAKEFLAGS -u MFLAGS make -s --no-print-directory uninstall-python DESTDIR="$d" >/dev/null 2>&1 || bad "uninstall-python"
left=$(find "$d" -type f)
[ -z "$left" ] || bad "uninstall-python left: $left"

if /usr/bin/python3 -c 'import ensurepip, setuptools' 2>/dev/null; then
    /usr/bin/python3 -m venv --system-site-packages "$work/venv"
    # Offline: no index, and the build uses Debian's setuptools instead of fetching one.
    # From a copy: pip builds in the tree it is given (build/, *.egg-info).
    cp -r "$src/clients/python" "$work/pysrc"
    if "$work/venv/bin/pip" install -q --no-index --no-build-isolation "$work/pysrc" \
            >"$work/pip.log" 2>&1; then
        (cd "$work" && "$work/venv/bin/python" -c "$probe" "$src" >/dev/null) || bad "pip-installed package does not import"
    else
        cat "$work/pip.log"; bad "pip install clients/python (offline)"
    fi
else
    echo "skip pip: python3-venv or python3-setuptools missing (make deps installs them)"
fi
[ $fail = 0 ] && echo "python install: ok"
exit $fail
