import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BERTH_BIN, requireBuilt } from '../dist.js';
import { pushBusyboxImage } from '../images/build.js';
import { startRegistry } from '../services/registry.js';

/**
 * What the bridge-networking integration files share: the CLI under one state root, the network
 * inspections they read addresses from, and a busybox web server to reach.
 */

export interface BerthResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment bin/berth runs with in these files; `extra` adds to it (e.g. BERTH_NETWORK_RUN_DIR). */
export function berthEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  return { ...process.env, BERTH_HOST_ROOT: '', BERTH_RUNTIME: '', ...extra };
}

/** Runs bin/berth on the state root `root()` (read per call: files make theirs in beforeAll). */
export function berthOn(root: () => string, extraEnv: Readonly<Record<string, string>> = {}): (...args: string[]) => BerthResult {
  return (...args) => {
    const r = spawnSync(BERTH_BIN, ['--root', root(), ...args], { encoding: 'utf8', env: berthEnv(extraEnv) });
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

/** One network test file's state root, with the busybox test image pulled from a loopback registry. */
export interface NetTestRoot {
  readonly root: string;
  /** The image reference to run. */
  readonly img: string;
  /** Removes every container (and so its networking) and network, then the registry and the root: nothing left even when a test failed. */
  close(): Promise<void>;
}

/**
 * Makes a state root (`berth-<tag>-…` in the temp dir) and pulls busybox into it as `<tag>/busybox:v1`.
 * `extraEnv` goes to every berth run, the clean-up's too.
 */
export async function openNetTestRoot(tag: string, extraEnv: Readonly<Record<string, string>> = {}): Promise<NetTestRoot> {
  requireBuilt();
  const registry = await startRegistry();
  await pushBusyboxImage(registry, `${tag}/busybox`, 'v1');
  const img = `${registry.host}/${tag}/busybox:v1`;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `berth-${tag}-`));
  const berth = berthOn(() => root, extraEnv);
  const pulled = berth('pull', '-q', img);
  if (pulled.code !== 0) throw new Error(`pull ${img}: ${pulled.stderr}`);
  return {
    root, img,
    close: async () => {
      const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
      if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
      berth('network', 'prune');
      await registry.stop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
