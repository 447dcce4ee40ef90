import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { cpioNewc, type CpioEntry } from './cpio.js';

/**
 * The VM's initramfs: a static busybox, the kernel modules needed to reach the host's files (virtio-pci
 * and 9p) and to stack a writable layer on them (overlay), and an init that builds the guest's root:
 *   9p host `/` (read-only) + tmpfs upper → overlay → switch_root, with a pure cgroup2 at /sys/fs/cgroup.
 * The test's output directory is a second, writable 9p share mounted at the same path as on the host.
 * For a foreign architecture the `host` share is a root filesystem assembled for it instead of the host's
 * `/`, and the checkout comes in as a third share (`repo`) at its host path.
 */

/** Modules the init loads; their dependencies are found in the modules themselves and loaded first. */
export const VM_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay'];

export interface InitramfsInput {
  /** Static busybox for the guest's architecture. */
  readonly busybox: string;
  /** `lib/modules/<version>` of the extracted kernel package. */
  readonly modulesDir: string;
  /** Writable host directory shared into the guest at the same path (mount tag `out`). */
  readonly outDir: string;
  /** Guest script (absolute path, under `outDir` or the read-only host tree) run as root by `sh`. */
  readonly script: string;
  /** Mount the read-only share `repo` at this path in the guest (when the root is not the host's `/`). */
  readonly repoDir?: string;
  /** Guest paths bind-mounted over others once the shares are up (e.g. arm64 builds over the checkout's x86 ones). */
  readonly binds?: ReadonlyArray<{ readonly from: string; readonly to: string }>;
  /** Modules loaded after {@link VM_MODULES} (with their dependencies), by name, e.g. the arm64 VM's networking. */
  readonly modules?: readonly string[];
}

/** Every module file under `dir`, by module name (`9pnet_virtio` → path). Names use `_`, as the kernel does. */
function indexModules(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ko')) out.set(e.name.slice(0, -3).replace(/-/g, '_'), p);
    }
  };
  walk(dir);
  return out;
}

/** The `depends=` field of a module's .modinfo section (no modinfo(8) needed). */
function moduleDepends(file: string): string[] {
  const text = fs.readFileSync(file).toString('latin1');
  const m = /\0depends=([^\0]*)\0/.exec(text);
  return m?.[1] ? m[1].split(',').filter(Boolean).map((n) => n.replace(/-/g, '_')) : [];
}

/** Module files in load order: each after the modules it depends on. */
export function resolveModules(modulesDir: string, wanted: readonly string[]): string[] {
  const index = indexModules(modulesDir);
  const ordered: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    const file = index.get(name);
    if (!file) throw new Error(`kernel module ${name} not found under ${modulesDir}`);
    for (const dep of moduleDepends(file)) visit(dep);
    ordered.push(file);
  };
  wanted.forEach(visit);
  return ordered;
}

function initScript(modules: readonly string[], input: InitramfsInput): string {
  const { outDir, script } = input;
  const r = '/newroot';
  // The checkout gets its own tmpfs-backed overlay: tests may write into it (e.g. caches), never onto the host.
  const repo = input.repoDir === undefined ? '' : [
    'mkdir -p /repo /upper/repo-upper /upper/repo-work',
    'mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 repo /repo || fail "9p repo"',
    `mkdir -p ${r}${input.repoDir} && mount -t overlay overlay -o lowerdir=/repo,upperdir=/upper/repo-upper,workdir=/upper/repo-work ${r}${input.repoDir} || fail "repo overlay"`,
  ].join('\n');
  const binds = (input.binds ?? []).map((b) => `mount -o bind ${r}${b.from} ${r}${b.to} || fail "bind ${b.to}"`);
  return `${initPrologue(modules)}mkdir -p /lower /upper ${r}
# cache=loose: the lower tree does not change while the VM runs, and TCG pays dearly for every 9p walk.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 host /lower || fail "9p host"
mount -t tmpfs -o mode=0755 tmpfs /upper && mkdir /upper/upper /upper/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/upper,workdir=/upper/work ${r} || fail overlay
mount -t proc proc ${r}/proc && mount -t sysfs sysfs ${r}/sys && mount -t devtmpfs devtmpfs ${r}/dev
mkdir -p ${r}/dev/pts ${r}/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts ${r}/dev/pts && mount -t tmpfs tmpfs ${r}/dev/shm
mount -t cgroup2 -o nsdelegate cgroup2 ${r}/sys/fs/cgroup || fail cgroup2
# /tmp stays the overlay's (its upper is tmpfs already): a checkout under /tmp, as CI may make, must
# stay visible. /run gets a fresh tmpfs so the host's runtime state does not leak in.
mount -t tmpfs -o mode=0755 tmpfs ${r}/run
# berth's own overlays need a real upper filesystem, not the overlay root.
mkdir -p ${r}/var/lib/berth && mount -t tmpfs -o mode=0700,size=1g tmpfs ${r}/var/lib/berth
# The checkout before the output share: the output directory may lie inside it.
${repo}
mkdir -p ${r}${outDir} && mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out ${r}${outDir} || fail "9p out"
${binds.join('\n')}
# An assembled root has busybox but no applet links: they go into the tmpfs upper layer.
[ -e ${r}/bin/sh ] || chroot ${r} /bin/busybox --install -s || fail "busybox --install"
hostname berth-vm
ip link set lo up
echo "berth-vm: up $(cut -d' ' -f1 /proc/uptime)s, $(grep MemTotal /proc/meminfo)"
# switch_root, not chroot: the guest's root must be its mount namespace's root, or the runtimes' setns
# into a container (berth exec) and pivot_root see a root that is not theirs. PID 1 becomes this stage 2.
cat > ${r}/run/berth-vm-guest <<'STAGE2'
HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/sh ${script}
code=$?
echo $code > ${outDir}/exit-code
echo "berth-vm: guest exited $code at $(cut -d' ' -f1 /proc/uptime)s"
sync
echo o > /proc/sysrq-trigger
sleep 10
STAGE2
exec switch_root ${r} /bin/sh /run/berth-vm-guest
`;
}

