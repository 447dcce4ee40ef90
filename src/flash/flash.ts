import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BerthError, isErrno } from '../errors.js';
import { HELPER_DIRS, INSTALL_HINT as NETWORK_INSTALL_HINT } from '../network/tools.js';
import { OCI_RUNTIMES } from '../runtime/oci-runtime.js';
import { readBundle, type BundleManifest } from './bundle.js';
import { ARMEL_LOADER, sharedBuiltinEntries } from './bundle-armv6.js';
import { elfDependencies, type BundleArch, type ElfDependencies } from './elf.js';
import { blockDeviceNumber, checkDiskSafe, HOST_BLOCK_PATHS, writeAndVerify, type BlockHostPaths } from './device.js';
import { deviceCredentials, type DeviceCredentials, type Fleet } from './fleet.js';
import { Ext4Volume } from './ext4.js';
import { FatVolume } from './fat.js';
import { copyImage, openPiImage, type PiImage } from './image.js';
import { flashedVersionName, INSTALL_PREFIX, LAUNCHER_PATH, layoutEntries, missingLauncherTools } from './install-layout.js';
import { bundleEntries, commonEntries, deviceEntries, patchCmdline, staleCredentialPaths, userconfText } from './payload.js';
import { installPreload, type PreparedPreload } from './preload.js';

export interface FlashSource {
  /** A Raspberry Pi OS image, .img or .img.xz; only ever read. */
  readonly image: string;
  readonly fleet: Fleet;
  /** The agent bundle directory for an architecture (a fixed --bundle, or buildBundle on demand). */
  readonly bundleFor: (arch: BundleArch) => Promise<string>;
  /** --preload: the app and its images for an architecture (src/flash/preload.ts), put into the state root of every card. */
  readonly preload?: (arch: BundleArch) => Promise<PreparedPreload>;
  readonly log?: (line: string) => void;
}

export interface FlashedDevice {
  readonly id: string;
  /** The image file written, or the block device. */
  readonly target: string;
  readonly credentials: DeviceCredentials['kind'];
}

/** A name next to `dest` for writing before the final rename: same directory, so the rename is atomic. */
function tempNameFor(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.berth-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([fs.stat(a).catch(() => undefined), fs.stat(b).catch(() => undefined)]);
  return sa !== undefined && sb !== undefined && sa.dev === sb.dev && sa.ino === sb.ino;
}

/** Every device's credentials, read before any image is written: a missing one fails the batch up front. */
function credentialsFor(fleet: Fleet, ids: readonly string[]): Map<string, DeviceCredentials> {
  return new Map(ids.map((id) => [id, deviceCredentials(fleet, id)]));
}

/**
 * Copies the source image to `dest` (exclusive create) and installs what every device shares: the agent
 * bundle under /opt/berth, the systemd unit and its enable symlink, the CA, SSH keys, cgroup_enable=memory
 * in cmdline.txt, userconf.txt. Checks the image is a Raspberry Pi image of the bundle's architecture.
 */
