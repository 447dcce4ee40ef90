// issue 19: volumes, image tag, system df/prune through bin/berth on a fresh state root.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VerbsEnv } from '../helpers/verbs-env.js';

const env = new VerbsEnv('storage/busybox');
const berth = (...args: string[]) => env.berth(...args);

describe('berth volume', () => {
  it('create, ls, inspect; a container writes into it; rm refuses it while in use; prune takes unused ones', () => {
    expect(berth('volume', 'create', '-l', 'app=demo', 'data')).toMatchObject({ code: 0, stdout: 'data\n' });
    const [info] = JSON.parse(berth('volume', 'inspect', 'data').stdout) as Array<Record<string, unknown>>;
    expect(info).toMatchObject({ Name: 'data', Driver: 'local', Labels: { app: 'demo' }, Mountpoint: path.join(env.root, 'volumes', 'data', '_data') });
    expect(berth('run', '--name', 'writer', '-v', 'data:/data', env.img, 'sh', '-c', 'echo kept > /data/f').code).toBe(0);
    expect(fs.readFileSync(path.join(info!.Mountpoint as string, 'f'), 'utf8')).toBe('kept\n');
    // A volume named by -v alone exists too.
    expect(berth('run', '--rm', '-v', 'other:/o', env.img, 'true').code).toBe(0);
    expect(berth('volume', 'ls', '-q').stdout).toBe('data\nother\n');
    expect(berth('volume', 'rm', 'data')).toMatchObject({ code: 5, stderr: expect.stringContaining('volume data is in use by writer') });
    expect(berth('volume', 'rm', 'nope')).toMatchObject({ code: 4, stderr: expect.stringContaining('no such volume: nope') });
    expect(berth('volume', 'create', 'x')).toMatchObject({ code: 3, stderr: expect.stringContaining('invalid volume name "x"') });
    const prune = berth('volume', 'prune', '-f');
    expect(prune).toMatchObject({ code: 0, stdout: expect.stringContaining('Deleted Volumes:\nother\n') });
    expect(berth('rm', 'writer').code).toBe(0);
    expect(berth('volume', 'rm', 'data')).toMatchObject({ code: 0, stdout: 'data\n' });
    expect(berth('volume', 'ls', '--json').stdout).toBe('[]\n');
  });
});

describe('berth image tag', () => {
  it('names the same image twice; a container runs from the new name; removing one name keeps the other', () => {
    expect(berth('image', 'tag', env.img, 'local/mine:1').code).toBe(0);
    const list = JSON.parse(berth('images', '--json').stdout) as Array<{ name: string; manifestDigest: string }>;
    const mine = list.find((i) => i.name === 'docker.io/local/mine:1');
    expect(mine?.manifestDigest).toBe(list.find((i) => i.name === env.img)?.manifestDigest);
    expect(berth('run', '--rm', 'local/mine:1', 'echo', 'tagged')).toMatchObject({ code: 0, stdout: 'tagged\n' });
    expect(berth('image', 'tag', env.img, 'local/mine@sha256:' + 'a'.repeat(64))).toMatchObject({ code: 3, stderr: expect.stringContaining('cannot tag with a digest') });
    expect(berth('tag', 'no/such:image', 'local/x:1')).toMatchObject({ code: 4 });
    expect(berth('rmi', 'local/mine:1').code).toBe(0);
    expect(berth('run', '--rm', env.img, 'true').code).toBe(0);
  });
});

describe('berth system', () => {
  it('df counts images, containers and volumes; prune removes stopped containers and, asked, unused volumes and images', () => {
    expect(berth('run', '--name', 'stopped', '-v', 'vol1:/v', env.img, 'sh', '-c', 'head -c 100000 /dev/zero > /big').code).toBe(0);
    const df = JSON.parse(berth('system', 'df', '--json').stdout) as Array<{ type: string; total: number; active: number; size: number; reclaimable: number }>;
    expect(df.find((r) => r.type === 'Images')).toMatchObject({ total: 1, active: 1 });
    const ctr = df.find((r) => r.type === 'Containers')!;
    expect(ctr).toMatchObject({ total: 1, active: 0 });
    expect(ctr.size).toBeGreaterThanOrEqual(100_000);
    expect(ctr.reclaimable).toBe(ctr.size);
    expect(df.find((r) => r.type === 'Local Volumes')).toMatchObject({ total: 1, active: 1 });
    expect(berth('system', 'df').stdout).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\nImages\s+1\s+1/);
    const r = JSON.parse(berth('system', 'prune', '-f', '--volumes', '--json').stdout) as { containers: string[]; volumes: string[]; images: string[] };
    expect(r).toMatchObject({ containers: ['stopped'], volumes: ['vol1'], images: [] });
    expect(JSON.parse(berth('system', 'prune', '-a', '--json').stdout)).toMatchObject({ images: [env.img] });
    expect(JSON.parse(berth('images', '--json').stdout)).toEqual([]);
  });
});
