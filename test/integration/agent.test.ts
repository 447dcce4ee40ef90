import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, until, type AgentProcess } from '../helpers/agent-process.js';
import { requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { berthSync } from '../helpers/berth-cli.js';

let registry: RegistryInstance;
let root: string;
let img: string;

beforeAll(async () => {
  requireBuilt();
  registry = await startRegistry();
  await pushBusyboxImage(registry, 'agent/busybox', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/agent/busybox:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-agent-'));
  expect(berth('pull', '-q', img).code).toBe(0);
});
afterAll(async () => {
  const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
  if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
  await registry?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

const berth = (...args: string[]) => berthSync(['--root', root, ...args]);
const inspect = (name: string) => (JSON.parse(berth('inspect', name).stdout) as Array<Record<string, any>>)[0]!;

const startAgent = (): AgentProcess => spawnAgent(root, ['--backoff-base', '200ms', '--backoff-max', '2s', '--healthy-after', '60s']);
const restarts = (a: AgentProcess, name: string) => a.lines.filter((e) => e.event === 'restarted' && e.container === name);

describe('berth agent (local-only supervisor)', () => {
  it('restarts with doubling backoff, honours on-failure:N and user stops', async () => {
    const agent = startAgent();
    try {
      await until(() => agent.lines.some((e) => e.event === 'agent-started'));
      berth('run', '-d', '--name', 'flappy', '--restart', 'always', img, 'sh', '-c', 'exit 1');
      berth('run', '-d', '--name', 'twice', '--restart', 'on-failure:2', img, 'sh', '-c', 'exit 2');
      berth('run', '-d', '--name', 'once', '--restart', 'no', img, 'sh', '-c', 'exit 3');
      await until(() => restarts(agent, 'flappy').length >= 3 && restarts(agent, 'twice').length >= 2);
      expect(restarts(agent, 'flappy').slice(0, 3).map((e) => e.afterMs)).toEqual([200, 400, 800]);
      expect(restarts(agent, 'twice').map((e) => e.restartCount)).toEqual([1, 2]);
      await sleep(1500);
      expect(restarts(agent, 'twice')).toHaveLength(2);
      expect(inspect('twice')).toMatchObject({ RestartCount: 2, State: { Status: 'exited', ExitCode: 2 } });
      expect(restarts(agent, 'once')).toHaveLength(0);
      expect(agent.lines.some((e) => e.event === 'exited' && e.container === 'once' && e.exitCode === 3)).toBe(true);
      // Stopped by the user: always and unless-stopped containers stay down while this agent runs.
      berth('rm', '-f', 'flappy');
      berth('run', '-d', '--name', 'stopped', '--restart', 'always', img, 'sleep', '300');
      berth('run', '-d', '--name', 'held', '--restart', 'unless-stopped', img, 'sleep', '300');
      berth('stop', '-t', '1', 'stopped', 'held');
      await sleep(1500);
      expect(restarts(agent, 'stopped')).toHaveLength(0);
      expect(restarts(agent, 'held')).toHaveLength(0);
    } finally {
      agent.proc.kill('SIGTERM');
      await new Promise((r) => agent.proc.once('exit', r));
    }
  });

  it('after kill -9 of the agent the containers keep running; a new agent re-adopts them with their restart counts', async () => {
    const first = startAgent();
    await until(() => first.lines.some((e) => e.event === 'agent-started'));
    // docker semantics at (agent) start: always comes back although the user stopped it; unless-stopped stays down.
    await until(() => restarts(first, 'stopped').length === 1);
    expect(restarts(first, 'stopped')[0]).toMatchObject({ reason: 'agent start (restart=always)' });
    expect(inspect('stopped').State.Status).toBe('running');
    expect(inspect('held').State.Status).toBe('exited');
    berth('run', '-d', '--name', 'durable', '--restart', 'always', img, 'sleep', '300');
    const pid1 = inspect('durable').State.Pid as number;
    process.kill(pid1, 'SIGKILL');
    await until(() => restarts(first, 'durable').length === 1);
    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));
    const pid2 = inspect('durable').State.Pid as number;
    expect(pid2).not.toBe(pid1);
    await sleep(500);
    expect(inspect('durable')).toMatchObject({ RestartCount: 1, State: { Status: 'running', Pid: pid2 } });

    const second = startAgent();
    try {
      await until(() => second.lines.some((e) => e.event === 'adopted' && e.container === 'durable'));
      expect(second.lines.find((e) => e.event === 'adopted' && e.container === 'durable')).toMatchObject({ pid: pid2, restartCount: 1 });
      process.kill(pid2, 'SIGKILL');
      await until(() => restarts(second, 'durable').length === 1);
      expect(inspect('durable')).toMatchObject({ RestartCount: 2, State: { Status: 'running' } });
    } finally {
      second.proc.kill('SIGTERM');
      await new Promise((r) => second.proc.once('exit', r));
    }
    // SIGTERM to the agent leaves the workload running, as KillMode=process expects.
    expect(inspect('durable').State.Status).toBe('running');
  });
});
