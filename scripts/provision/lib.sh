# Shared helpers for scripts/provision/*.sh (sourced, not run). Callers set PROG and define usage().
# shellcheck shell=bash

# Byte-wise character classes: in some locales [A-Za-z] also matches letters such as 'ä'.
export LC_ALL=C

# Everything written here is a secret or sits next to one: files 0600, dirs 0700.
umask 077

# The user name in scripts/mosquitto/acl that may read and write every device's subtree. It is a
# valid device id too, so device-credentials.sh refuses it unless asked for --operator explicitly:
# a device provisioned under this name would get the whole fleet.
OPERATOR_USER=berth-fleet

# Same rule as isValidDeviceId in src/protocol/topics.ts: device ids are topic levels and
# broker user names, so no wildcards (+ #), no '/' and nothing that needs quoting.
DEVICE_ID_RE='^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'

die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}

usage_error() {
  printf '%s: %s\n\n' "$PROG" "$*" >&2
  usage >&2
  exit 2
}

info() { printf '%s: %s\n' "$PROG" "$*"; }

# Temp files are made next to their destination (same file system: mv is atomic) and removed on
# any exit, so an interrupted or failed run never leaves a half-written key or cert behind.
TMPFILES=()
trap 'rm -f "${TMPFILES[@]}"' EXIT
mktmp() {
  REPLY=$(mktemp "$1.tmp.XXXXXX") || die "cannot create a file next to $1"
  TMPFILES+=("$REPLY")
}

need() {
  local cmd
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found; install it (Debian: apt-get install openssl mosquitto-clients)"
  done
}

valid_device_id() { [[ $1 =~ $DEVICE_ID_RE ]]; }

# Value of an option that takes an argument: opt_value NAME "$@" (checks one is there).
opt_value() {
  [[ $# -ge 2 && -n $2 && $2 != --* ]] || usage_error "$1 needs a value"
  printf '%s' "$2"
}

positive_int() {
  [[ $2 =~ ^[1-9][0-9]{0,5}$ ]] || usage_error "$1 must be a positive number of days, got '$2'"
}

# The fleet CA's files in DIR, or a clear error when fleet-ca.sh has not made them.
require_ca() {
  CA_KEY="$1/ca.key"
  CA_CRT="$1/ca.crt"
  [[ -f $CA_KEY && -f $CA_CRT ]] || die "no fleet CA in $1 (expected ca.key and ca.crt); make one with scripts/provision/fleet-ca.sh --ca $1"
}

# Issues CERT for the existing KEY, signed by the fleet CA, with the x509v3 extension lines EXT.
sign_cert() {
  local key=$1 crt=$2 cn=$3 days=$4 ext=$5 csr tmp
  mktmp "$crt.csr"
  csr=$REPLY
  mktmp "$crt"
  tmp=$REPLY
  openssl req -new -key "$key" -subj "/CN=$cn" -out "$csr" 2>/dev/null || die "openssl could not make a request for CN=$cn"
  # A random 128-bit serial instead of -CAcreateserial: no serial file to keep next to the CA.
  openssl x509 -req -in "$csr" -CA "$CA_CRT" -CAkey "$CA_KEY" -set_serial "0x$(openssl rand -hex 16)" \
    -days "$days" -sha256 -extfile <(printf '%s\n' "$ext") -out "$tmp" 2>/dev/null ||
    die "openssl could not sign the certificate for CN=$cn with $CA_CRT"
  chmod 0600 "$tmp"
  mv -f "$tmp" "$crt"
}

# EC P-256: small, fast to generate and to handshake with on a Pi Zero, supported by mosquitto and Node.
new_ec_key() {
  mktmp "$1"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$REPLY" 2>/dev/null || die "openssl could not make a key"
  chmod 0600 "$REPLY"
  mv -f "$REPLY" "$1"
}

# True when CRT was signed by the fleet CA (and has not expired).
signed_by_ca() { openssl verify -CAfile "$CA_CRT" "$1" >/dev/null 2>&1; }

# True when KEY is the private key of CERT.
key_matches_cert() {
  [[ -f $1 && -f $2 ]] && [[ $(openssl pkey -in "$1" -pubout 2>/dev/null) == "$(openssl x509 -in "$2" -noout -pubkey 2>/dev/null)" ]]
}

# A copy of the fleet CA certificate in DIR (what devices and the broker verify the other side with).
copy_ca_cert() {
  cmp -s "$CA_CRT" "$1/ca.crt" && return 0
  mktmp "$1/ca.crt"
  cp "$CA_CRT" "$REPLY"
  mv -f "$REPLY" "$1/ca.crt"
}

cert_cn() { openssl x509 -in "$1" -noout -subject -nameopt multiline 2>/dev/null | sed -n 's/^ *commonName *= *//p'; }