async function prepareBase(src: FlashSource, dest: string): Promise<PiImage> {
  const log = src.log ?? ((): void => {});
  log(`copying ${src.image}`);
  await copyImage(src.image, dest);
  const pi = await openPiImage(dest);
  const bundleDir = await src.bundleFor(pi.arch);
  const manifest = await readBundle(bundleDir);
  // The armv6 bundle brings its own userland for Node (bundle-armv6.ts): it also serves armhf images, for the Zero W.
  if (pi.arch !== manifest.arch && !(manifest.arch === 'armv6' && pi.arch === 'arm')) {
    throw new BerthError('invalid', `${src.image} is an ${pi.arch} image but the agent bundle ${bundleDir} is for ${manifest.arch}`, { hint: `use a bundle for ${pi.arch} (berth flash --build-bundle builds the right one)` });
  }
  await checkNodeLoads(pi, bundleDir, manifest);
  const noLauncher = await missingLauncherTools(async (p) => (await pi.root.lookup(p)) !== undefined);
  if (noLauncher.length > 0) log(`warning: ${src.image} has no ${noLauncher.join(' or ')} (in /usr/bin): ${LAUNCHER_PATH}, which systemd starts, needs them; the agent cannot start until installed (apt-get install ${noLauncher.join(' ')})`);
  if (!(await hasAny(pi, ['/usr/bin', '/usr/sbin', '/usr/local/bin'], OCI_RUNTIMES))) {
    log(`warning: ${src.image} has no OCI runtime (crun or runc in /usr/bin, /usr/sbin or /usr/local/bin; Raspberry Pi OS ships neither): the agent will enroll and report, but cannot run containers until one is installed (apt-get install crun)`);
  }
  // Where berth looks for them on the board (src/network/tools.ts); Raspberry Pi OS ships neither.
  const noNetwork = [];
  for (const tool of ['netavark', 'aardvark-dns']) if (!(await hasAny(pi, HELPER_DIRS, [tool]))) noNetwork.push(tool);
  if (noNetwork.length > 0) {
    log(`warning: ${src.image} has no ${noNetwork.join(' or ')} (in ${HELPER_DIRS.join(', ')}): bridge networking, the default network of berth run and of compose services, fails on the board until installed (${NETWORK_INSTALL_HINT}); network_mode none and host still work`);
  }
  const template = await fs.readFile(path.join(bundleDir, 'scripts', 'systemd', 'berth-agent.service'), 'utf8');
  // The self-update layout (launcher, versions/<name>, current): install-layout.ts.
  const version = await flashedVersionName(bundleDir, manifest);
  // The armv6 bundle's Debian Node reads a few built-ins from /usr/share/nodejs: linked through `current`, so they follow upgrades.
  const entries = [...(await layoutEntries(bundleDir, version, bundleEntries)), ...sharedBuiltinEntries(bundleDir, `${INSTALL_PREFIX}/current`), ...(await commonEntries(src.fleet, template))];
  log(`installing the ${manifest.arch} agent bundle (berth ${manifest.berth}, Node ${manifest.node}) into the root file system as ${INSTALL_PREFIX}/versions/${version}`);
  // A re-flashed image may hold an older bundle (flat or versioned): its files go, so no stale chunk outlives the update.
  await pi.root.install(entries, await pi.root.filesBelow(INSTALL_PREFIX));
  if (src.preload) {
    const preload = await src.preload(pi.arch);
    try {
      await installPreload(pi.root, preload, log);
    } finally {
      preload.remove();
    }
  }
  const cmdline = await pi.boot.readFile('/cmdline.txt');
  await pi.boot.writeFile('/cmdline.txt', patchCmdline(cmdline?.toString('utf8') ?? ''));
  const userconf = await userconfText(src.fleet);
  if (userconf !== undefined) await pi.boot.writeFile('/userconf.txt', userconf);
  // An empty "ssh" file on the boot partition makes Raspberry Pi OS enable sshd on first boot.
  if (src.fleet.ssh !== undefined) await pi.boot.writeFile('/ssh', '');
  return pi;
}

const MULTIARCH: Record<BundleArch, string> = { arm64: 'aarch64-linux-gnu', arm: 'arm-linux-gnueabihf', armv6: 'arm-linux-gnueabi' };

/**
 * The bundle's Node must load on the image: its interpreter and every library it links (DT_NEEDED) in
 * the root file system. Otherwise the card boots into an agent that dies at exec, restarted every 5 s
 * (e.g. the armv7l Node needs libatomic.so.1, which a trimmed image may lack).
 */
