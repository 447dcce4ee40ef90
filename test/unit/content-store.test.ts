import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ContentStore } from '../../src/image/content/store.js';
import { digestOf } from '../../src/image/digest.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function store(): ContentStore {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-content-'));
  dirs.push(d);
  return new ContentStore(d);
}
const data = Buffer.from('a'.repeat(10_000));
const digest = digestOf(data);

describe('ContentStore', () => {
  it('publishes a blob only after it verifies; resumes a partial ingest by rehashing it', async () => {
    const s = store();
    const first = await s.ingest(digest, data.length);
    first.write(data.subarray(0, 4000));
    await first.close();
    expect(s.has(digest)).toBe(false);
    const second = await s.ingest(digest, data.length);
    expect(second.offset).toBe(4000);
    second.write(data.subarray(4000));
    await second.commit();
    expect(s.read(digest)).toEqual(data);
    expect(s.partials()).toEqual([]);
    expect(fs.readdirSync(path.join(s.dir, 'ingest'))).toEqual([]);
  });

  it('a partial corrupted on disk (power loss) fails verification at commit and is discarded', async () => {
    const s = store();
    const w = await s.ingest(digest, data.length);
    w.write(data.subarray(0, 4000));
    await w.close();
    const partial = s.partials()[0]!.file;
    const fd = fs.openSync(partial, 'r+');
    fs.writeSync(fd, Buffer.from('zz'), 0, 2, 100);
    fs.closeSync(fd);
    const resumed = await s.ingest(digest, data.length);
    resumed.write(data.subarray(4000));
    await expect(resumed.commit()).rejects.toThrow(/failed verification/);
    expect(s.has(digest)).toBe(false);
    expect(s.partials()).toEqual([]);
  });

  it('refuses more bytes than the descriptor states', async () => {
    const w = await store().ingest(digest, 10);
    expect(() => w.write(data)).toThrow(/larger than the 10 bytes/);
  });

  it('one writer per partial: a live holder is a conflict, a dead one is taken over', async () => {
    const s = store();
    const w = await s.ingest(digest, data.length);
    await expect(s.ingest(digest, data.length)).rejects.toThrow(/being downloaded by another pull/);
    await w.close();
    // A lock left by a killed process: its pid no longer exists.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    fs.writeFileSync(`${s.partials()[0]!.file}.lock`, dead);
    const again = await s.ingest(digest, data.length);
    expect(again.offset).toBe(0);
    await again.close();
  });

  it('put verifies small blobs', () => {
    const s = store();
    expect(() => s.put(digest, Buffer.from('other'))).toThrow(/digest mismatch/);
    s.put(digest, data);
    expect(s.list()).toEqual([digest]);
  });
});
