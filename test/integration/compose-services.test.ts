// Issue 17's compose service keys on real containers, deployed with `berth deploy` from a compose file
// written for this test: a privileged service sees the host's devices (with the host's /dev bound in), cap_add NET_ADMIN takes effect
// (and its absence is refused by the kernel), logging: none keeps no log, a long-syntax tmpfs gets its
// size and mode, container_name is a name the CLI resolves, and a missing short-syntax bind source is
// created as docker creates it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { berthSync } from '../helpers/berth-cli.js';
import { BERTH_BIN, requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

let registry: RegistryInstance;
let root: string;
let img: string;

beforeAll(async () => {
  requireBuilt();
  registry = await startRegistry();
  await pushBusyboxImage(registry, 'compose/busybox', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/compose/busybox:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-compose-services-'));
}, 60_000);
afterAll(async () => {
  const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
  if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
  await registry?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

const berth = (...args: string[]) => berthSync(['--root', root, ...args]);

function deploy(yaml: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = path.join(root, 'compose.yaml');
  fs.writeFileSync(file, yaml);
  return new Promise((resolve) => {
    const child = spawn(BERTH_BIN, ['--root', root, 'deploy', file]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The container berth made for `service` (named `<service>.<hash>`). */
function containerOf(service: string): string {
  const ps = JSON.parse(berth('ps', '-a', '--json').stdout) as Array<{ name: string }>;
  const c = ps.find((x) => x.name.startsWith(`${service}.`));
  if (c === undefined) throw new Error(`no container for service ${service}: ${ps.map((x) => x.name).join(', ')}`);
  return c.name;
}

/** A container's log once it has printed `until` (bounded: 20 s). */
async function logsUntil(name: string, until: RegExp): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const out = berth('logs', name).stdout;
    if (until.test(out) || Date.now() > deadline) return out;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('compose service keys through berth deploy', () => {
  it('privileged, cap_add, logging none, long-syntax tmpfs, container_name and a created bind source take effect', async () => {
    const made = path.join(root, 'made-by-deploy', 'data');
    const sh = (script: string): string => JSON.stringify(['sh', '-c', `${script}; echo done; sleep 3600`]);
    const r = await deploy(`
services:
  hw:
    image: ${img}
    privileged: true
    volumes: ["/dev:/dev"]
    command: ${sh('test -c /dev/kmsg && echo saw-kmsg; test -b /dev/loop0 && echo saw-loop0; grep -E " /dev | /dev/pts devpts" /proc/mounts')}
    stop_grace_period: 1s
  netadmin:
    image: ${img}
    network_mode: none
    cap_add: [NET_ADMIN]
    command: ${sh('ip link set lo down && echo lo-down')}
    stop_grace_period: 1s
  control:
    image: ${img}
    network_mode: none
    command: ${sh('ip link set lo down 2>/dev/null || echo refused')}
    stop_grace_period: 1s
  quiet:
    image: ${img}
    logging:
      driver: none
    command: ${sh('echo never-kept')}
    stop_grace_period: 1s
  scratch:
    image: ${img}
    container_name: scratchpad
    volumes:
      - type: tmpfs
        target: /scratch
        tmpfs: {size: 1m, mode: "1770"}
      - ${made}:/data
    command: ${sh("grep ' /scratch ' /proc/mounts; echo hello > /data/hello")}
    stop_grace_period: 1s
x-berth:
  update:
    health_window: 500ms
`);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.stdout).toBe('revision 1: applied\n');
    expect(r.code).toBe(0);

    const hw = await logsUntil(containerOf('hw'), /done/);
    expect(hw).toContain('saw-kmsg');
    expect(hw).toContain('saw-loop0');
    // The host's /dev bound in (its filesystem type, not the runtime's tmpfs), the container's own ptys on top.
    const hostDev = /^\S+ \/dev (\S+) (\S+)/m.exec(fs.readFileSync('/proc/self/mounts', 'utf8'))!;
    const inContainer = /^\S+ \/dev (\S+) (\S+)/m.exec(hw);
    expect(inContainer?.[1]).toBe(hostDev[1]);
    expect(inContainer?.[2]).toMatch(new RegExp(`size=${/size=(\w+)/.exec(hostDev[2]!)?.[1]}`));
    expect(inContainer?.[2]).not.toContain('size=65536k');
    expect(hw).toMatch(/ \/dev\/pts devpts /);

    expect(await logsUntil(containerOf('netadmin'), /done/)).toContain('lo-down');
    expect(await logsUntil(containerOf('control'), /done/)).toContain('refused');

    // container_name is a name the CLI takes; the container itself keeps its unique name.
    expect(containerOf('scratch')).toMatch(/^scratch\.[0-9a-f]{12}$/);
    const scratch = await logsUntil('scratchpad', /done/);
    expect(scratch).toMatch(/ \/scratch tmpfs \S*size=1024k/);
    expect(scratch).toMatch(/ \/scratch tmpfs \S*mode=1770/);
    expect(fs.readFileSync(path.join(made, 'hello'), 'utf8')).toBe('hello\n');

    // logging: none — the container ran (its siblings printed long ago) and left nothing to read.
    const quiet = containerOf('quiet');
    expect(JSON.parse(berth('ps', '--json').stdout).map((c: { name: string }) => c.name)).toContain(quiet);
    expect(berth('logs', quiet).stdout).toBe('');
  });

  it('refuses what a device cannot honour before touching anything, naming the key', async () => {
    const names = (): string[] => (JSON.parse(berth('ps', '-a', '--json').stdout) as Array<{ name: string }>).map((c) => c.name).sort();
    const before = names();
    const r = await deploy(`services:\n  web:\n    image: ${img}\n    deploy:\n      replicas: 3\n`);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/services\.web\.deploy\.replicas: 3: berth runs one container per service on a device/);
    const balena = await deploy(`services:\n  relay:\n    image: ${img}\n    labels:\n      io.balena.features.gpu: '1'\n`);
    expect(balena.code).toBe(3);
    expect(balena.stderr).toMatch(/services\.relay\.labels\.io\.balena\.features\.gpu: not supported/);
    expect(names()).toEqual(before);
  });
});
