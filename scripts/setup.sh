#!/usr/bin/env bash
# Idempotent installer for the Debian packages berth's tests need. Safe to run from any cwd, any
# number of times: when everything is already installed it does no apt work at all.
set -euo pipefail

# Packages the test suites rely on. Append here (one place) when a new issue needs more.
PACKAGES=(
  mosquitto          # MQTT broker: tests start their own instance on a free port
  mosquitto-clients  # mosquitto_pub/_sub/_passwd for debugging and password files
  docker-registry    # distribution 2.x registry: tests start their own instance on a free port
  crun               # OCI runtimes exercised by the runtime integration tests
  runc
  netavark           # bridge networking (src/network): bridges, veths, iptables NAT and port forwarding
  aardvark-dns       # … and container names in DNS on each network's gateway
  iptables           # netavark 1.4's firewall driver (iptables-nft on Debian)
  golang-github-containers-common  # /usr/share/containers/seccomp.json: podman's seccomp profile, berth's default filter
  tini               # berth run --init binds its static tini (tini-static) into the container as docker-init
  curl
  ca-certificates
  apache2-utils      # htpasswd -B: bcrypt password files for the registry's htpasswd auth
  openssl            # key + self-signed cert for the test token issuer (registry token auth)
  qemu-user-static   # runs arm64/arm images on x86 through binfmt_misc (foreign-platform tests)
  qemu-system-x86    # the cgroup v2 VM (npm run test:vm): TCG, no KVM needed
  qemu-system-arm    # the arm64 VM (npm run test:arm): qemu-system-aarch64 -M virt under TCG
  g++-aarch64-linux-gnu    # cross-builds berth's native parts (better-sqlite3, berth-monitor) for arm64
  g++-arm-linux-gnueabihf  # … and better-sqlite3 for the 32-bit (armv7l Node) userland in that VM
  g++-arm-linux-gnueabi    # … and the armv6 bundle's native parts (better-sqlite3, koffi, berth-monitor; src/flash/bundle-armv6.ts)
  cmake              # … koffi's build, for the armv6 bundle (no prebuilt soft-float koffi exists)
  device-tree-compiler  # dtc: the ARMv6 VM's device tree, adjusted for qemu's raspi0 (test/helpers/vm/raspi.ts)
  gcc                # native/berth-monitor, and the static syscall probe of test/integration/hardening.test.ts
  libc6-dev          # … whose static libc (libc.a) that probe links against
  make               # berth flash --build-bundle: node-gyp and native/ cross builds
  mtools             # berth flash: edits the FAT boot partition inside an image (mcopy -i img@@offset)
  e2fsprogs          # berth flash: debugfs edits the ext4 root partition in place, e2fsck -fn checks it
  xz-utils           # berth flash: .img.xz images
  fdisk              # sfdisk: the flash tests partition their Raspberry Pi OS-shaped image
  dosfstools         # mkfs.vfat: … and make its FAT32 boot partition
  chromium           # the dashboard's browser tests (test/integration/dashboard*.test.ts) drive it with playwright-core
  postgresql         # berth fleet serve --db postgres://: tests start a private cluster (initdb) on a free loopback port
)

# Packaged daemons whose system instances must not run: tests own their instances and the
# system ones would hold 1883/5000 (and keep state in /var/lib) behind our back.
SYSTEM_DAEMONS=(mosquitto docker-registry postgresql)

log() { printf 'setup: %s\n' "$*"; }

# Debian's busybox-static for each platform the image tests build (test/helpers/images/busybox.ts).
# The .debs are only fetched (apt-get download) into the gitignored cache, never installed: foreign
# packages have no business on the host and busybox-static conflicts with busybox. dpkg must know the
# foreign architectures for apt to have their package lists; each is added once.
TEST_IMAGE_ARCHES=(amd64 arm64 armhf armel)
DEB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.cache/test-images/debs"

