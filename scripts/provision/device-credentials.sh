#!/usr/bin/env bash
# Per-device broker credentials for a berth fleet. The device id becomes the broker user name, which
# scripts/mosquitto/acl maps to the device's own subtree berth/v1/<id>/#.
set -euo pipefail
PROG=$(basename "$0")
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
usage: $PROG [--password | --cert] [--out DIR] [--ca DIR] [--passwd-file FILE] [--days N] [--operator]
       [--ids FILE.csv] [--acl FILE] [ID...]

Makes broker credentials for each device ID (1-128 of [A-Za-z0-9_.:-], starting with a letter or
digit: the rule of isValidDeviceId in src/protocol/topics.ts). Ids with ':' need --cert: a
mosquitto password file cannot hold them.

  --password (default)  DIR/ID.password: a random password for the device, and its hashed
                        (mosquitto_passwd) line added to the password file
  --cert                DIR/ID.key + DIR/ID.crt: a client key and a certificate signed by the
                        fleet CA with CN=ID (mTLS: use_identity_as_username maps it to the ACL's
                        %u), plus DIR/ca.crt
  --out DIR             where to write (default: ./devices); created 0700 if missing
  --ca DIR              the fleet CA made by fleet-ca.sh (default: ./fleet-ca; --cert only)
  --passwd-file FILE    mosquitto password file to add to (default: DIR/passwd; --password only)
  --days N              client certificate validity (default: 825; --cert only)
  --ids FILE.csv        also the device ids in the first column of a CSV file (blank lines, '#'
                        comments and a header row id/device/deviceId/device_id are skipped): the
                        same file berth flash --ids takes
  --acl FILE            afterwards, write a mosquitto ACL granting each device with credentials in
                        DIR (ID.password or ID.crt) its own subtree berth/v1/ID/# (read-only on
                        desired and cmd/<id>), and the operator every device. Unlike the pattern
                        lines of scripts/mosquitto/acl it lists
                        devices by name: delete a device's lines to cut it off even while its
                        certificate is still valid. Install as /etc/mosquitto/berth/acl.
  --operator            also make credentials for the fleet operator user "$OPERATOR_USER", which
                        may read and write every device (scripts/mosquitto/acl). That name is
                        refused as a device ID.

Files are 0600. Idempotent: existing credentials are kept (a password already in the password file
is not re-hashed, a valid certificate is not reissued); delete a device's files to rotate them.
USAGE
}

mode=password out=devices ca_dir=fleet-ca passwd_file="" days=825 operator=0 acl_file=""
ids=()

# Device ids from the first column of a CSV file (berth flash --ids reads the same format).
read_ids_csv() {
  local file=$1 line cell first=1
  [[ -r $file ]] || die "cannot read the device list $file"
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ -z ${line//[[:space:]]/} || $line =~ ^[[:space:]]*# ]] && continue
    cell=${line%%,*}
    cell=${cell#"${cell%%[![:space:]]*}"}
    cell=${cell%"${cell##*[![:space:]]}"}
    cell=${cell#\"}
    cell=${cell%\"}
    if ((first)); then
      first=0
      shopt -s nocasematch
      if [[ $cell =~ ^(id|device|deviceid|device_id|device-id)$ ]]; then shopt -u nocasematch; continue; fi
      shopt -u nocasematch
    fi
    ids+=("$cell")
  done <"$file"
}
while [[ $# -gt 0 ]]; do
  case $1 in
    --password) mode=password; shift ;;
    --cert) mode=cert; shift ;;
    --out) out=$(opt_value "$@"); shift 2 ;;
    --ca) ca_dir=$(opt_value "$@"); shift 2 ;;
    --passwd-file) passwd_file=$(opt_value "$@"); shift 2 ;;
    --days) days=$(opt_value "$@"); positive_int --days "$days"; shift 2 ;;
    --operator) operator=1; shift ;;
    --ids) read_ids_csv "$(opt_value "$@")"; shift 2 ;;
    --acl) acl_file=$(opt_value "$@"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; ids+=("$@"); break ;;
    -*) usage_error "unknown option '$1'" ;;
    *) ids+=("$1"); shift ;;
  esac
done

# Validate everything before writing anything: a typo in the fifth id should not leave four done.
users=()
for id in ${ids[@]+"${ids[@]}"}; do
  valid_device_id "$id" || die "invalid device id '$id': use 1-128 of [A-Za-z0-9_.:-], starting with a letter or digit"
  # mosquitto's password file is "user:hash" lines; mosquitto_passwd refuses such a user name.
  [[ $mode != password || $id != *:* ]] || die "device id '$id' contains ':', which a mosquitto password file cannot hold as a user name; give it client certificates (--cert, mTLS) instead"
  [[ $id != "$OPERATOR_USER" ]] || die "'$id' is the fleet operator's user name (scripts/mosquitto/acl), which may access every device; use --operator to make the operator's credentials"
  users+=("$id")
