// issue 19's offline images: save → rmi → load → run with the registry stopped; a tampered layer refused
// naming it; podman (a peer) loads what berth saves and berth loads what podman saves, when it is installed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { MANIFEST_ACCEPT } from '../helpers/images/oci.js';
import { VerbsEnv } from '../helpers/verbs-env.js';

const env = new VerbsEnv('archive/busybox');
const berth = (...args: string[]) => env.berth(...args);
let work: string;
let registryHost: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-archive-'));
  registryHost = env.registry.host;
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** The entries of a tar file: name → bytes. */
async function readTar(file: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const ex = tar.extract();
  const done = (async () => {
    for await (const e of ex) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      out.set(e.header.name, Buffer.concat(chunks));
    }
  })();
  fs.createReadStream(file).pipe(ex);
  await done;
  return out;
}

async function writeTar(file: string, entries: Map<string, Buffer>): Promise<void> {
  const pack = tar.pack();
  for (const [name, body] of entries) pack.entry({ name }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  fs.writeFileSync(file, Buffer.concat(chunks));
}

/**
 * An OCI image layout of a multi-platform image as another tool would make it from a registry: the
 * index, every platform's manifest, config and layers, named by containerd's annotation.
 */
async function layoutFromRegistry(repo: string, tag: string, name: string, file: string): Promise<string> {
  const get = async (p: string, accept?: string): Promise<Buffer> => {
    const res = await fetch(`${env.registry.url}/v2/${repo}/${p}`, { ...(accept && { headers: { Accept: accept } }) });
    if (res.status !== 200) throw new Error(`GET ${p}: ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  };
  const entries = new Map<string, Buffer>();
  const blob = (digest: string, bytes: Buffer): void => void entries.set(`blobs/${digest.replace(':', '/')}`, bytes);
  const indexBytes = await get(`manifests/${tag}`, MANIFEST_ACCEPT);
  const index = JSON.parse(indexBytes.toString()) as { mediaType: string; manifests: Array<{ digest: string }> };
  const indexDigest = `sha256:${(await import('node:crypto')).createHash('sha256').update(indexBytes).digest('hex')}`;
  blob(indexDigest, indexBytes);
  for (const m of index.manifests) {
    const bytes = await get(`manifests/${m.digest}`, MANIFEST_ACCEPT);
    blob(m.digest, bytes);
    const manifest = JSON.parse(bytes.toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
    for (const d of [manifest.config, ...manifest.layers]) if (!entries.has(`blobs/${d.digest.replace(':', '/')}`)) blob(d.digest, await get(`blobs/${d.digest}`));
  }
  entries.set('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  entries.set('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: index.mediaType, digest: indexDigest, size: indexBytes.length, annotations: { 'io.containerd.image.name': name } }] })));
  await writeTar(file, entries);
  return indexDigest;
}

describe('berth save / load', () => {
  it('loads a multi-platform OCI layout: the board\'s platform by default, another with --platform, the index kept', async () => {
    await pushBusyboxImage(env.registry, 'multi/busybox', 'v1');
    const file = path.join(work, 'multi.tar');
    const indexDigest = await layoutFromRegistry('multi/busybox', 'v1', 'example.test/multi/busybox:v1', file);
    expect(berth('load', '-i', file)).toMatchObject({ code: 0, stdout: 'Loaded image: example.test/multi/busybox:v1\n' });
    expect(JSON.parse(berth('image', 'inspect', 'example.test/multi/busybox:v1').stdout)).toMatchObject({ indexDigest });
    expect(berth('run', '--rm', 'example.test/multi/busybox:v1', 'echo', 'multi')).toMatchObject({ code: 0, stdout: 'multi\n' });
    expect(berth('load', '--platform', 'linux/arm64', '-i', file).code).toBe(0);
    expect(JSON.parse(berth('image', 'inspect', 'example.test/multi/busybox:v1').stdout)).toMatchObject({ platform: 'linux/arm64', indexDigest });
    expect(berth('rmi', 'example.test/multi/busybox:v1').code).toBe(0);
  });

  it('saves docker-archive and OCI layouts, loads them back with the registry stopped, and runs the image', async () => {
    const docker = path.join(work, 'img.tar');
    const oci = path.join(work, 'img-oci.tar');
    expect(berth('image', 'tag', env.img, 'offline/app:2').code).toBe(0);
    expect(berth('save', '-o', docker, env.img, 'offline/app:2').code).toBe(0);
    expect(berth('image', 'save', '--format', 'oci', '-o', oci, env.img).code).toBe(0);
    const entries = await readTar(docker);
    const manifest = JSON.parse(entries.get('manifest.json')!.toString()) as Array<{ RepoTags: string[]; Layers: string[] }>;
    expect(manifest.map((m) => m.RepoTags)).toEqual([[`${env.img.replace(/:v1$/, '')}:v1`], ['offline/app:2']]);
    for (const l of manifest[0]!.Layers) expect(entries.has(l)).toBe(true);
    expect(JSON.parse(entries.get('oci-layout')!.toString())).toEqual({ imageLayoutVersion: '1.0.0' });
    const ociEntries = await readTar(oci);
    expect(ociEntries.has('manifest.json')).toBe(false);
    expect(ociEntries.has('index.json')).toBe(true);

    const digest = (JSON.parse(berth('images', '--json').stdout) as Array<{ name: string; manifestDigest: string }>).find((i) => i.name === env.img)!.manifestDigest;
    await env.registry.stop();
    expect(berth('rmi', env.img, 'offline/app:2').code).toBe(0);
    expect(berth('load', '-i', docker)).toMatchObject({ code: 0, stdout: `Loaded image: ${env.img}\nLoaded image: docker.io/offline/app:2\n` });
    expect(berth('run', '--rm', 'offline/app:2', 'echo', 'offline')).toMatchObject({ code: 0, stdout: 'offline\n' });
    expect(berth('rmi', env.img, 'offline/app:2').code).toBe(0);
    expect(berth('image', 'prune').code).toBe(0);
    expect(env.berthIn(fs.readFileSync(oci), 'load')).toMatchObject({ code: 0, stdout: `Loaded image: ${env.img}\n` });
    expect((JSON.parse(berth('images', '--json').stdout) as Array<{ manifestDigest: string }>)[0]!.manifestDigest).toBe(digest);
    expect(berth('run', '--rm', env.img, 'echo', 'again')).toMatchObject({ code: 0, stdout: 'again\n' });
  });

  it('refuses an archive whose layer was tampered with, naming the layer, and records nothing', async () => {
    const good = await readTar(path.join(work, 'img-oci.tar'));
    const index = JSON.parse(good.get('index.json')!.toString()) as { manifests: Array<{ digest: string }> };
    const manifest = JSON.parse(good.get(`blobs/${index.manifests[0]!.digest.replace(':', '/')}`)!.toString()) as { layers: Array<{ digest: string }> };
    const layer = manifest.layers[0]!.digest;
    const bad = new Map(good);
    const bytes = Buffer.from(bad.get(`blobs/${layer.replace(':', '/')}`)!);
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
    bad.set(`blobs/${layer.replace(':', '/')}`, bytes);
    const file = path.join(work, 'tampered.tar');
    await writeTar(file, bad);
    expect(berth('rmi', env.img).code).toBe(0);
    expect(berth('image', 'prune').code).toBe(0);
    const r = berth('load', '-i', file);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(layer);
    expect(JSON.parse(berth('images', '--json').stdout)).toEqual([]);
    expect(berth('load', '-i', path.join(work, 'nope.tar'))).toMatchObject({ code: 4 });
  });

  it('interoperates with podman both ways (skipped without podman)', async (ctx) => {
    if (spawnSync('podman', ['--version']).status !== 0) return ctx.skip();
    const proot = path.join(work, 'podman');
    const podman = (...args: string[]) => spawnSync('podman', ['--root', path.join(proot, 'root'), '--runroot', path.join(proot, 'run'), '--storage-driver', 'vfs', '--events-backend', 'none', '--cgroup-manager', 'cgroupfs', ...args], { encoding: 'utf8' });
    // berth's docker-archive into podman.
    const loaded = podman('load', '-i', path.join(work, 'img.tar'));
    expect(loaded.status, loaded.stderr).toBe(0);
    const names = podman('images', '--format', '{{.Repository}}:{{.Tag}}').stdout.split('\n');
    const app = names.find((n) => n.endsWith('offline/app:2'));
    expect(app, names.join(', ')).toBeDefined();
    // podman's OCI archive (made from what it loaded, no registry) into berth.
    const fromPodman = path.join(work, 'podman-oci.tar');
    const saved = podman('save', '--format', 'oci-archive', '-o', fromPodman, app!);
    expect(saved.status, saved.stderr).toBe(0);
    const r = berth('load', '-i', fromPodman);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Loaded image: .*offline\/app:2/);
    const name = /Loaded image: (\S+)/.exec(r.stdout)![1]!;
    expect(berth('run', '--rm', name, 'echo', 'from podman')).toMatchObject({ code: 0, stdout: 'from podman\n' });
    podman('rmi', '-af');
    void registryHost;
  });
});
