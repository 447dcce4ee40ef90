// `berth flash --preload APP` (issue 19): the app's images for the card's architecture, pulled on the
// operator's machine, and the app itself, written into the card's state root, where the agent's first
// start (src/agent/preload.ts) loads them and deploys the app with no network.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { PRELOAD_APP_FILE, PRELOAD_DIR, PRELOAD_IMAGES_DIR } from '../agent/preload.js';
import type { BoardProfile } from '../board/profiles.js';
import { formatBytes } from '../cli/format.js';
import { composeApp, readComposeDocument } from '../compose/file.js';
import type { App } from '../compose/model.js';
import { normalizeDesired } from '../compose/normalize.js';
import { BerthError } from '../errors.js';
import type { HostPaths } from '../host/paths.js';
import { treeSize } from '../host/tree-size.js';
import { unpackArchive } from '../image/archive/load.js';
import { parsePlatform } from '../image/platform.js';
import { openRegistryClient, type RegistryAccess } from '../image/registry/open.js';
import { checkDesiredShape } from '../protocol/validate.js';
import { withRoot } from '../root.js';
import type { BundleArch } from './elf.js';
import type { Ext4Install, Ext4Volume } from './ext4.js';
import { STATE_ROOT } from './payload.js';

/** Where the preload lands on the card. */
export const CARD_PRELOAD_DIR = `${STATE_ROOT}/${PRELOAD_DIR}`;

/**
 * The app to preload, read and checked now, before any image is copied: a compose file (read as
 * `fleet deploy` reads it, for a device whose state root is the card's) or a desired-state file (the
 * protocol's JSON, as `berth fleet` publishes it; recognised by its `revision`, which the device ignores).
 */
export async function readPreloadApp(file: string, env: NodeJS.ProcessEnv, onWarning: (m: string) => void): Promise<App> {
  const doc = await readComposeDocument(file);
  if (doc !== null && typeof doc === 'object' && !Array.isArray(doc) && 'revision' in doc) {
    return normalizeDesired(checkDesiredShape(doc, `desired-state file ${file}`), { stateRoot: STATE_ROOT });
  }
  return composeApp(doc, file, { mode: 'fleet', env, stateRoot: STATE_ROOT, onWarning });
}

/**
 * The platforms to pull for a card of `arch`: those every board profile that runs this userland accepts,
 * in the first such profile's order of preference. A card may go into any of those boards (a 32-bit
 * Raspberry Pi OS card boots on a Pi Zero W as on a Pi 4), so the image must run on the least of them.
 */
export function cardPlatforms(arch: BundleArch, profiles: readonly BoardProfile[]): string[] {
  const lists = profiles.map((p) => p.platforms[arch]).filter((l): l is readonly string[] => l !== undefined);
  const common = (lists[0] ?? []).filter((p) => lists.every((l) => l.includes(p)));
  if (common.length === 0) throw new BerthError('internal', `no board profile platform is common to every ${arch} board`);
  return common;
}

export interface PreloadOptions {
  readonly app: App;
  /** The operator's registry logins and CAs (`berth login`'s state root, Docker's config). */
  readonly access: RegistryAccess;
  readonly host: HostPaths;
  readonly version: string;
  /** Where the images are pulled and laid out (default os.tmpdir()); removed by {@link PreparedPreload.remove}. */
  readonly workDir?: string;
  readonly log: (line: string) => void;
}

/** A preload laid out in a host directory exactly as `<state root>/preload` on the card. */
export interface PreparedPreload {
  readonly dir: string;
  readonly images: readonly string[];
  /** What the images take once the board has loaded them (unpacked layers), besides their blobs. */
  readonly unpackedBytes: number;
  remove(): void;
}

/**
 * Pulls every image the app names for `platforms` (the card's: {@link cardPlatforms}; a service's
 * `platform` wins) into a private state root, and writes them as an OCI layout beside the app's desired
 * state (berth save's OCI format, unpacked: the board reads the blobs in place).
 */
