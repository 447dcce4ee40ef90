import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Spool } from '../../src/agent/spool.js';
import { TelemetrySampler } from '../../src/agent/telemetry/index.js';
import { detectBoard } from '../../src/board/index.js';
import { readCgroupLayout } from '../../src/cgroup/layout.js';
import { PARENT_NAME } from '../../src/cgroup/parent.js';
import { hostPaths } from '../../src/host/paths.js';
import { BerthRoot } from '../../src/root.js';
import { SpoolTable } from '../../src/store/spool.js';
import { StateStore } from '../../src/store/store.js';
import { REPO, requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { berthSync } from '../helpers/berth-cli.js';
import { netTestEnv } from '../helpers/net/test-env.js';

let registry: RegistryInstance;
let root: string;

beforeAll(async () => {
  requireBuilt();
  registry = await startRegistry();
  await pushBusyboxImage(registry, 'telemetry/busybox', 'v1', { arches: ['amd64'] });
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-telemetry-'));
});
afterAll(async () => {
  if (root !== undefined) {
    const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
    if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
    fs.rmSync(root, { recursive: true, force: true });
  }
  await registry?.stop();
});

/** Where this host mounts cgroup2 (the unified hierarchy of a hybrid host included), as the engine finds it. */
const cgroupV2Root = (): string => readCgroupLayout(hostPaths('/')).v2MountPoint ?? '/sys/fs/cgroup';

const berth = (...args: string[]) => berthSync(['--root', root, ...args], { BERTH_HOST_ROOT: '', BERTH_RUNTIME: '' });

describe('telemetry on this host', () => {
  it('samples the real /proc and /sys, and a running container through the engine, reporting only what its cgroups hold', async () => {
    const img = `${registry.host}/telemetry/busybox:v1`;
    expect(berth('run', '-d', '--name', 'tele-web', img, 'sleep', '600')).toMatchObject({ code: 0 });
    const host = hostPaths('/');
    const parts = new BerthRoot({ root, host, env: { PATH: process.env.PATH, ...netTestEnv() }, version: 'test', board: detectBoard(host) });
    try {
      const engine = await parts.engine();
      const sampler = new TelemetrySampler({ host, stateRoot: root, engine });
      const services = () => engine.list().map((container) => ({ service: container.name.replace(/^tele-/, ''), container }));
      const first = sampler.sample(services());
      const second = sampler.sample(services());

      const h = second.host;
      expect(first.host.cpu).toBeUndefined();
      // /proc/stat moves in clock ticks: two back-to-back samples may see none pass, then no share is given.
      if (h.cpu !== undefined) expect(h.cpu.percent).toBeGreaterThanOrEqual(0);
      expect(h.memory!.totalBytes).toBe(os.totalmem());
      expect(h.load!.avg1).toBeGreaterThanOrEqual(0);
      expect(h.uptimeSeconds).toBeGreaterThan(0);
      expect(h.disk!.totalBytes).toBe(fs.statfsSync(root).blocks * fs.statfsSync(root).bsize);
      expect(h.network).not.toHaveProperty('lo');
      // Interfaces with an address are a subset of /proc/net/dev's list.
      for (const name of Object.keys(os.networkInterfaces())) if (name !== 'lo') expect(h.network).toHaveProperty(name);
      expect(h.temperatureC !== undefined).toBe(fs.existsSync('/sys/class/thermal/thermal_zone0/temp'));
      expect(h.throttling !== undefined).toBe(fs.existsSync('/sys/devices/platform/soc/soc:firmware/get_throttled'));

      const web = second.services.web!;
      expect(web).toMatchObject({ state: 'running', restarts: 0 });
      const dir = path.join(cgroupV2Root(), PARENT_NAME, engine.find('tele-web').id);
      if (!fs.existsSync(path.join(dir, 'cgroup.procs'))) {
        expect(web).toEqual({ measured: false, state: 'running', restarts: 0, note: expect.stringContaining('no cgroup v2') });
      } else {
        // The second sample has a CPU share (the sleeping container's may be 0).
        expect(web.measured).toBe(true);
        expect(web.cpuPercent).toBeGreaterThanOrEqual(0);
        if (fs.existsSync(path.join(dir, 'memory.current'))) {
          expect(web.memoryCurrentBytes).toBeGreaterThan(0);
          expect(web.pids).toBeGreaterThanOrEqual(1);
        } else {
          // A hybrid host (this CI machine): runc puts the container in the unified hierarchy too, where
          // only cpu.stat exists; memory and pids live on v1 and are left out, not invented.
          expect(web.memoryCurrentBytes).toBeUndefined();
          expect(web.pids).toBeUndefined();
          expect(web.note).toMatch(/CPU only/);
        }
      }
      console.log(`telemetry: one sample took ${sampler.lastSampleCpuUs()} µs CPU (host + ${Object.keys(second.services).length} service); ${JSON.stringify(second)}`);
    } finally {
      parts.close();
    }
    expect(berth('rm', '-f', 'tele-web').code).toBe(0);
  });
});

/** A writer in its own process pushing numbered entries through the compiled Spool; prints n after each push returns. */
const WRITER = `
import { StateStore } from ${JSON.stringify(pathToFileURL(path.join(REPO, 'dist/store/store.js')).href)};
import { Spool } from ${JSON.stringify(pathToFileURL(path.join(REPO, 'dist/agent/spool.js')).href)};
import { SpoolTable } from ${JSON.stringify(pathToFileURL(path.join(REPO, 'dist/store/spool.js')).href)};
const store = StateStore.open(process.argv[1]);
const spool = new Spool(new SpoolTable(store), { maxBytes: 4000 });
let n = spool.peek(1e6).at(-1)?.payload.n ?? 0;
for (;;) { n += 1; spool.push('telemetry', { n, pad: 'x'.repeat(100) }); process.stdout.write(n + '\\n'); }
`;

describe('spool under kill -9', () => {
  it('keeps every push that returned, in order, with the dropped count and byte total in step', async () => {
    const spoolRoot = path.join(root, 'spool');
    for (let round = 0; round < 4; round++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', WRITER, spoolRoot], { stdio: ['ignore', 'pipe', 'pipe'] });
      let acked = 0;
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        let seen = 0;
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          const lines = buf.split('\n');
          buf = lines.pop() ?? '';
          if (lines.length === 0) return;
          acked = Number(lines.at(-1));
          seen += lines.length;
          if (seen >= 60) resolve();
        });
        child.on('exit', (code) => reject(new Error(`writer exited (${code}): ${stderr}`)));
      });
      child.kill('SIGKILL');
      await exited;

      const store = StateStore.open(spoolRoot);
      try {
        const spool = new Spool(new SpoolTable(store), { maxBytes: 4000 });
        const held = spool.peek(1e6).map((e) => (e.payload as { n: number }).n);
        const last = held.at(-1)!;
        // Durable: what the writer was told is stored is there (plus at most the push in flight).
        expect(last).toBeGreaterThanOrEqual(acked);
        expect(last).toBeLessThanOrEqual(acked + 1);
        // Ordered and atomic: a contiguous run, and every earlier entry is counted as dropped.
        expect(held).toEqual(Array.from({ length: held.length }, (_, i) => last - held.length + 1 + i));
        expect(spool.dropped()).toBe(last - held.length);
        expect(spool.bytes()).toBeLessThanOrEqual(4000);
        expect(spool.bytes()).toBe(spool.peek(1e6).reduce((sum, e) => sum + JSON.stringify(e.payload).length, 0));
      } finally {
        store.close();
      }
    }
  });
});

