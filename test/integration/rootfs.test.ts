import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hostPaths } from '../../src/host/paths.js';
import { parsePlatform } from '../../src/image/platform.js';
import { RegistryClient } from '../../src/image/registry/client.js';
import { BerthRoot } from '../../src/root.js';
import { isMountPoint, prepareRootfs, removeRootfs } from '../../src/runtime/rootfs.js';
import { pushBusyboxImage, tarOf } from '../helpers/images/build.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

let registry: RegistryInstance;

/** prepareRootfs, then the mount berth-monitor makes (--mount-overlay) when it returns overlay options. */
function prepareAndMount(...args: Parameters<typeof prepareRootfs>): ReturnType<typeof prepareRootfs> {
  const r = prepareRootfs(...args);
  if (r.overlayOptions !== undefined) execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', r.overlayOptions, r.rootfs]);
  return r;
}

let tmp: string;
let ref: string;
beforeAll(async () => {
  registry = await startRegistry();
  const upper = await tarOf([{ name: 'etc/.wh.group' }, { name: 'app/data', content: 'from image' }]);
  await pushBusyboxImage(registry, 'rootfs/app', 'v1', { arches: ['amd64'], extraLayers: [upper] });
  ref = `${registry.host}/rootfs/app:v1`;
});
afterAll(async () => registry?.stop());
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe.each(['overlay', 'copy'] as const)('container rootfs (%s)', (mode) => {
  it('shows the merged image, keeps container writes out of the image, and is removed cleanly', async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-rootfs-'));
    const root = new BerthRoot({ root: path.join(tmp, 'root'), host: hostPaths('/'), env: {}, version: 'test', snapshotMode: mode });
    try {
      const images = root.images();
      await images.pull(new RegistryClient(registry.host), { reference: ref, platforms: [parsePlatform('linux/amd64')], parallel: 2 });
      const chain = images.records.chain(ref);
      const dirA = path.join(tmp, 'containers', 'a');
      const dirB = path.join(tmp, 'containers', 'b');
      const a = prepareAndMount(images.snapshots, chain, dirA);
      const b = prepareAndMount(images.snapshots, chain, dirB);
      expect(a.overlayOptions !== undefined).toBe(mode === 'overlay');
      // idempotent: a root already mounted (or copied) is reused, with nothing left to mount
      expect(prepareRootfs(images.snapshots, chain, dirA)).toEqual({ rootfs: a.rootfs, mode });
      expect(fs.readFileSync(path.join(a.rootfs, 'app/data'), 'utf8')).toBe('from image');
      expect(fs.existsSync(path.join(a.rootfs, 'etc/group'))).toBe(false);
      expect(fs.existsSync(path.join(a.rootfs, 'bin/busybox'))).toBe(true);
      fs.writeFileSync(path.join(a.rootfs, 'app/data'), 'changed by a');
      fs.rmSync(path.join(a.rootfs, 'bin/busybox'));
      expect(fs.readFileSync(path.join(b.rootfs, 'app/data'), 'utf8')).toBe('from image');
      expect(fs.existsSync(path.join(b.rootfs, 'bin/busybox'))).toBe(true);
      for (const d of [dirA, dirB]) removeRootfs(d);
      expect(isMountPoint(a.rootfs)).toBe(false);
      expect(fs.existsSync(a.rootfs)).toBe(false);
      // The image itself is intact for the next container.
      const c = prepareAndMount(images.snapshots, chain, path.join(tmp, 'containers', 'c'));
      expect(fs.readFileSync(path.join(c.rootfs, 'app/data'), 'utf8')).toBe('from image');
      removeRootfs(path.join(tmp, 'containers', 'c'));
    } finally {
      root.close();
    }
  });
});
