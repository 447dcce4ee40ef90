// The archive reader's pure part: what images an unpacked OCI layout or docker-archive holds, and how
// their blobs are served to the puller (test/integration/verbs-archive.test.ts loads real ones).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { archivedImages } from '../../src/image/archive/load.js';
import { archiveTop } from '../../src/runtime/cp/copy.js';

const sha = (b: Buffer | string): string => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
let dir: string;
beforeEach(() => void (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-archive-unit-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const write = (name: string, body: string | Buffer): void => {
  fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
  fs.writeFileSync(path.join(dir, name), body);
};

describe('archivedImages', () => {
  it('makes an OCI manifest for a legacy docker-archive, its layers named by their digests, each RepoTag an image', async () => {
    const config = JSON.stringify({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
    const layer = Buffer.alloc(1024, 7);
    write('abc.json', config);
    write('l1/layer.tar', layer);
    // Docker de-duplicates identical layers with a symlink; it resolves inside the archive.
    fs.symlinkSync('../l1/layer.tar', path.join(dir, 'l2-layer.tar'));
    write('manifest.json', JSON.stringify([{ Config: 'abc.json', RepoTags: ['busybox:1', 'reg.test:5000/app:2'], Layers: ['l1/layer.tar', 'l2-layer.tar'] }]));
    const images = await archivedImages(dir);
    expect(images.map((i) => i.name)).toEqual(['docker.io/library/busybox:1', 'reg.test:5000/app:2']);
    const m = await images[0]!.source.getManifest('library/busybox', '1');
    const manifest = JSON.parse(m.bytes.toString()) as { config: { digest: string }; layers: Array<{ digest: string; mediaType: string; size: number }> };
    expect(m.digest).toBe(sha(m.bytes));
    expect(manifest.config.digest).toBe(sha(config));
    expect(manifest.layers).toEqual([0, 1].map(() => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: 1024 })));
    const blob = await images[0]!.source.openBlob('library/busybox', sha(layer), 1000);
    let n = 0;
    for await (const c of blob.stream) n += (c as Buffer).length;
    expect(n).toBe(24);
  });

  it('names what is missing or wrong: a layer, an unnamed index entry, an archive of neither format, a tampered manifest', async () => {
    write('manifest.json', JSON.stringify([{ Config: 'c.json', RepoTags: ['x:1'], Layers: [] }]));
    await expect(archivedImages(dir)).rejects.toThrow(/config c.json is missing/);
    fs.rmSync(path.join(dir, 'manifest.json'));
    await expect(archivedImages(dir)).rejects.toThrow(/not an image archive/);
    const manifest = Buffer.from('{"schemaVersion":2}');
    write(`blobs/sha256/${sha(manifest).slice(7)}`, '{"schemaVersion":2,"tampered":true}');
    write('index.json', JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }));
    await expect(archivedImages(dir)).rejects.toThrow(/has no name/);
    write('index.json', JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'reg.test/app:v1' } }] }));
    const [image] = await archivedImages(dir);
    expect(image!.name).toBe('reg.test/app:v1');
    await expect(image!.source.getManifest('app', 'v1')).rejects.toThrow(/digest mismatch/);
  });
});

describe('cp archive names', () => {
  it('are the base name, or nothing for DIR/. (its contents)', () => {
    expect(['/etc/hosts', '/data/', 'rel/dir', '/data/.', '.', '/'].map(archiveTop)).toEqual(['hosts', 'data', 'dir', '', '', '.']);
  });
});