fetch_busybox_debs() {
  local arch need=() pkgs=() added=0 native foreign
  for arch in "${TEST_IMAGE_ARCHES[@]}"; do
    compgen -G "$DEB_DIR/busybox-static_*_${arch}.deb" >/dev/null || need+=("$arch")
  done
  if ((${#need[@]} == 0)); then
    log "busybox-static .debs cached for ${TEST_IMAGE_ARCHES[*]}"
    return 0
  fi
  if ((EUID != 0)); then
    echo "setup: busybox-static .debs missing for: ${need[*]}; run as root (e.g. sudo bash $0)" >&2
    exit 1
  fi
  native="$(dpkg --print-architecture)"
  foreign=" $(dpkg --print-foreign-architectures | tr '\n' ' ') "
  for arch in "${need[@]}"; do
    pkgs+=("busybox-static:$arch")
    [[ "$arch" == "$native" || "$foreign" == *" $arch "* ]] && continue
    dpkg --add-architecture "$arch"
    added=1
    log "added dpkg architecture $arch"
  done
  mkdir -p "$DEB_DIR"
  # Sandbox user root: the _apt user could not write into the cache under the repo.
  download() { (cd "$DEB_DIR" && apt-get download -qq -o APT::Sandbox::User=root "${pkgs[@]}"); }
  # A just-added architecture has no package lists yet; otherwise the existing lists may do.
  if ((added)) || ! download 2>/dev/null; then
    log "apt-get update (package lists for ${need[*]})"
    # A flaky index elsewhere (e.g. a security mirror mid-sync) need not stop this: the download decides.
    apt-get update -qq || log "apt-get update reported errors; trying the download anyway"
    download
  fi
  for arch in "${need[@]}"; do
    compgen -G "$DEB_DIR/busybox-static_*_${arch}.deb" >/dev/null || { echo "setup: busybox-static:$arch not downloaded" >&2; exit 1; }
  done
  log "downloaded busybox-static for ${need[*]} into $DEB_DIR"
}

# The VM tests' guest (test/helpers/vm): Debian's kernel package for the arch, fetched with apt-get
# download and only partly extracted (vmlinuz and the few modules the initramfs loads), plus the static
# busybox its init runs. Kept in the gitignored cache; refetched only when the kernel is missing.
VM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.cache/vm"
# Paths under the kernel's lib/modules/<version>/kernel/: 9p and overlay for the shared-root VMs.
VM_MODULE_DIRS=(drivers/virtio net/9p fs/9p fs/netfs fs/fscache fs/overlayfs)
# arm64 also boots flashed disk images (test/arm/flashed-boot.test.ts): block, ext4 and network drivers,
# which a Pi's kernel loads from its own /lib/modules, but our Debian kernel's modules are not on that disk.
VM_BOOT_MODULES=(drivers/block/virtio_blk.ko fs/ext4 fs/jbd2 fs/mbcache.ko lib/crc16.ko crypto/crc32c_generic.ko
  drivers/net/virtio_net.ko drivers/net/net_failover.ko net/core/failover.ko)
# … and bridge networking in the arm64 VM (test/arm/network.test.ts): netavark's bridge and veth pairs, and
# what iptables-nft needs for its NAT, port-forwarding and isolation rules (nf_tables, the x_tables matches
# through nft_compat, conntrack, NAT). The VM's init loads them (test/helpers/vm/arm.ts): the guest has no
# /lib/modules and the kernel's own modprobe calls run in the initramfs, where there is none.
VM_NET_MODULES=(drivers/net/veth.ko net/bridge/bridge.ko net/802/stp.ko net/llc/llc.ko lib/libcrc32c.ko
  net/netfilter net/ipv4/netfilter net/ipv6/netfilter)

# armel: Debian's kernel for the Pi Zero, Zero W and Pi 1 (the rpi flavour, ARMv6), booted by qemu's raspi0 with
# -cpu arm1176 (test/arm/armv6.test.ts): its device trees, and the modules a flashed card's root needs
# (ext4), its USB network (qemu's usb-net on the SoC's dwc2: cdc_ether) and berth's overlays.
VM_ARMV6_MODULES=(fs/ext4 fs/jbd2 fs/mbcache.ko lib/crc16.ko crypto/crc32c_generic.ko fs/overlayfs
  drivers/net/usb/usbnet.ko drivers/net/usb/cdc_ether.ko drivers/net/mii.ko)

fetch_vm_kernel() {
  local arch=$1 dir="$VM_DIR/$1" pkg deb tmp key modules=("${VM_MODULE_DIRS[@]}") flavour=$1
  [[ $arch == arm64 ]] && modules+=("${VM_BOOT_MODULES[@]}" "${VM_NET_MODULES[@]}")
  [[ $arch == armel ]] && modules=("${VM_ARMV6_MODULES[@]}") flavour=rpi
  key="$(printf '%s\n' "${modules[@]}" | sha256sum | cut -c1-16)"
  if compgen -G "$dir/boot/vmlinuz-*" >/dev/null && [[ -x "$dir/busybox" && "$(cat "$dir/.berth-key" 2>/dev/null)" == "$key" ]]; then
    log "VM kernel cached for $arch ($(basename "$(compgen -G "$dir/boot/vmlinuz-*")"))"
    return 0
  fi
  if ((EUID != 0)); then echo "setup: VM kernel for $arch missing; run as root" >&2; exit 1; fi
  # linux-image-<arch> is a metapackage; the kernel itself is the versioned package it depends on.
  pkg="$(apt-cache depends "linux-image-$flavour:$arch" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
  [[ -n "$pkg" ]] || { apt-get update -qq || true; pkg="$(apt-cache depends "linux-image-$flavour:$arch" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"; }
  [[ -n "$pkg" ]] || { echo "setup: cannot resolve linux-image-$flavour" >&2; exit 1; }
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "${pkg%:*}:$arch")
  deb="$(compgen -G "$tmp/linux-image-*.deb")"
  rm -rf "$dir.new"
  mkdir -p "$dir.new"
  local patterns=('./boot/vmlinuz-*') m
  [[ $arch == armel ]] && patterns+=('./usr/lib/linux-image-*/bcm2835-rpi-*.dtb')
  for m in "${modules[@]}"; do
    if [[ $m == *.ko ]]; then patterns+=("./lib/modules/*/kernel/$m"); else patterns+=("./lib/modules/*/kernel/$m/*"); fi
  done
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir.new" --wildcards "${patterns[@]}"
  dpkg-deb --fsys-tarfile "$(compgen -G "$DEB_DIR/busybox-static_*_${arch}.deb")" | tar -x -O ./bin/busybox > "$dir.new/busybox"
  chmod 755 "$dir.new/busybox"
  echo "$key" > "$dir.new/.berth-key"
  rm -rf "$tmp" "$dir"
  mv "$dir.new" "$dir"
  log "extracted $pkg (vmlinuz + $(find "$dir/lib/modules" -name '*.ko' | wc -l) modules) into $dir"
}

# Root filesystems for the ARM VMs (npm run test:arm): Debian packages and their dependencies, resolved by
# apt as if ARCH were the native architecture on an empty system, fetched into the cache and unpacked with
# dpkg-deb (never installed). Each is rebuilt only when its package list changes.
# - arm64-rootfs, the shared root of test/helpers/vm/arm.ts: mosquitto, the registry and crun for the
#   agent's main job, and the armhf libraries the 32-bit userland check's armv7l Node needs. Node itself
#   comes from the agent bundles the test builds (src/flash/bundle.ts), as on a flashed board.
# golang-github-containers-common: podman's seccomp profile, berth's default filter (no container starts without it).
# netavark, aardvark-dns, iptables (iptables-nft, see assemble_rootfs), iproute2 (`ip netns`, which busybox's
# ip lacks) and util-linux (flock(1), which berth holds around netavark; Debian's busybox has none):
# bridge networking, as on a board that runs networked apps (test/arm/network.test.ts).
ARM_ROOTFS_PACKAGES=(busybox-static crun golang-github-containers-common mosquitto docker-registry libstdc++6 libc6:armhf libstdc++6:armhf libatomic1:armhf
  netavark aardvark-dns iptables iproute2 util-linux)
# - pios-arm64 and pios-armhf, the root partitions of the Raspberry Pi OS-shaped images that
#   test/arm/flashed-boot.test.ts flashes and boots: a systemd system with udev (Pi OS Lite boots the same
#   way) and what berth needs on a board (crun, a shell, coreutils, libstdc++ and libatomic for Node, bash
#   and sed for the self-update launcher scripts/berth-launch, as Pi OS has them), and no Node: the
#   flashed bundle brings its own.
PIOS_PACKAGES=(systemd-sysv udev util-linux dash bash sed coreutils crun golang-github-containers-common libstdc++6 libatomic1)

# assemble_rootfs NAME ARCH PACKAGES_ARRAY: .cache/vm/NAME from ARCH packages.
assemble_rootfs() {
  local name=$1 arch=$2
  local -n pkgs=$3
  local dir="$VM_DIR/$name" debs="$VM_DIR/$arch-debs" key tmp files f
  key="$(printf '%s\n' "$arch" "${pkgs[@]}" | sha256sum | cut -c1-16)"
  if [[ "$(cat "$dir/.berth-key" 2>/dev/null)" == "$key" ]]; then
    log "VM root filesystem $name cached ($dir)"
    return 0
  fi
  if ((EUID != 0)); then echo "setup: VM root filesystem $name missing; run as root" >&2; exit 1; fi
  local status apt_opts
  status="$(mktemp)"
  # An empty dpkg status and ARCH as the native architecture: apt resolves the full closure.
  apt_opts=(-qq --no-install-recommends -o "APT::Architecture=$arch" -o "Dir::State::status=$status" -o APT::Sandbox::User=root)
  mkdir -p "$debs/partial" "$status.none/partial"
  # --print-uris leaves out what the archive dir already holds: ask against an empty one for the full list.
  rootfs_deb_list() { apt-get install --print-uris "${apt_opts[@]}" -o "Dir::Cache::archives=$status.none" "${pkgs[@]}" | awk '{print $2}'; }
  files="$(rootfs_deb_list 2>/dev/null)" || true
  if [[ -z "$files" ]]; then
    apt-get update -qq || log "apt-get update reported errors; trying anyway"
    files="$(rootfs_deb_list)"
  fi
  log "fetching $(wc -w <<<"$files") $arch packages for $name into $debs"
  apt-get install -d -y "${apt_opts[@]}" -o "Dir::Cache::archives=$debs" "${pkgs[@]}" >/dev/null
  rm -rf "$status" "$status.none"
  tmp="$dir.new"
  rm -rf "$tmp"
  mkdir -p "$tmp"/usr/{bin,sbin,lib} "$tmp"/{proc,sys,dev,run,tmp,root,etc,var/lib/berth,opt}
  chmod 1777 "$tmp/tmp"
  # merged /usr, as a Debian 12 system has it; tar must keep these symlinks when packages ship /bin, /lib.
  ln -s usr/bin "$tmp/bin" && ln -s usr/sbin "$tmp/sbin" && ln -s usr/lib "$tmp/lib"
  for f in $files; do
    dpkg-deb --fsys-tarfile "$debs/$f" | tar -x --keep-directory-symlink -C "$tmp"
  done
  # dash's postinst makes /bin/sh, and no maintainer script runs here.
  [[ -e "$tmp/usr/bin/dash" && ! -e "$tmp/usr/bin/sh" ]] && ln -s dash "$tmp/usr/bin/sh"
  # … and iptables' postinst makes iptables(-save/-restore) alternatives for the nft variants (Debian's
  # default); netavark runs `iptables` and `ip6tables` from PATH.
  if [[ -e "$tmp/usr/sbin/xtables-nft-multi" ]]; then
    for f in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
      [[ -e "$tmp/usr/sbin/$f" ]] || ln -s "${f/tables/tables-nft}" "$tmp/usr/sbin/$f"  # iptables-save → iptables-nft-save
    done
  fi
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$tmp/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$tmp/etc/group"
  printf '127.0.0.1 localhost\n::1 localhost\n' > "$tmp/etc/hosts"
  echo "$key" > "$tmp/.berth-key"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  log "assembled the VM root filesystem $name in $dir ($(du -sh "$dir" | cut -f1))"
}

fetch_arm_rootfs() {
  assemble_rootfs arm64-rootfs arm64 ARM_ROOTFS_PACKAGES
  assemble_rootfs pios-arm64 arm64 PIOS_PACKAGES
  assemble_rootfs pios-armhf armhf PIOS_PACKAGES
  # Debian armel: the userland of a Zero W card in the ARMv6 VM (test/arm/armv6.test.ts).
  assemble_rootfs pios-armel armel PIOS_PACKAGES
}

# binfmt_misc handlers for the foreign platforms the tests run. Registration is kernel state, lost at
# reboot, so it is checked on every run; Debian's handler files carry the F (fix-binary) flag, which lets
# the interpreter work inside a container's root where /usr/libexec/qemu-binfmt does not exist.
register_binfmt() {
  local name dir=/proc/sys/fs/binfmt_misc
  [[ -e "$dir/register" ]] || mount -t binfmt_misc binfmt_misc "$dir" || { log "cannot mount binfmt_misc"; return 1; }
  for name in qemu-aarch64 qemu-arm; do
    [[ -e "$dir/$name" ]] && continue
    if ((EUID != 0)); then echo "setup: binfmt handler $name missing; run as root" >&2; exit 1; fi
    cat "/usr/lib/binfmt.d/$name.conf" > "$dir/register"
    log "registered binfmt handler $name"
  done
}

installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]; }

missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  log "all ${#PACKAGES[@]} packages present"
  fetch_busybox_debs
  fetch_vm_kernel amd64
  fetch_vm_kernel arm64
  fetch_vm_kernel armel
  fetch_arm_rootfs
  register_binfmt
  exit 0
fi

if ((EUID != 0)); then
  echo "setup: missing packages: ${missing[*]}" >&2
  echo "setup: run as root (e.g. sudo bash $0) to install them" >&2
  exit 1
fi

# Keep maintainer scripts from starting the packaged daemons: policy-rc.d exiting 101 makes
# invoke-rc.d and deb-systemd-invoke refuse every start. Only remove the file if we made it.
POLICY=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
  if ((created_policy)); then
    rm -f "$POLICY"
    log "removed temporary $POLICY"
  fi
}
trap cleanup EXIT
if [[ ! -e "$POLICY" ]]; then
  printf '#!/bin/sh\n# berth scripts/setup.sh: block service starts during install\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  created_policy=1
  log "created temporary $POLICY (exit 101) to keep packaged daemons from starting"
fi

log "apt-get update"
# A flaky index elsewhere (e.g. a mirror mid-sync) need not stop this: the install decides.
apt-get update -qq || log "apt-get update reported errors; installing anyway"
log "installing: ${missing[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

for pkg in "${missing[@]}"; do
  installed "$pkg" || { echo "setup: $pkg still not installed" >&2; exit 1; }
done

# Belt and braces for daemons installed just now: a pre-existing policy-rc.d may allow starts.
# Stop them if running and, on systemd hosts, disable them so a reboot does not bring them back.
# Daemons that were already installed are left alone: someone may be using them on purpose.
for svc in "${SYSTEM_DAEMONS[@]}"; do
  [[ " ${missing[*]} " == *" $svc "* ]] || continue
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
    log "stopped and disabled systemd unit $svc"
  elif [[ -x "/etc/init.d/$svc" ]] && "/etc/init.d/$svc" status >/dev/null 2>&1; then
    "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    # init.d stop only signals; docker-registry drains for a moment before releasing its port.
    for _ in {1..50}; do "/etc/init.d/$svc" status >/dev/null 2>&1 || break; sleep 0.1; done
    log "stopped system service $svc (init.d)"
  else
    log "system service $svc is not running (start was blocked)"
  fi
done

fetch_busybox_debs
fetch_vm_kernel amd64
fetch_vm_kernel arm64
fetch_vm_kernel armel
fetch_arm_rootfs
log "done"
register_binfmt
