import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { BerthError } from '../errors.js';

const execFileAsync = promisify(execFile);

/**
 * Persistent network namespaces, made with iproute2's `ip netns add` (a bind mount of the nsfs inode
 * on /run/netns/NAME, as podman does): the namespace exists before the runtime starts the container,
 * so netavark can wire it up first, and it outlives restarts of the container, so an address and its
 * published ports stay put. /run is tmpfs: a reboot removes them all.
 */
export class NetnsManager {
  /** `ip` (iproute2) and the directory it keeps namespaces in (fixed by iproute2: /run/netns). */
  constructor(private readonly ip: string = 'ip', readonly dir: string = '/run/netns') {}

  /** The namespace name for a container: `berth-` + its id. */
  nameOf(containerId: string): string {
    return `berth-${containerId}`;
  }

  pathOf(containerId: string): string {
    return path.join(this.dir, this.nameOf(containerId));
  }

  exists(containerId: string): boolean {
    return fs.existsSync(this.pathOf(containerId));
  }

  /**
   * Some process runs in the namespace (compared by nsfs inode with every /proc/PID/ns/net): a
   * container whose monitor died may still be running in it, and must not lose its network.
   */
  inUse(containerId: string, proc = '/proc'): boolean {
    let ino: number;
    try {
      ino = fs.statSync(this.pathOf(containerId)).ino;
    } catch {
      return false;
    }
    for (const pid of fs.readdirSync(proc)) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        if (fs.statSync(path.join(proc, pid, 'ns', 'net')).ino === ino) return true;
      } catch {
        // exited meanwhile, or a kernel thread without namespaces
      }
    }
    return false;
  }

  /**
   * Creates the namespace; idempotent. `loopback`: bring `lo` up as a runtime-made namespace would have
   * it — not needed when netavark sets the namespace up next, which does it itself (one exec less per
   * start; measured on netavark 1.4).
   */
  async create(containerId: string, loopback = true): Promise<string> {
    const name = this.nameOf(containerId);
    if (!this.exists(containerId)) await this.run(['netns', 'add', name], `cannot create network namespace ${name}`);
    if (loopback) await this.run(['-n', name, 'link', 'set', 'lo', 'up'], `cannot bring up lo in ${name}`);
    return this.pathOf(containerId);
  }

  /** Deletes the namespace; absent is fine. Its interfaces (veth ends) go with it. */
  async remove(containerId: string): Promise<void> {
    if (!this.exists(containerId)) return;
    await this.run(['netns', 'delete', this.nameOf(containerId)], `cannot delete network namespace ${this.nameOf(containerId)}`);
  }

  private async run(args: string[], what: string): Promise<void> {
    try {
      await execFileAsync(this.ip, args, { timeout: 10_000 });
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
      throw new BerthError('host', `${what}: ${stderr || (err as Error).message}`, { cause: err, hint: 'berth needs iproute2 (apt-get install iproute2) and root' });
    }
  }
}