export async function preparePreload(o: PreloadOptions, platforms: readonly string[]): Promise<PreparedPreload> {
  const work = fs.mkdtempSync(path.join(o.workDir ?? os.tmpdir(), 'berth-preload-'));
  const remove = (): void => fs.rmSync(work, { recursive: true, force: true });
  try {
    const dir = path.join(work, PRELOAD_DIR);
    const layout = path.join(dir, PRELOAD_IMAGES_DIR);
    fs.mkdirSync(layout, { recursive: true });
    const state = path.join(work, 'state');
    const images = await withRoot({ root: state, host: o.host, env: o.access.env, version: o.version }, async (root) => {
      const service = root.images();
      const names: string[] = [];
      for (const svc of o.app.services.values()) {
        const want = svc.platform !== undefined ? [svc.platform] : platforms;
        o.log(`preload: pulling ${svc.image} (${want.join(', ')}) for service ${svc.name}`);
        const pulled = await service.pull(openRegistryClient(o.access, svc.image, true), { reference: svc.image, platforms: want.map(parsePlatform), parallel: 3 });
        if (!names.includes(pulled.image.name)) names.push(pulled.image.name);
      }
      const tar = new PassThrough();
      await Promise.all([service.save(names, 'oci', tar), unpackArchive(tar, layout)]);
      return names;
    });
    fs.writeFileSync(path.join(dir, PRELOAD_APP_FILE), `${JSON.stringify(o.app.source)}\n`, { mode: 0o600 });
    return { dir, images, unpackedBytes: treeSize(path.join(state, 'snapshots')), remove };
  } catch (err) {
    remove();
    throw err;
  }
}

/** The card's entries for a prepared preload (root-only, as the rest of the state root) and the bytes they take in `blockSize` blocks. */
function preloadEntries(p: PreparedPreload, blockSize: number): { entries: Ext4Install[]; bytes: number } {
  const entries: Ext4Install[] = [{ kind: 'dir', path: STATE_ROOT, perm: 0o700 }];
  let bytes = 0;
  const add = (host: string, dest: string): void => {
    const st = fs.statSync(host);
    // A block of metadata per entry besides its data blocks: a safe margin for inodes and directories.
    bytes += (Math.ceil(st.size / blockSize) + 1) * blockSize;
    if (!st.isDirectory()) {
      entries.push({ kind: 'file', path: dest, perm: 0o600, source: host });
      return;
    }
    entries.push({ kind: 'dir', path: dest, perm: 0o700 });
    for (const name of fs.readdirSync(host).sort()) add(path.join(host, name), path.posix.join(dest, name));
  };
  add(p.dir, CARD_PRELOAD_DIR);
  return { entries, bytes };
}

/**
 * Writes a prepared preload into the card's root file system, replacing any earlier one. Refuses
 * (`resource`, nothing written) when it does not fit, naming both sizes; says what the board needs
 * free on first boot to load it (the blobs again in its image store, plus the unpacked layers).
 */
export async function installPreload(root: Ext4Volume, p: PreparedPreload, log: (line: string) => void): Promise<void> {
  const { blockSize, freeBytes } = await root.space();
  const { entries, bytes } = preloadEntries(p, blockSize);
  if (bytes > freeBytes) {
    throw new BerthError('resource', `the preloaded images (${p.images.join(', ')}) need ${formatBytes(bytes)} in the card's root file system, which has ${formatBytes(freeBytes)} free`, {
      hint: 'grow the image\'s root partition first (truncate + parted resizepart + resize2fs on a copy), or preload smaller images',
    });
  }
  const firstBoot = bytes + p.unpackedBytes;
  log(`preloading ${p.images.join(', ')}: ${formatBytes(bytes)} on the card; loading them on first boot needs ${formatBytes(firstBoot)} more free (${formatBytes(freeBytes - bytes)} free in the image, before Raspberry Pi OS grows it to the card)`);
  await root.install(entries, await root.filesBelow(CARD_PRELOAD_DIR));
}
