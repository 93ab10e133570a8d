#!/usr/bin/env bash
# Makes a CA and one certificate per node, for `dynamo-node --tls-cert/--tls-key/--tls-ca`.
#
#   scripts/make-cluster-certs.sh DIR NAME=ADDRESS[,ADDRESS...] ...
#
# DIR/ca.pem is the CA every node trusts (--tls-ca); DIR/NAME.pem and DIR/NAME.key are a
# node's certificate and key. Each ADDRESS (an IP or a host name) is one the node is
# reached at: its --advertise address, and any name clients use. The CA key (DIR/ca.key)
# is made once and reused, so more nodes can be added later; keep it off the nodes.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 DIR NAME=ADDRESS[,ADDRESS...] ..." >&2
  exit 2
fi
command -v openssl >/dev/null || { echo "$0: needs openssl (apt-get install openssl)" >&2; exit 1; }
dir=$1
shift
mkdir -p "$dir"
cd "$dir"
umask 077
if [ ! -f ca.key ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
    -days 3650 -subj "/CN=dynamo cluster CA" 2>/dev/null
fi
for spec in "$@"; do
  name=${spec%%=*}
  addresses=${spec#*=}
  san=""
  IFS=, read -ra list <<<"$addresses"
  for address in "${list[@]}"; do
    if [[ $address =~ ^[0-9.]+$ || $address == *:* ]]; then san+="IP:$address,"; else san+="DNS:$address,"; fi
  done
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" -out "$name.csr" \
    -subj "/CN=$name" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "${san%,}" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" -days 825 \
    -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
  echo "$dir/$name.pem, $dir/$name.key for ${addresses}"
done
