#!/usr/bin/env bash
# Demo and test certificates for raftd's peer TLS (docs/operations.md, section 11), made with
# the openssl command line. Not a production CA: the CA key sits unencrypted next to the
# certificates.
#
#   tools/peer-certs.sh ca DIR                    DIR/ca.pem, DIR/ca.key (kept when present)
#   tools/peer-certs.sh node DIR CLUSTER ID [DAYS] [NAME]
#                                                 DIR/NAME.pem, DIR/NAME.key (NAME: node-ID), signed
#                                                 by DIR's CA, SAN URI:raftd://CLUSTER/node/ID
#   tools/peer-certs.sh revoke DIR NAME           adds DIR/NAME.pem to DIR/crl.pem
#   tools/peer-certs.sh crl DIR                   (re)writes DIR/crl.pem from the revocations so far
#
# Keys are ECDSA P-256. Validity starts now (run under faketime to move it) and lasts DAYS
# (default 365).
set -euo pipefail

die() { echo "peer-certs.sh: $*" >&2; exit 2; }

ca_conf() {  # the minimal `openssl ca` set-up that revocation and CRLs need
    local dir=$1
    [ -f "$dir/index.txt" ] || : >"$dir/index.txt"
    [ -f "$dir/crlnumber" ] || echo 01 >"$dir/crlnumber"
    cat >"$dir/ca.cnf" <<CNF
[ca]
default_ca = raftd_ca
[raftd_ca]
database = $dir/index.txt
crlnumber = $dir/crlnumber
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_crl_days = 3650
CNF
}

cmd=${1:-}
case "$cmd" in
ca)
    dir=${2:?DIR}
    mkdir -p "$dir"
    if [ ! -f "$dir/ca.pem" ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$dir/ca.key" -out "$dir/ca.pem" -days "${3:-3650}" \
            -subj "/CN=raftd peer CA $(basename "$dir")" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        chmod 600 "$dir/ca.key"
    fi
    ;;
node)
    dir=${2:?DIR} cluster=${3:?CLUSTER} id=${4:?ID} days=${5:-365} name=${6:-node-$4}
    [ -f "$dir/ca.pem" ] || die "$dir/ca.pem missing: run '$0 ca $dir' first"
    ext=$(mktemp)
    trap 'rm -f "$ext" "$dir/$name.csr"' EXIT
    printf '%s\n' "subjectAltName=URI:raftd://$cluster/node/$id" \
        "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth,clientAuth" >"$ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=raftd $cluster node $id" 2>/dev/null
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days "$days" -sha256 -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null
    chmod 600 "$dir/$name.key"
    ;;
revoke)
    dir=${2:?DIR} name=${3:?NAME}
    ca_conf "$dir"
    openssl ca -config "$dir/ca.cnf" -revoke "$dir/$name.pem" 2>/dev/null
    openssl ca -config "$dir/ca.cnf" -gencrl -out "$dir/crl.pem" 2>/dev/null
    ;;
crl)
    dir=${2:?DIR}
    ca_conf "$dir"
    openssl ca -config "$dir/ca.cnf" -gencrl -out "$dir/crl.pem" 2>/dev/null
    ;;
*)
    sed -n '2,15p' "$0" >&2
    exit 2
    ;;
esac
