#!/usr/bin/env bash
# Makes the fleet CA: an EC P-256 key and a self-signed CA certificate. The CA signs the broker's
# server certificate (broker-cert.sh) and, for mTLS, each device's client certificate
# (device-credentials.sh --cert). Keep ca.key offline; devices and the broker only need ca.crt.
set -euo pipefail
PROG=$(basename "$0")
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
usage: $PROG [--ca DIR] [--days N] [--name NAME]

Writes DIR/ca.key (0600) and DIR/ca.crt for a new fleet CA.
  --ca DIR     where to put the CA (default: ./fleet-ca); created 0700 if missing
  --days N     validity of the CA certificate (default: 3650)
  --name NAME  the CA's common name (default: berth fleet CA)

Refuses to overwrite an existing CA: every certificate it signed would stop being trusted.
Running it again on a complete CA only reports it.
USAGE
}

ca_dir=fleet-ca days=3650 name="berth fleet CA"
while [[ $# -gt 0 ]]; do
  case $1 in
    --ca) ca_dir=$(opt_value "$@"); shift 2 ;;
    --days) days=$(opt_value "$@"); positive_int --days "$days"; shift 2 ;;
    --name) name=$(opt_value "$@"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unexpected argument '$1'" ;;
  esac
done
[[ $name =~ ^[A-Za-z0-9][A-Za-z0-9\ ._:-]{0,63}$ ]] || usage_error "--name: use letters, digits, spaces and ._:- (got '$name')"
need openssl

key="$ca_dir/ca.key" crt="$ca_dir/ca.crt"
if [[ -e $key || -e $crt ]]; then
  if key_matches_cert "$key" "$crt"; then
    info "fleet CA already exists in $ca_dir, not overwriting it ($(openssl x509 -in "$crt" -noout -subject -enddate | paste -sd " " -))"
    exit 0
  fi
  die "$ca_dir holds an incomplete or mismatched CA (ca.key / ca.crt); refusing to overwrite it. Move it away first if it is really unused."
fi

mkdir -p "$ca_dir"
new_ec_key "$key"
mktmp "$crt"
openssl req -x509 -new -key "$key" -subj "/CN=$name" -days "$days" -sha256 \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash" \
  -out "$REPLY" 2>/dev/null || die "openssl could not make the CA certificate"
chmod 0600 "$REPLY"
mv -f "$REPLY" "$crt"
info "wrote $key (keep it offline) and $crt (install on the broker and on every device)"
