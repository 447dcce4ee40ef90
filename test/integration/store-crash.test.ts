import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StateStore } from '../../src/store/store.js';
import { REPO, requireBuilt } from '../helpers/dist.js';

const BATCH = 50;
let dir: string;
beforeAll(() => {
  requireBuilt();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-crash-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs the writer until it has acknowledged `atLeast` more commits, waits a random moment, then SIGKILLs it. */
async function runAndKill(root: string, atLeast: number): Promise<number> {
  const child = spawn(process.execPath, [path.join(REPO, 'test/helpers/procs/store-writer.mjs'), root, String(BATCH)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let acked = 0;
  let first: number | undefined;
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        acked = Number(l);
        first ??= acked;
        if (acked - first + 1 >= atLeast) resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`writer exited early (${code}): ${stderr}`)));
  });
  // Land the kill at an arbitrary point inside the next transactions.
  await new Promise((r) => setTimeout(r, Math.random() * 20));
  child.kill('SIGKILL');
  await exited;
  return acked;
}

describe('state store under kill -9', () => {
  it('keeps every acknowledged commit and never a partial one, across repeated kills', async () => {
    const root = path.join(dir, 'root');
    for (let round = 0; round < 6; round++) {
      const acked = await runAndKill(root, 30);
      const s = StateStore.open(root);
      expect(s.integrityProblems()).toEqual([]);
      const commits = Number(s.getMeta('commits'));
      const rows = (s.db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
      // Durable: what the writer was told is committed is there; at most the one in flight beyond it.
      expect(commits).toBeGreaterThanOrEqual(acked);
      expect(commits).toBeLessThanOrEqual(acked + 1);
      // Atomic: the batch and its counter commit together or not at all.
      expect(rows).toBe(commits * BATCH);
      s.close();
    }
  });
});
