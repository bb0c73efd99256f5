#!/usr/bin/env bash
# The systemd files in systemd/ as systemd itself reads them:
#  - `systemd-analyze verify` accepts each unit (with ExecStart pointing at the built raftd,
#    since verify checks that the program exists) and prints nothing;
#  - raftd.service's `systemd-analyze security` exposure stays at or below 2.0;
#  - the directives issue 7 requires are present, with the values it names;
#  - each unit's ExecStart command line is one the built raftd accepts (--check-config);
#  - raftd.sysusers and raftd.tmpfiles, installed into a scratch root, create the raftd
#    user and the directories, owned as documented.
set -euo pipefail
cd "$(dirname "$0")/../.."
raftd=$(pwd)/${RAFTD_BUILD:-build/release}/bin/raftd
[ -x "$raftd" ] || { echo "no $raftd; build first"; exit 1; }
for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
    command -v $tool >/dev/null || { echo "$tool missing: run make deps (package systemd)"; exit 77; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# ---- verify ------------------------------------------------------------------------------
units="raftd.service raftd@.service raftd.socket raftd@.socket"
mkdir "$work/units"
for u in $units; do
    sed "s#/usr/bin/raftd#$raftd#g" "systemd/$u" > "$work/units/$u"
done
for u in $units; do
    # verify resolves Service= of the socket unit in the same directory.
    if ! out=$(cd "$work/units" && systemd-analyze verify --man=no "./$u" 2>&1) || [ -n "$out" ]; then
        bad "systemd-analyze verify $u:"; echo "$out"
    fi
done

# ---- security exposure -------------------------------------------------------------------
for u in raftd.service raftd@.service; do
    out=$(cd "$work/units" && systemd-analyze security --offline=yes --no-pager "./$u" 2>&1) || true
    level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
    if [ -z "$level" ]; then bad "no exposure level for $u:"; echo "$out" | tail -n 5
    elif ! awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
        bad "$u exposure $level > 2.0:"; grep '✗' <<<"$out" || true
    else echo "ok: $u exposure $level"
    fi
done

# ---- required directives -----------------------------------------------------------------
has() {  # $1 = unit, $2 = exact line
    grep -qxF -- "$2" "systemd/$1" || bad "$1 lacks the line: $2"
}
for u in raftd.service raftd@.service; do
    for line in Type=notify Restart=on-failure User=raftd Group=raftd RuntimeDirectory=raftd \
                NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
                PrivateDevices=yes 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
                SystemCallFilter=@system-service CapabilityBoundingSet= \
                'ExecReload=/bin/kill -HUP $MAINPID'; do
        has $u "$line"
    done
    for key in WatchdogSec LimitNOFILE TimeoutStopSec; do
        grep -qE "^$key=[0-9]" "systemd/$u" || bad "$u lacks $key=<value>"
    done
done
has raftd.service 'ExecStart=/usr/bin/raftd --config /etc/raftd/raftd.toml'
has raftd.service StateDirectory=raftd
has raftd@.service 'ExecStart=/usr/bin/raftd --config /etc/raftd/%i.toml --socket /run/raftd/%i.sock --data-dir /var/lib/raftd/%i'
has raftd@.service StateDirectory=raftd/%i
has raftd.socket ListenStream=/run/raftd/raftd.sock
has raftd.socket Service=raftd.service
has raftd@.socket 'ListenStream=/run/raftd/%i.sock'
# The example config points raftd.service's daemon at the directories systemd creates.
grep -qx 'socket = "/run/raftd/raftd.sock"' systemd/raftd.toml || bad "raftd.toml socket is not /run/raftd/raftd.sock"
grep -qx 'data_dir = "/var/lib/raftd"' systemd/raftd.toml || bad "raftd.toml data_dir is not /var/lib/raftd"

# ---- ExecStart lines parse ---------------------------------------------------------------
# The config file named by each ExecStart is replaced by the example; every flag is kept.
for u in raftd.service raftd@.service; do
    cmd=$(sed -n 's/^ExecStart=//p' "systemd/$u")
    cmd=${cmd//%i/test}
    args=()
    read -r -a args <<<"$cmd"
    for i in "${!args[@]}"; do
        case ${args[$i]} in /etc/raftd/*.toml) args[$i]=systemd/raftd.toml ;; esac
    done
    if ! out=$("$raftd" "${args[@]:1}" --check-config 2>&1); then
        bad "raftd refuses $u's ExecStart: $out"
    fi
done

# ---- sysusers and tmpfiles in a scratch root ---------------------------------------------
root=$work/root
mkdir -p "$root/etc" "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d"
cp systemd/raftd.sysusers "$root/usr/lib/sysusers.d/raftd.conf"
cp systemd/raftd.tmpfiles "$root/usr/lib/tmpfiles.d/raftd.conf"
systemd-sysusers --root="$root" raftd.conf || bad "systemd-sysusers failed"
pw=$(grep '^raftd:' "$root/etc/passwd" || true)
gr=$(grep '^raftd:' "$root/etc/group" || true)
[ -n "$pw" ] || bad "no raftd user in the scratch passwd"
[ -n "$gr" ] || bad "no raftd group in the scratch group file"
uid=$(cut -d: -f3 <<<"$pw") gid=$(cut -d: -f3 <<<"$gr")
[ "$(cut -d: -f6 <<<"$pw")" = /var/lib/raftd ] || bad "raftd's home is not /var/lib/raftd: $pw"
[ "${uid:-0}" -lt 1000 ] && [ "${uid:-0}" -gt 0 ] || bad "raftd is not a system user: $pw"
systemd-tmpfiles --create --root="$root" raftd.conf || bad "systemd-tmpfiles --create failed"
[ "$(stat -c '%u:%g %a' "$root/var/lib/raftd" 2>&1)" = "$uid:$gid 750" ] ||
    bad "/var/lib/raftd is $(stat -c '%u:%g %a' "$root/var/lib/raftd" 2>&1), want $uid:$gid 750"
[ "$(stat -c '%u:%g %a' "$root/etc/raftd" 2>&1)" = "0:0 755" ] ||
    bad "/etc/raftd is $(stat -c '%u:%g %a' "$root/etc/raftd" 2>&1), want 0:0 755"

[ $fail -eq 0 ] && echo "systemd units: all checks passed"
exit $fail