done
if ((operator)); then users+=("$OPERATOR_USER"); fi
[[ ${#users[@]} -gt 0 || -n $acl_file ]] || usage_error "no device ids given"

need openssl
mkdir -p "$out"

password_credentials() {
  local user=$1 pwfile="$out/$1.password" password
  if [[ -f $pwfile ]]; then
    password=$(<"$pwfile")
    [[ -n $password ]] || die "$pwfile is empty; delete it to make a new password"
  else
    # 24 random bytes, base64 without '/' and '+': 32 characters, no ':' (the password file's separator).
    password=$(openssl rand -base64 24 | tr '+/' '-_')
    mktmp "$pwfile"
    printf '%s\n' "$password" >"$REPLY"
    mv -f "$REPLY" "$pwfile"
  fi
  if cut -d: -f1 "$passwd_file" | grep -qxF -- "$user"; then
    info "$user: kept $pwfile (already in $passwd_file)"
  else
    # -b takes the password as an argument (briefly visible in ps to this machine's root and the
    # user running this script); it is the batch mode mosquitto_passwd offers.
    mosquitto_passwd -b "$passwd_file" "$user" "$password" || die "mosquitto_passwd could not add $user to $passwd_file"
    info "$user: wrote $pwfile and added $user to $passwd_file"
  fi
}

cert_credentials() {
  local user=$1 key="$out/$1.key" crt="$out/$1.crt"
  if [[ -f $crt ]]; then
    if signed_by_ca "$crt" && [[ $(cert_cn "$crt") == "$user" ]] && key_matches_cert "$key" "$crt"; then
      info "$user: kept $key and $crt (valid, signed by $CA_CRT)"
      return
    fi
    die "$crt exists but is not a current certificate for CN=$user from $CA_CRT with the key $key; delete both to reissue"
  fi
  [[ -f $key ]] || new_ec_key "$key"
  # clientAuth only: a device certificate cannot pose as a broker.
  sign_cert "$key" "$crt" "$user" "$days" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"
  info "$user: wrote $key and $crt (CN=$user)"
}

if [[ $mode == password ]]; then
  need mosquitto_passwd
  passwd_file=${passwd_file:-$out/passwd}
  if [[ ! -e $passwd_file ]]; then
    mkdir -p "$(dirname "$passwd_file")"
    (umask 077 && : >"$passwd_file")
  fi
  for user in ${users[@]+"${users[@]}"}; do password_credentials "$user"; done
elif [[ ${#users[@]} -gt 0 ]]; then
  require_ca "$ca_dir"
  for user in "${users[@]}"; do cert_credentials "$user"; done
  copy_ca_cert "$out"
fi

# What a device publishes (src/protocol/topics.ts): the only topics it may write.
DEVICE_WRITES=(reported status progress events telemetry 'cmd/+/result')

# The ACL lists every device that has credentials in DIR, whichever run made them.
write_acl() {
  local f id n=0 body=""
  for f in "$out"/*.password "$out"/*.crt; do
    [[ -f $f ]] || continue
    id=$(basename "$f")
    id=${id%.*}
    [[ $id != ca && $id != "$OPERATOR_USER" ]] && valid_device_id "$id" || continue
    [[ $body == *$'\n'"user $id"$'\n'* ]] && continue
    body+=$'\n'"user $id"$'\n'"topic read berth/v1/$id/#"$'\n'
    # Read-only on desired and cmd/<id>: a device credential cannot deploy (scripts/mosquitto/acl).
    for t in "${DEVICE_WRITES[@]}"; do body+="topic write berth/v1/$id/$t"$'\n'; done
    n=$((n + 1))
  done
  mkdir -p "$(dirname "$acl_file")"
  mktmp "$acl_file"
  {
    printf '# mosquitto ACL for the berth fleet in %s (written by %s --acl).\n' "$out" "$PROG"
    printf '# Each provisioned device may read only berth/v1/<its id>/# and write only what the agent publishes\n'
    printf '# there (never desired or cmd/<id>); a device not listed gets\n'
    printf '# nothing, even with a valid certificate from the fleet CA. See scripts/mosquitto/acl for why.\n'
    printf '%s' "$body"
    printf '\n# The fleet operator: every device.\nuser %s\ntopic readwrite berth/v1/#\n' "$OPERATOR_USER"
  } >"$REPLY"
  chmod 0644 "$REPLY"
  mv -f "$REPLY" "$acl_file"
  info "wrote $acl_file ($n devices and the operator)"
}
if [[ -n $acl_file ]]; then write_acl; fi