async function checkNodeLoads(pi: PiImage, bundleDir: string, manifest: BundleManifest): Promise<void> {
  // The armv6 bundle brings its loader and every library (src/flash/bundle-armv6.ts): nothing to find on the image.
  if (existsSync(path.join(bundleDir, 'node', 'lib', ARMEL_LOADER))) return;
  const fh = await fs.open(path.join(bundleDir, 'node', 'bin', 'node'), 'r');
  let deps: ElfDependencies | undefined;
  try {
    deps = await elfDependencies(async (offset, len) => {
      const buf = Buffer.alloc(len);
      const { bytesRead } = await fh.read(buf, 0, len, offset);
      return buf.subarray(0, bytesRead);
    });
  } finally {
    await fh.close();
  }
  const dirs = ['/lib', '/usr/lib', `/lib/${MULTIARCH[manifest.arch]}`, `/usr/lib/${MULTIARCH[manifest.arch]}`];
  const present = async (p: string): Promise<boolean> => (await pi.root.lookup(p)) !== undefined;
  const missing: string[] = [];
  if (deps?.interpreter !== undefined && !(await present(deps.interpreter)) && !(await present(`/usr${deps.interpreter}`))) missing.push(deps.interpreter);
  for (const lib of deps?.needed ?? []) {
    let found = false;
    for (const d of dirs) if ((found = await present(`${d}/${lib}`))) break;
    if (!found) missing.push(lib);
  }
  if (missing.length > 0) {
    throw new BerthError('invalid', `the root file system of ${pi.file} lacks ${missing.join(', ')}, which the bundle's Node ${manifest.node} needs: the agent could not start on the board`, {
      hint: 'use a full Raspberry Pi OS (Lite) image, or add the libraries to this one (e.g. libatomic1, libstdc++6)',
    });
  }
}

/** Whether the image's root file system holds one of `names` in one of `dirs`. */
async function hasAny(pi: PiImage, dirs: readonly string[], names: readonly string[]): Promise<boolean> {
  for (const dir of dirs) {
    for (const name of names) if ((await pi.root.lookup(`${dir}/${name}`)) !== undefined) return true;
  }
  return false;
}

/** Installs one device's identity (agent.yaml, credentials, host name) into a prepared image and checks the result with e2fsck. */
async function personalize(pi: PiImage, fleet: Fleet, id: string, creds: DeviceCredentials): Promise<void> {
  const hosts = (await pi.root.readFile('/etc/hosts'))?.toString('utf8') ?? '127.0.0.1\tlocalhost\n';
  await pi.root.install(deviceEntries(fleet, id, creds, hosts), staleCredentialPaths(creds));
  await pi.root.check();
}

/** A byte-for-byte copy of a checked image: the same partitions at the same offsets. */
function copyOf(pi: PiImage, file: string): PiImage {
  return { ...pi, file, boot: new FatVolume(file, pi.bootPartition.offset), root: new Ext4Volume(file, pi.rootPartition.offset) };
}

