#!/usr/bin/env bash
# The broker's TLS server certificate, signed by the fleet CA, with every name devices use to reach
# the broker as a subjectAltName (clients check SANs, not the CN).
set -euo pipefail
PROG=$(basename "$0")
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
usage: $PROG [--ca DIR] [--out DIR] [--days N] HOSTNAME...

Writes DIR/broker.key (0600), DIR/broker.crt (signed by the fleet CA) and DIR/ca.crt. Each
HOSTNAME becomes a subjectAltName: DNS names (broker.example.com, *.fleet.example.com) as DNS,
IPv4/IPv6 addresses (192.0.2.10, 2001:db8::1) as IP. The first one is also the CN.
  --ca DIR     the fleet CA made by fleet-ca.sh (default: ./fleet-ca)
  --out DIR    where to write (default: ./broker); created 0700 if missing
  --days N     certificate validity (default: 825)

Idempotent: a valid certificate for the same names is kept; a certificate for other names is
refused rather than replaced (delete broker.crt to reissue with the existing key).
Install on the broker as /etc/mosquitto/berth/{broker.key,broker.crt,ca.crt} (scripts/mosquitto/berth.conf).
USAGE
}

ca_dir=fleet-ca out=broker days=825
names=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --ca) ca_dir=$(opt_value "$@"); shift 2 ;;
    --out) out=$(opt_value "$@"); shift 2 ;;
    --days) days=$(opt_value "$@"); positive_int --days "$days"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; names+=("$@"); break ;;
    -*) usage_error "unknown option '$1'" ;;
    *) names+=("$1"); shift ;;
  esac
done
[[ ${#names[@]} -gt 0 ]] || usage_error "no host names given"

sans=()
for n in "${names[@]}"; do
  if [[ $n =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ || ($n == *:* && $n =~ ^[0-9A-Fa-f:.]+$) ]]; then
    sans+=("IP:$n")
  elif [[ $n =~ ^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$ && ${#n} -le 253 ]]; then
    sans+=("DNS:$n")
  else
    die "invalid host name or address '$n'"
  fi
done
san_list=$(IFS=,; printf '%s' "${sans[*]}")

need openssl
require_ca "$ca_dir"
mkdir -p "$out"
key="$out/broker.key" crt="$out/broker.crt"

# The SANs of a certificate in openssl's text form ("DNS:a, IP Address:127.0.0.1"), sorted, one a line.
cert_sans() {
  openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr ',' '\n' |
    sed -e 's/^ *//' -e 's/^IP Address:/IP:/' | sort -u
}

if [[ -f $crt ]]; then
  # openssl prints IPv6 SANs expanded; compare its text of a scratch cert with the same names.
  mktmp "$out/want"
  want_crt=$REPLY
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj "/CN=x" -days 1 \
    -addext "subjectAltName=$san_list" -out "$want_crt" 2>/dev/null ||
    die "openssl rejected the names: $san_list"
  if [[ $(cert_sans "$crt") == "$(cert_sans "$want_crt")" ]] && signed_by_ca "$crt" && key_matches_cert "$key" "$crt"; then
    info "kept $crt (valid, signed by $CA_CRT, names: $san_list)"
  else
    die "$crt exists but is not a current certificate from $CA_CRT for exactly $san_list with the key $key; delete it to reissue"
  fi
else
  [[ -f $key ]] || new_ec_key "$key"
  sign_cert "$key" "$crt" "${names[0]}" "$days" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san_list
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"
  info "wrote $key and $crt (names: $san_list)"
fi
copy_ca_cert "$out"
