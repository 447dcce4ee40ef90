import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../errors.js';
import { writeFileAtomic } from '../host/fsync.js';
import { treeSize } from '../host/tree-size.js';
import { validateVolumeName, volumeDataPath } from './options.js';
import type { ContainerRecord } from './records.js';

/** docker volume inspect's shape. */
export interface VolumeInfo {
  readonly Name: string;
  readonly Driver: 'local';
  readonly Mountpoint: string;
  readonly CreatedAt: string;
  readonly Labels: Readonly<Record<string, string>>;
  readonly Scope: 'local';
  readonly Options: Readonly<Record<string, string>>;
}

/** What berth keeps of a volume besides its data: `<root>/volumes/<name>/volume.json`. */
interface VolumeMeta {
  readonly createdAt: string;
  readonly labels: Readonly<Record<string, string>>;
}

const META = 'volume.json';

/**
 * Named volumes: `<root>/volumes/<name>/_data` (volumeDataPath), created by `volume create` or on first
 * use by a container (`-v NAME:/path`, which leaves no volume.json: its creation time is the
 * directory's). Which containers use a volume is asked of `containers` each time, so nothing is cached.
 */
export class Volumes {
  constructor(private readonly root: string, private readonly containers: () => readonly ContainerRecord[]) {}

  private dir(name: string): string {
    return path.dirname(volumeDataPath(this.root, name));
  }

  /** docker volume create: idempotent for an existing name (its labels stay, as docker). */
  create(name: string, labels: Readonly<Record<string, string>> = {}): VolumeInfo {
    validateVolumeName(name);
    const data = volumeDataPath(this.root, name);
    if (!fs.existsSync(data)) {
      fs.mkdirSync(data, { recursive: true, mode: 0o755 });
      writeFileAtomic(path.join(this.dir(name), META), JSON.stringify({ createdAt: new Date().toISOString(), labels } satisfies VolumeMeta), 0o644);
    }
    return this.inspect(name);
  }

  /** The volumes' names, without reading their metadata (what the deployer plans with). */
  names(): ReadonlySet<string> {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(this.root, 'volumes'));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return new Set();
      throw err;
    }
    return new Set(names.filter((n) => fs.existsSync(path.join(this.root, 'volumes', n, '_data'))).sort());
  }

  list(): VolumeInfo[] {
    return [...this.names()].map((n) => this.inspect(n));
  }

  inspect(name: string): VolumeInfo {
    validateVolumeName(name);
    const data = volumeDataPath(this.root, name);
    let st: fs.Stats;
    try {
      st = fs.statSync(data);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new BerthError('notFound', `no such volume: ${name}`);
      throw err;
    }
    let meta: VolumeMeta | undefined;
    try {
      meta = JSON.parse(fs.readFileSync(path.join(this.dir(name), META), 'utf8')) as VolumeMeta;
    } catch {
      meta = undefined;
    }
    return { Name: name, Driver: 'local', Mountpoint: data, CreatedAt: meta?.createdAt ?? st.birthtime.toISOString(), Labels: meta?.labels ?? {}, Scope: 'local', Options: {} };
  }

  /** Names of the containers (any state) that mount `name`. */
  users(name: string): string[] {
    return this.containers().filter((c) => c.options.volumes.some((v) => v.kind === 'volume' && v.source === name)).map((c) => c.name);
  }

  /** docker volume rm: a volume some container mounts is refused, naming them (docker: even with -f). */
  remove(name: string): void {
    this.inspect(name);
    const users = this.users(name);
    if (users.length > 0) throw new BerthError('conflict', `volume ${name} is in use by ${users.join(', ')}`, { hint: `berth rm ${users.join(' ')} first` });
    fs.rmSync(this.dir(name), { recursive: true, force: true });
  }

  /** docker volume prune -a: removes every volume no container mounts; returns their names and the bytes freed. */
  prune(): { removed: string[]; bytes: number } {
    const removed: string[] = [];
    let bytes = 0;
    for (const v of this.list()) {
      if (this.users(v.Name).length > 0) continue;
      bytes += treeSize(v.Mountpoint);
      fs.rmSync(this.dir(v.Name), { recursive: true, force: true });
      removed.push(v.Name);
    }
    return { removed, bytes };
  }

  /** Bytes a volume's data takes (for system df). */
  size(name: string): number {
    return treeSize(volumeDataPath(this.root, name));
  }
}