/** fsync: debugfs and mtools write through their own descriptors; the rename must not overtake the data. */
async function syncFile(file: string): Promise<void> {
  const fh = await fs.open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function removeQuietly(file: string): Promise<void> {
  await fs.rm(file, { force: true }).catch(() => undefined);
}

/**
 * Runs `fn`; if SIGINT or SIGTERM arrives meanwhile, removes `paths` (as they are at that moment) and
 * re-raises the signal, so an interrupted flash leaves no partial image either.
 */
async function cleanupOnSignal<T>(paths: ReadonlySet<string>, fn: () => Promise<T>): Promise<T> {
  const handler = (signal: NodeJS.Signals): void => {
    for (const p of paths) rmSync(p, { recursive: true, force: true });
    process.off('SIGINT', handler).off('SIGTERM', handler);
    process.kill(process.pid, signal);
  };
  process.on('SIGINT', handler).on('SIGTERM', handler);
  try {
    return await fn();
  } finally {
    process.off('SIGINT', handler).off('SIGTERM', handler);
  }
}

/**
 * Writes one image per device id: `outFor(id)` gets a copy of the source image with the shared parts
 * and that device's identity. Each is written under a temporary name and renamed when complete, so a
 * failure leaves no partial image; the source image is never written to. Returns what was written.
 */
export async function flashImages(src: FlashSource, ids: readonly string[], outFor: (id: string) => string): Promise<FlashedDevice[]> {
  const log = src.log ?? ((): void => {});
  const creds = credentialsFor(src.fleet, ids);
  const outs = ids.map(outFor);
  for (const out of outs) {
    if (await sameFile(out, src.image)) throw new BerthError('usage', `--out ${out} is the input image; berth flash never modifies its input`);
    await checkWritableDir(path.dirname(out));
  }
  const base = tempNameFor(outs[0]!);
  const temps = new Set<string>([base]);
  const done: FlashedDevice[] = [];
  try {
    return await cleanupOnSignal(temps, async () => {
      const pi = await prepareBase(src, base);
      for (const [i, id] of ids.entries()) {
        const out = outs[i]!;
        const last = i === ids.length - 1;
        // The last device takes the base itself: one copy fewer.
        const tmp = last ? base : tempNameFor(out);
        temps.add(tmp);
        if (!last) await copyImage(base, tmp);
        await personalize(last ? pi : copyOf(pi, tmp), src.fleet, id, creds.get(id)!);
        await syncFile(tmp);
        await fs.rename(tmp, out);
        temps.delete(tmp);
        log(`${id}: wrote ${out}`);
        done.push({ id, target: out, credentials: creds.get(id)!.kind });
      }
      return done;
    });
  } finally {
    await Promise.all([...temps].map(removeQuietly));
  }
}

async function checkWritableDir(dir: string): Promise<void> {
  try {
    await fs.access(dir, fs.constants.W_OK);
  } catch (err) {
    throw new BerthError(isErrno(err, 'ENOENT') ? 'notFound' : 'host', `cannot write into ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

export interface DeviceFlashOptions {
  /** A whole disk: /dev/sdX, /dev/mmcblkN. */
  readonly device: string;
  /** Called before every card after the first; resolves when the next card is in. */
  readonly nextCard?: (id: string) => Promise<void>;
  readonly host?: BlockHostPaths;
  /** Where the per-device image is assembled before it is written (default os.tmpdir()). */
  readonly workDir?: string;
}

/**
 * Flashes each device id onto the block device in turn (the operator swaps cards between them): the
 * image is assembled in a work directory, the disk is checked (checkDiskSafe) right before each write,
 * written, fsynced and read back to verify. Nothing is written to the disk when a check fails.
 */
export async function flashDevices(src: FlashSource, ids: readonly string[], opts: DeviceFlashOptions): Promise<FlashedDevice[]> {
  const log = src.log ?? ((): void => {});
  const host = opts.host ?? HOST_BLOCK_PATHS;
  const creds = credentialsFor(src.fleet, ids);
  await checkDiskSafe(opts.device, await blockDeviceNumber(opts.device), host);
  const work = await fs.mkdtemp(path.join(opts.workDir ?? os.tmpdir(), 'berth-flash-'));
  const done: FlashedDevice[] = [];
  try {
    return await cleanupOnSignal(new Set([work]), async () => {
      const base = path.join(work, 'base.img');
      const pi = await prepareBase(src, base);
      for (const [i, id] of ids.entries()) {
        if (i > 0) await opts.nextCard?.(id);
        const tmp = path.join(work, 'device.img');
        await removeQuietly(tmp);
        await copyImage(base, tmp);
        await personalize(copyOf(pi, tmp), src.fleet, id, creds.get(id)!);
        // Checked again per card: a desktop may have auto-mounted the card just inserted.
        await checkDiskSafe(opts.device, await blockDeviceNumber(opts.device), host);
        log(`${id}: writing ${opts.device}`);
        const { bytes } = await writeAndVerify(tmp, opts.device, { exclusive: true });
        log(`${id}: wrote and verified ${bytes} bytes on ${opts.device}`);
        done.push({ id, target: opts.device, credentials: creds.get(id)!.kind });
      }
      return done;
    });
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
