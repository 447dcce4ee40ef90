import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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
async function until(fn: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !fn(); i++) await sleep(50);
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

  it('one writer per partial: a second ingest in this process is a conflict until the first closes', async () => {
    const s = store();
    const w = await s.ingest(digest, data.length);
    w.write(data.subarray(0, 100));
    await expect(s.ingest(digest, data.length)).rejects.toThrow(/being downloaded by another pull/);
    expect(s.removePartial(s.partials()[0]!.file)).toBe(false); // prune leaves it to its writer
    await w.close();
    const again = await s.ingest(digest, data.length);
    expect(again.offset).toBe(100);
    await again.close();
  });

  it('the lock is the kernel\'s: held by a live process it conflicts, and it dies with a kill -9', async () => {
    const s = store();
    const partial = path.join(s.dir, 'ingest', digest.replace(':', '-'));
    // flock(1) takes the same kind of lock on the partial a pull would, then waits for its sleep (which
    // does not inherit the lock: --close). Its own process group, so the kill reaches the sleep too.
    const holder = spawn('flock', ['--exclusive', '--nonblock', '--close', partial, 'sleep', '60'], { stdio: 'ignore', detached: true });
    try {
      await until(() => fs.existsSync(partial) && spawnSync('flock', ['--nonblock', partial, 'true']).status === 1);
      await expect(s.ingest(digest, data.length)).rejects.toThrow(/being downloaded by another pull/);
    } finally {
      process.kill(-holder.pid!, 'SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    }
    const again = await s.ingest(digest, data.length);
    expect(again.offset).toBe(0);
    await again.close();
  });

  it('a pid lock file left by an older version blocks nothing, even naming a live process (our own)', async () => {
    const s = store();
    const first = await s.ingest(digest, data.length);
    first.write(data.subarray(0, 4000));
    await first.close();
    const partial = s.partials()[0]!.file;
    fs.writeFileSync(`${partial}.lock`, String(process.pid));
    const resumed = await s.ingest(digest, data.length);
    expect(resumed.offset).toBe(4000);
    resumed.write(data.subarray(4000));
    await resumed.commit();
    expect(fs.readdirSync(path.join(s.dir, 'ingest'))).toEqual([]);
  });

  it('put verifies small blobs', () => {
    const s = store();
    expect(() => s.put(digest, Buffer.from('other'))).toThrow(/digest mismatch/);
    s.put(digest, data);
    expect(s.list()).toEqual([digest]);
  });
});
