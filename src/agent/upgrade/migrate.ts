/**
 * Cards flashed before the launcher (issue 20) hold the bundle flat in /opt/berth (bin/berth, dist/, node/…)
 * and their unit starts `/opt/berth/bin/berth agent`. Their agent cannot be rolled back by anything, so
 * before its first upgrade it converts the card to the launcher layout (docs/upgrade.md §2), in steps
 * that are each one atomic rename, in an order where a power cut at any instant leaves a card that boots
 * into a working agent:
 *
 *   1. versions/<version>-flat: the flat bundle again, as hard links (no space; nothing is rewritten in place)
 *   2. launch/berth-launch from the flat bundle's scripts/berth-launch
 *   3. current -> versions/<version>-flat
 *   4. /usr/local/bin/berth -> <prefix>/current/bin/berth (only if it pointed at the flat bin/berth)
 *   5. the unit's ExecStart -> the launcher, then `systemctl daemon-reload`: the commit point
 *
 * Until 5 systemd still starts the flat bin/berth (untouched); after it, the launcher starts `current`,
 * the same files. Every step is skipped when already done, so an interrupted migration resumes with the
 * next upgrade request. Then the ordinary upgrade (Upgrader) runs; the flat files left at the top of the
 * prefix are removed once the new version is confirmed (removeFlatLeftovers).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { BerthError, isErrno } from '../../errors.js';
import { agentUnit } from '../../flash/payload.js';
import { fsyncDir, writeFileAtomic } from '../../host/fsync.js';
import { InstallLayout } from './layout.js';
import type { UpgradeContext } from './trial.js';

/** What the launcher layout keeps at the top of the prefix; everything else there is the flat bundle. */
const LAYOUT_NAMES: ReadonlySet<string> = new Set(['launch', 'versions', 'upgrade', 'current', 'previous']);
export const DEFAULT_UNIT_FILE = '/etc/systemd/system/berth-agent.service';
const FLAT_SUFFIX = '-flat';

export interface FlatInstallDeps {
  readonly layout: InstallLayout;
  /** The berth version this flat bundle is (package.json): names its version directory. */
  readonly version: string;
  /** The agent's systemd unit. */
  readonly unitFile: string;
  /** The CLI on PATH (flash made it a symlink to <prefix>/bin/berth). */
  readonly cliLink: string;
  /** Makes systemd read the rewritten unit (production: systemctl daemon-reload). */
  readonly reload: () => Promise<void>;
  readonly log: (event: string, detail: Record<string, unknown>) => void;
}

/**
 * Whether the agent runs from a flat install under `prefix`: the bundle is there (berth-bundle.json,
 * bin/berth), no `current` link, and the unit still starts `<prefix>/bin/berth agent`.
 */
