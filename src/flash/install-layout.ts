/**
 * The self-update install layout `berth flash` puts on a card (docs/upgrade.md §2), so the first
 * `berth fleet upgrade` finds what src/agent/upgrade/ expects:
 *
 *   /opt/berth/launch/berth-launch        systemd's ExecStart; outside versions/, never replaced by an upgrade
 *   /opt/berth/versions/<berth>-<hex12>/  the bundle
 *   /opt/berth/current -> versions/…      what the launcher starts
 *   /usr/local/bin/berth -> /opt/berth/current/bin/berth   the CLI follows the running version
 *
 * The version directory of a flashed bundle is named like an upgrade's (`<berth>-<12 hex>`), the hex
 * being a hash of the bundle's tree: a re-flash with another build of the same version gets another
 * directory, and no bundle index digest ever names it (so the first upgrade to any index runs).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_PREFIX } from '../agent/upgrade/layout.js';
import { BerthError, isErrno } from '../errors.js';
import type { BundleManifest } from './bundle.js';
import type { Ext4Install } from './ext4.js';

/** The install prefix on the card: the agent's default (src/agent/upgrade/layout.ts). */
export const INSTALL_PREFIX = DEFAULT_PREFIX;
/** The launcher under an install prefix (scripts/berth-launch, carried in every bundle since issue 20). */
export function launcherPath(prefix: string): string {
  return `${prefix}/launch/berth-launch`;
}
export const LAUNCHER_PATH = launcherPath(INSTALL_PREFIX);
/** Where the bundle carries the launcher. */
export const BUNDLED_LAUNCHER = 'scripts/berth-launch';

/**
 * sha256 over the bundle tree: each path (sorted), its kind, its executable bit and its content or
 * link target. Reads every byte once (about a second for a 120 MB bundle).
 */
export async function bundleTreeHash(bundleDir: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    const entries = (await fs.readdir(path.join(bundleDir, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of entries) {
      const r = path.posix.join(rel, d.name);
      const host = path.join(bundleDir, r);
      if (d.isDirectory()) {
        h.update(`d ${r}\0`);
        await walk(r);
      } else if (d.isSymbolicLink()) {
        h.update(`l ${r}\0${await fs.readlink(host)}\0`);
      } else if (d.isFile()) {
        const { mode, size } = await fs.stat(host);
        h.update(`f ${r}\0${mode & 0o111 ? 'x' : '-'}${size}\0`);
        for await (const chunk of createReadStream(host)) h.update(chunk as Buffer);
      }
    }
  };
  await walk('');
  return h.digest('hex');
}

/** versions/<name> for a flashed bundle: `<berth version>-<first 12 hex of its tree hash>`. */
export async function flashedVersionName(bundleDir: string, manifest: BundleManifest): Promise<string> {
  return `${manifest.berth}-${(await bundleTreeHash(bundleDir)).slice(0, 12)}`;
}

/**
 * The root file system entries of the layout: the launcher, the bundle under versions/<name>, and the
 * `current` and CLI links. `treeEntries` turns a bundle directory into entries under a destination
 * (payload.ts's bundleEntries). Throws BerthError(invalid) for a bundle without the launcher (built
 * before issue 20): such a card could never update itself.
 */
export async function layoutEntries(
  bundleDir: string, name: string, treeEntries: (bundleDir: string, dest: string) => Promise<Ext4Install[]>,
): Promise<Ext4Install[]> {
  const launcher = path.join(bundleDir, BUNDLED_LAUNCHER);
  try {
    await fs.access(launcher);
  } catch (err) {
    throw new BerthError(isErrno(err, 'ENOENT') ? 'invalid' : 'host', `agent bundle ${bundleDir} lacks ${BUNDLED_LAUNCHER}, so a card flashed with it could not update itself`, {
      cause: err, hint: 'rebuild the bundle with this berth (berth flash --build-bundle)',
    });
  }
  const versionDir = `${INSTALL_PREFIX}/versions/${name}`;
  return [
    { kind: 'dir', path: INSTALL_PREFIX, perm: 0o755 },
    { kind: 'dir', path: `${INSTALL_PREFIX}/launch`, perm: 0o755 },
    { kind: 'file', path: LAUNCHER_PATH, perm: 0o755, source: launcher },
    { kind: 'dir', path: `${INSTALL_PREFIX}/versions`, perm: 0o755 },
    ...(await treeEntries(bundleDir, versionDir)),
    // Absolute: debugfs takes absolute targets only; the launcher and InstallLayout read the basename.
    { kind: 'symlink', path: `${INSTALL_PREFIX}/current`, target: versionDir },
    { kind: 'symlink', path: '/usr/local/bin/berth', target: `${INSTALL_PREFIX}/current/bin/berth` },
  ];
}

/** What scripts/berth-launch runs on besides coreutils: Raspberry Pi OS has both (Debian's Essential set). */
export const LAUNCHER_TOOLS = ['bash', 'sed'] as const;

/**
 * The launcher's tools missing from an image (`has` looks a path up in its root file system). Without
 * them systemd cannot start the agent at all (status 203/EXEC on every try).
 */
export async function missingLauncherTools(has: (p: string) => Promise<boolean>): Promise<string[]> {
  const missing: string[] = [];
  for (const tool of LAUNCHER_TOOLS) if (!(await has(`/usr/bin/${tool}`)) && !(await has(`/bin/${tool}`))) missing.push(tool);
  return missing;
}
