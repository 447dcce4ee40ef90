// DirWatch: the wake-up behind `berth logs -f` and `berth run`'s wait for the exit. The safety poll is
// set far beyond the test timeout, so each wake-up here can only come from the watch itself.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DirWatch } from '../../src/host/dir-watch.js';

const NEVER = 3_600_000;
const dirs: string[] = [];
const watches: DirWatch[] = [];
afterEach(() => {
  for (const w of watches.splice(0)) w.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function setup(): { dir: string; watch: DirWatch } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-watch-'));
  dirs.push(dir);
  const watch = new DirWatch(dir, NEVER);
  watches.push(watch);
  return { dir, watch };
}

describe('DirWatch', () => {
  it('wakes a waiter when a file in the directory is written or renamed into it', async () => {
    const { dir, watch } = setup();
    const first = watch.wait();
    fs.appendFileSync(path.join(dir, 'container.log'), 'line\n');
    await first;
    const second = watch.wait();
    fs.writeFileSync(path.join(dir, 'exit.tmp'), '{}');
    fs.renameSync(path.join(dir, 'exit.tmp'), path.join(dir, 'exit'));
    await second;
  });

  it('remembers a change that came while nobody waited', async () => {
    const { dir, watch } = setup();
    // A second watcher on the same directory gets the same inotify event in the same turn of the loop:
    // once it has fired, so has the DirWatch's, with no waiter.
    await new Promise<void>((resolve) => {
      const probe = fs.watch(dir, () => {
        probe.close();
        resolve();
      });
      fs.writeFileSync(path.join(dir, 'a'), 'x');
    });
    await watch.wait();
  });

  it('resolves a wait when the signal is aborted or the watch is closed', async () => {
    const { watch } = setup();
    const ac = new AbortController();
    const aborted = watch.wait(ac.signal);
    ac.abort();
    await aborted;
    const closed = watch.wait();
    watch.close();
    await closed;
  });

  it('falls back to the safety poll alone for a directory it cannot watch', async () => {
    const watch = new DirWatch('/nonexistent/berth-watch', 1);
    watches.push(watch);
    await watch.wait();
  });
});
