import fs from 'node:fs';
import path from 'node:path';
import { volumeDataPath } from '../../runtime/options.js';
import type { DeployVolumes } from './deployer.js';

/**
 * Named volumes as directories under the state root (`<root>/volumes/<name>/_data`, where the engine
 * mounts them from): the deployer's view until volumes get records of their own (`berth volume`,
 * issue 19), at which point the composition root hands the deployer that instead. Labels are not kept
 * yet: a deploy never removes a volume, so nothing reads them back.
 */
export class VolumeDirectories implements DeployVolumes {
  constructor(private readonly root: string) {}

  names(): ReadonlySet<string> {
    const dir = path.join(this.root, 'volumes');
    try {
      return new Set(fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
      throw err;
    }
  }

  create(name: string, _labels: Readonly<Record<string, string>>): void {
    fs.mkdirSync(volumeDataPath(this.root, name), { recursive: true, mode: 0o755 });
  }
}
