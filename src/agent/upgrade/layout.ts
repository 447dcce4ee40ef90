/**
 * The install prefix of the agent (default /opt/berth; docs/upgrade.md §2): versions side by side,
 * `current` and `previous` symlinks switched by rename, and the trial/result records the launcher
 * reads. Every change is one rename or unlink in a fsynced directory, so a power cut at any instant
 * leaves either the old state or the new one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../../errors.js';
import { fsyncDir } from '../../host/fsync.js';
import { readRecordFile, toResult, toTrial, writeRecordFile, type TrialRecord, type UpgradeResult } from './records.js';

export const DEFAULT_PREFIX = '/opt/berth';
const NAME = /^[\w.+-]{1,100}$/;

export class InstallLayout {
  readonly versions: string;
  readonly upgradeDir: string;

  constructor(readonly prefix: string) {
    this.versions = path.join(prefix, 'versions');
    this.upgradeDir = path.join(prefix, 'upgrade');
  }

  get trialFile(): string {
    return path.join(this.upgradeDir, 'trial');
  }

  get resultFile(): string {
    return path.join(this.upgradeDir, 'result');
  }

  get progressFile(): string {
    return path.join(this.upgradeDir, 'progress');
  }

  get contentDir(): string {
    return path.join(this.upgradeDir, 'content');
  }

  /** Makes versions/ and upgrade/ (root-only: what is in them decides what runs as root). */
  ensure(): void {
    fs.mkdirSync(this.versions, { recursive: true, mode: 0o755 });
    fs.mkdirSync(this.upgradeDir, { recursive: true, mode: 0o700 });
  }

  versionDir(name: string): string {
    if (!NAME.test(name)) throw new BerthError('invalid', `"${name}" is not a version directory name`);
    return path.join(this.versions, name);
  }

  /** The version directory name a link (current, previous) points to; undefined when it is absent. */
  linked(link: 'current' | 'previous'): string | undefined {
    try {
      return path.basename(fs.readlinkSync(path.join(this.prefix, link)));
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'EINVAL')) return undefined;
      throw err;
    }
  }

  installed(): string[] {
    try {
      return fs.readdirSync(this.versions).filter((n) => NAME.test(n) && !n.endsWith('.tmp')).sort();
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
  }

  /** Points `link` at versions/<name>: a new symlink renamed over the old one (atomic), the rename fsynced. */
  point(link: 'current' | 'previous', name: string): void {
    if (!fs.existsSync(this.versionDir(name))) throw new BerthError('notFound', `version ${name} is not installed under ${this.versions}`);
    const tmp = path.join(this.prefix, `.${link}.tmp`);
    fs.rmSync(tmp, { force: true });
    fs.symlinkSync(path.join('versions', name), tmp);
    fs.renameSync(tmp, path.join(this.prefix, link));
    fsyncDir(this.prefix);
  }

  /** Removes every version but `keep` (and half-unpacked `.tmp` leftovers); returns what it removed. */
  prune(keep: readonly string[]): string[] {
    const removed: string[] = [];
    let names: string[];
    try {
      names = fs.readdirSync(this.versions);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return removed;
      throw err;
    }
    for (const n of names) {
      if (keep.includes(n)) continue;
      fs.rmSync(path.join(this.versions, n), { recursive: true, force: true });
      removed.push(n);
    }
    return removed;
  }

  trial(): TrialRecord | undefined {
    return toTrial(readRecordFile(this.trialFile));
  }

  writeTrial(t: TrialRecord): void {
    writeRecordFile(this.trialFile, { ...t });
  }

  /** The confirmation: one unlink decides that the version on trial stays. */
  removeTrial(): void {
    fs.rmSync(this.trialFile, { force: true });
    fsyncDir(this.upgradeDir);
  }

  result(): UpgradeResult | undefined {
    return toResult(readRecordFile(this.resultFile));
  }

  writeResult(r: UpgradeResult): void {
    writeRecordFile(this.resultFile, { ...r });
  }

  /** How far the agent on trial got: not durable (a lost line only makes a rollback's cause vaguer). */
  writeProgress(stage: string): void {
    fs.writeFileSync(this.progressFile, `${stage}\n`);
  }
}
