import { spawnSync } from 'node:child_process';
import { BERTH_BIN } from '../dist.js';

/**
 * What the bridge-networking integration files share: the CLI under one state root, the network
 * inspections they read addresses from, and a busybox web server to reach.
 */

export interface BerthResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs bin/berth on the state root `root()` (read per call: files make theirs in beforeAll). */
export function berthOn(root: () => string): (...args: string[]) => BerthResult {
  return (...args) => {
    const r = spawnSync(BERTH_BIN, ['--root', root(), ...args], { encoding: 'utf8', env: { ...process.env, BERTH_HOST_ROOT: '', BERTH_RUNTIME: '' } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
}

/** `berth network inspect NAME` and a container's address on it, from the same output. */
export function inspections(berth: (...args: string[]) => BerthResult) {
  const netInspect = (name: string) => (JSON.parse(berth('network', 'inspect', name).stdout) as Array<Record<string, any>>)[0]!;
  const ipOf = (network: string, container: string): string => {
    const entry = Object.values(netInspect(network).Containers as Record<string, { Name: string; IPv4Address: string }>).find((c) => c.Name === container);
    if (!entry) throw new Error(`container ${container} is not on network ${network}`);
    return entry.IPv4Address.split('/')[0]!;
  };
  return { netInspect, ipOf };
}

/** A busybox httpd serving `text` on port 80. */
export const httpd = (text: string) => ['sh', '-c', `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`];

export async function httpGet(host: string, port: number): Promise<string> {
  // Retry briefly: httpd in a just-started container may not listen yet.
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(2000) });
      return await r.text();
    } catch (err) {
      if (i >= 20) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
