import fs from 'node:fs';
import { Wake } from './wake.js';

/**
 * Wakes a waiting reader when anything in a directory changes (inotify through fs.watch), and after
 * `safetyMs` at the latest: the watch can miss nothing it reports, but it cannot report a process
 * that died without writing, and some filesystems have no inotify at all.
 */
export class DirWatch {
  private readonly watcher: fs.FSWatcher | undefined;
  // A change that came while nobody waited: the next wait returns at once.
  private readonly wakeUp = new Wake();

  constructor(dir: string, private readonly safetyMs = 500) {
    try {
      this.watcher = fs.watch(dir, { persistent: false }, () => this.wakeUp.wake());
      // e.g. the directory was removed under us: the safety timer carries on alone.
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      this.watcher = undefined;
    }
  }

  /** Resolves on the next change, after `safetyMs`, or at once when `signal` is aborted. */
  wait(signal?: AbortSignal): Promise<void> {
    return this.wakeUp.wait(this.safetyMs, signal);
  }

  close(): void {
    this.watcher?.close();
    this.wakeUp.wake();
  }
}