/** Builds the gzip'd cpio for one run. */
export function buildInitramfs(input: InitramfsInput): Buffer {
  const modules = resolveModules(input.modulesDir, [...VM_MODULES, ...(input.modules ?? [])]);
  return pack(input.busybox, modules, initScript(modules, input), ['lower', 'upper']);
}

/** The init prologue both initramfs share: busybox applets, /proc /sys /dev, `fail`, the modules loaded. */
function initPrologue(modules: readonly string[]): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t devtmpfs devtmpfs /dev
fail() { echo "berth-vm: init: $*"; echo o > /proc/sysrq-trigger; sleep 10; }
for m in ${modules.map((m) => path.basename(m)).join(' ')}; do insmod /modules/$m || fail "insmod $m"; done
`;
}

function pack(busybox: string, modules: readonly string[], init: string, dirs: readonly string[]): Buffer {
  const entries: CpioEntry[] = [
    ...['bin', 'modules', 'proc', 'sys', 'dev', 'newroot', ...dirs].map((d): CpioEntry => ({ path: d, type: 'dir', mode: 0o755 })),
    { path: 'bin/busybox', type: 'file', mode: 0o755, data: fs.readFileSync(busybox) },
    ...modules.map((m): CpioEntry => ({ path: `modules/${path.basename(m)}`, type: 'file', mode: 0o644, data: fs.readFileSync(m) })),
    { path: 'init', type: 'file', mode: 0o755, data: init },
  ];
  return zlib.gzipSync(cpioNewc(entries), { level: 1 });
}

/** Modules a Pi's kernel loads from its own /lib/modules to come up from a disk: the disk, ext4, the NIC, overlay. */
export const DISK_BOOT_MODULES = ['virtio_pci', 'virtio_blk', 'crc32c_generic', 'ext4', 'virtio_net', 'overlay'];

/**
 * The initramfs for booting a whole disk image (a flashed card) as a board boots it: the root partition
 * named by the command line's `root=PARTUUID=<disk id>-<NN>` (what Raspberry Pi OS's cmdline.txt says),
 * checked against the disk's MBR signature, mounted read-write, and its own /sbin/init (systemd) as PID 1.
 * The modules come from here because the disk holds a Pi's kernel modules, not our Debian kernel's.
 */
export function buildDiskBootInitramfs(input: {
  readonly busybox: string;
  readonly modulesDir: string;
  /** The card's block device (default /dev/vda, virtio); an SD card is /dev/mmcblk0, whose partitions are mmcblk0pN. */
  readonly disk?: string;
  /** Default {@link DISK_BOOT_MODULES}: the VM's disk, ext4, NIC and overlay. */
  readonly modules?: readonly string[];
}): Buffer {
  const modules = resolveModules(input.modulesDir, input.modules ?? DISK_BOOT_MODULES);
  const disk = input.disk ?? '/dev/vda';
  const part = /\d$/.test(disk) ? `${disk}p` : disk;
  const init = `${initPrologue(modules)}uuid=
for a in $(cat /proc/cmdline); do case $a in root=PARTUUID=*-*) uuid=\${a#root=PARTUUID=} ;; esac; done
[ -n "$uuid" ] || fail "no root=PARTUUID=<disk id>-<partition> on the command line: $(cat /proc/cmdline)"
id=$(echo "\${uuid%-*}" | tr A-F a-f) n=$(echo "\${uuid##*-}" | sed 's/^0*//')
disk=${disk} part=${part}$n
for i in $(seq 50); do [ -b $part ] && break; sleep 0.2; done
# The MBR's disk signature (bytes 440-443, little-endian) is the PARTUUID's first half.
signature=$(od -An -tx4 -j440 -N4 $disk | tr -d ' ')
[ "$signature" = "$id" ] || fail "root=PARTUUID=$uuid but $disk's signature is $signature"
mount -t ext4 -o rw $part /newroot || fail "mount $part"
echo "berth-vm: root $part (PARTUUID $uuid) at $(cut -d' ' -f1 /proc/uptime)s"
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
`;
  return pack(input.busybox, modules, init, []);
}
