// Runs inside the VM (bundled by test/helpers/vm/guest.ts, importing berth's built dist/): drives the
// real engine and CLI and records what it saw in results.json for the host-side test to assert on. No
// assertions here: a guest that throws still writes what it has, and the host test names what is missing.
// Most steps use the library in this one process: under TCG every extra node start costs seconds.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { detectBoard, type BoardInfo } from '../../../src/board/index.js';
import { readCgroupLayout } from '../../../src/cgroup/layout.js';
import { PARENT_NAME } from '../../../src/cgroup/parent.js';
import { parseKeyed } from '../../../src/cgroup/v2.js';
import { hostPaths } from '../../../src/host/paths.js';
import { systemSearchPath } from '../../../src/host/which.js';
import { ImageService } from '../../../src/image/service.js';
import { createContainerNetworking } from '../../../src/network/index.js';
import { LocalEngine } from '../../../src/runtime/engine.js';
import { defaultRunOptions, type RunOptions } from '../../../src/runtime/options.js';
import type { ContainerRecord } from '../../../src/runtime/records.js';
import { ContainerRecords } from '../../../src/store/containers.js';
import { ImageRecords } from '../../../src/store/images.js';
import { StateStore } from '../../../src/store/store.js';
import { pushBusyboxImage, tarOf } from '../../helpers/images/build.js';
import { startRegistry, type RegistryInstance } from '../../helpers/services/registry.js';

export { sleep };

export const env = {
  repo: process.env.VM_REPO ?? '/work/main',
  out: process.env.VM_OUT ?? '/tmp',
  root: process.env.BERTH_ROOT ?? '/var/lib/berth',
  profiles: process.env.BERTH_PROFILES_DIR,
};

export const t0 = Date.now();
export const log = (...args: unknown[]): void => console.log(`guest ${((Date.now() - t0) / 1000).toFixed(1)}s:`, ...args);

export class Results {
  readonly data: Record<string, unknown> = {};
  set(key: string, value: unknown): void {
    this.data[key] = value;
    fs.writeFileSync(path.join(env.out, 'results.json'), JSON.stringify(this.data, null, 2));
  }
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export const berthBin = (): string => path.join(env.repo, 'bin', 'berth');

/** One `berth …` through the built CLI, as a user would run it; killed after two minutes. */
export function berth(...args: string[]): CliResult {
  return berthWithin(120_000, ...args);
}

/** The same with another time limit: a deploy under TCG on a loaded host can take longer. */
export function berthWithin(timeoutMs: number, ...args: string[]): CliResult {
  const started = Date.now();
  const r = spawnSync(berthBin(), args, {
    encoding: 'utf8', env: process.env, timeout: timeoutMs,
  });
  const res = { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ms: Date.now() - started };
  log(`berth ${args.join(' ')} → ${res.code} (${res.ms} ms)${res.code !== 0 && res.stderr ? `: ${res.stderr.trim().split('\n')[0]}` : ''}`);
  return res;
}

export function parseJson(text: string): any {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? v[0] : v;
  } catch {
    return undefined;
  }
}

/** The engine over the guest's state root, built from the same parts as src/root.ts builds them for `berth`. */
export class Berth {
  readonly board: BoardInfo;
  readonly images: ImageService;
  readonly engine: LocalEngine;
  /** Where the kernel keeps the containers' cgroups: the proofs read the kernel's files, not the engine's view. */
  private readonly cgroupParent: string;

  constructor() {
    const host = hostPaths('/');
    this.board = detectBoard(host, env.profiles);
    const store = StateStore.open(env.root);
    this.images = new ImageService(new ImageRecords(store), { root: env.root, host });
    const searchPath = systemSearchPath(process.env.PATH);
    const networking = createContainerNetworking(store, host, searchPath);
    this.engine = new LocalEngine(this.images, new ContainerRecords<RunOptions>(store), { root: env.root, host, board: this.board, searchPath, networking });
    this.cgroupParent = path.join(readCgroupLayout(host).v2MountPoint ?? '/sys/fs/cgroup', PARENT_NAME);
  }

  /** `berth run -d` with these options. */
  async run(name: string, image: string, cmd: string[], o: Partial<RunOptions> = {}): Promise<ContainerRecord> {
    const c = this.engine.create(image, { ...defaultRunOptions(name), cmd, ...o });
    await this.engine.start(c.id);
    log(`started ${name}: ${cmd.join(' ')}`);
    return this.engine.find(c.id);
  }

  inspect(name: string): Record<string, any> {
    return this.engine.inspect(name);
  }

  cgroup(name: string): string {
    return path.join(this.cgroupParent, this.engine.find(name).id);
  }
}

export function readCg(dir: string, file: string): string | undefined {
  try {
    return fs.readFileSync(path.join(dir, file), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** A keyed cgroup file (memory.events, cpu.stat …) as read by `readCg`: berth's own parser. */
export const keyed = (text: string | undefined): Record<string, number> => parseKeyed(text ?? '');

/** The kernel log lines about OOM kills: tells the cgroup OOM killer from the global one. */
export function oomKernelLines(): string[] {
  const r = spawnSync('dmesg', { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter((l) => /out of memory|oom-kill|Killed process/i.test(l));
}

/** A registry inside the VM with the test image (busybox plus the static `hog` at /bin/hog), pulled by the CLI. */
export async function setupImage(): Promise<{ registry: RegistryInstance; image: string }> {
  const registry = await startRegistry();
  const hog = fs.readFileSync(path.join(env.out, 'hog'));
  const layer = await tarOf([{ name: 'bin/hog', content: hog, mode: 0o755 }]);
  await pushBusyboxImage(registry, 'vm/tools', 'v1', { arches: ['amd64'], extraLayers: [layer] });
  const image = `${registry.host}/vm/tools:v1`;
  const pulled = berth('pull', '-q', image);
  if (pulled.code !== 0) throw new Error(`pull failed: ${pulled.stderr}`);
  return { registry, image };
}

export async function guestMain(body: (results: Results) => Promise<void>): Promise<void> {
  const results = new Results();
  try {
    await body(results);
    results.set('completed', true);
  } catch (err) {
    results.set('error', (err as Error).stack ?? String(err));
    log('error:', err);
  }
  // The registry and any leftovers die with the VM.
  process.exit(0);
}