export function isFlatInstall(prefix: string, unitFile: string): boolean {
  if (!fs.existsSync(path.join(prefix, 'berth-bundle.json')) || !fs.existsSync(path.join(prefix, 'bin', 'berth'))) return false;
  if (fs.existsSync(path.join(prefix, 'current'))) return false;
  let unit: string;
  try {
    unit = fs.readFileSync(unitFile, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
  return new RegExp(`^ExecStart=${escape(path.join(prefix, 'bin', 'berth'))} agent\\b`, 'm').test(unit);
}

/**
 * For an agent not started by the launcher: when it runs from a flat install at `packageRoot`, the
 * install (for reports and the Upgrader) and the conversion to run before its first upgrade.
 * BERTH_UNIT_FILE names the unit when it is not systemd's (tests).
 */
export function flatUpgradeFromEnv(
  env: NodeJS.ProcessEnv, packageRoot: string, version: string, log: FlatInstallDeps['log'],
): { readonly context: UpgradeContext; readonly prepare: () => Promise<void> } | undefined {
  const unitFile = env.BERTH_UNIT_FILE || DEFAULT_UNIT_FILE;
  if (!isFlatInstall(packageRoot, unitFile)) return undefined;
  const layout = new InstallLayout(packageRoot);
  const migration = new FlatMigration({ layout, version, unitFile, cliLink: '/usr/local/bin/berth', reload: systemdReload(unitFile), log });
  return { context: { layout, running: undefined, trialLauncher: undefined }, prepare: () => migration.run() };
}

/** systemctl daemon-reload, for a unit where systemd reads units; a unit file elsewhere is no unit of systemd's. */
export function systemdReload(unitFile: string): () => Promise<void> {
  return async () => {
    if (!unitFile.startsWith('/etc/systemd/')) return;
    await promisify(execFile)('systemctl', ['daemon-reload']);
  };
}

export class FlatMigration {
  constructor(private readonly d: FlatInstallDeps) {}

  /** The version directory the flat bundle becomes. */
  get versionName(): string {
    return `${this.d.version}${FLAT_SUFFIX}`;
  }

  /** Steps 1–5 above; each is skipped when done. Throws BerthError(host) when the bundle lacks the launcher. */
  async run(): Promise<void> {
    const { layout, log } = this.d;
    const prefix = layout.prefix;
    const launcherSource = path.join(prefix, 'scripts', 'berth-launch');
    if (!fs.existsSync(launcherSource)) {
      throw new BerthError('host', `${prefix} holds a berth bundle without scripts/berth-launch: this agent cannot install the launcher it needs to update itself`, {
        hint: 'reflash the card with a current berth (berth flash), which installs the launcher',
      });
    }
    layout.ensure();
    const name = this.versionName;
    const dir = layout.versionDir(name);
    if (!fs.existsSync(dir)) {
      const tmp = `${dir}.tmp`;
      fs.rmSync(tmp, { recursive: true, force: true });
      fs.mkdirSync(tmp, { mode: 0o755 });
      for (const n of fs.readdirSync(prefix)) if (!LAYOUT_NAMES.has(n) && !n.startsWith('.')) linkTree(path.join(prefix, n), path.join(tmp, n));
      fs.renameSync(tmp, dir);
      fsyncDir(layout.versions);
    }
    fs.mkdirSync(path.join(prefix, 'launch'), { recursive: true, mode: 0o755 });
    writeFileAtomic(path.join(prefix, 'launch', 'berth-launch'), fs.readFileSync(launcherSource), 0o755);
    if (layout.linked('current') === undefined) layout.point('current', name);
    this.repointCli();
    const unit = fs.readFileSync(this.d.unitFile, 'utf8');
    const next = agentUnit(unit, prefix);
    if (next !== unit) writeFileAtomic(this.d.unitFile, next, 0o644);
    // Every time, not only after the rewrite: a reload that failed after it would leave systemd restarting
    // the flat bin/berth from its cached unit.
    await this.d.reload();
    log('upgrade-migrated', { prefix, version: name, unit: this.d.unitFile });
  }

  private repointCli(): void {
    const { cliLink, layout } = this.d;
    let target: string;
    try {
      target = fs.readlinkSync(cliLink);
    } catch {
      return; // absent, or not a link: not flash's, left alone
    }
    if (target !== path.join(layout.prefix, 'bin', 'berth')) return;
    const tmp = path.join(path.dirname(cliLink), `.${path.basename(cliLink)}.tmp`);
    fs.rmSync(tmp, { force: true });
    fs.symlinkSync(path.join(layout.prefix, 'current', 'bin', 'berth'), tmp);
    fs.renameSync(tmp, cliLink);
    fsyncDir(path.dirname(cliLink));
  }
}

/**
 * After a confirmed upgrade from a migrated card: the flat bundle's entries at the top of the prefix
 * (hard links of versions/<from>) go. Nothing to do for any other `from`.
 */
export function removeFlatLeftovers(layout: InstallLayout, from: string): string[] {
  if (!from.endsWith(FLAT_SUFFIX)) return [];
  const removed: string[] = [];
  for (const n of fs.readdirSync(layout.prefix)) {
    if (LAYOUT_NAMES.has(n) || n.startsWith('.')) continue;
    fs.rmSync(path.join(layout.prefix, n), { recursive: true, force: true });
    removed.push(n);
  }
  return removed;
}

/** A copy of `src` at `dest` whose files are hard links and whose symlinks say the same. */
function linkTree(src: string, dest: string): void {
  const st = fs.lstatSync(src);
  if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dest);
  else if (st.isDirectory()) {
    fs.mkdirSync(dest, { mode: st.mode & 0o7777 });
    for (const n of fs.readdirSync(src)) linkTree(path.join(src, n), path.join(dest, n));
  } else fs.linkSync(src, dest);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
