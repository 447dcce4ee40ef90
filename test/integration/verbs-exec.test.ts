// issue 19's everyday verbs against the real runtime through bin/berth: exec, top, wait, pause/unpause,
// rename, update, events, logs --since/--until. One busybox image from a registry on loopback.
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SERVICE, until, VerbsEnv } from '../helpers/verbs-env.js';

const env = new VerbsEnv('verbs/busybox');
const berth = (...args: string[]) => env.berth(...args);
const berthIn = (input: string, ...args: string[]) => env.berthIn(input, ...args);
const background = (...args: string[]) => env.background(...args);

describe('berth exec', () => {
  beforeAll(() => {
    expect(berth('run', '-d', '--name', 'ex', '-e', 'FROM_RUN=1', env.img, ...SERVICE).code).toBe(0);
  });

  it('keeps stdout and stderr apart and exits with the command\'s code', () => {
    expect(berth('exec', 'ex', 'sh', '-c', 'echo out $FROM_RUN; echo err >&2; exit 7')).toMatchObject({ code: 7, stdout: 'out 1\n', stderr: 'err\n' });
  });

  it('-i passes stdin; -e, --env-file, -w and -u apply', () => {
    expect(berthIn('hello\n', 'exec', '-i', 'ex', 'cat')).toMatchObject({ code: 0, stdout: 'hello\n' });
    const envFile = path.join(env.root, 'exec.env');
    fs.writeFileSync(envFile, 'FROM_FILE=f\nBOTH=file\n');
    const r = berth('exec', '--env-file', envFile, '-e', 'BOTH=flag', '-w', '/tmp', '-u', '1000:1001', 'ex', 'sh', '-c', 'echo $FROM_FILE $BOTH $(pwd) $(id -u):$(id -g)');
    expect(r).toMatchObject({ code: 0, stdout: 'f flag /tmp 1000:1001\n' });
  });

  it('gives 127 for a missing command and 126 for one that is not executable, as docker', () => {
    expect(berth('exec', 'ex', 'no-such-command')).toMatchObject({ code: 127, stderr: expect.stringContaining('executable file not found') });
    expect(berth('exec', 'ex', '/etc/passwd')).toMatchObject({ code: 126, stderr: expect.stringContaining('permission denied') });
  });

  it('--privileged grants every capability; without it the default set', () => {
    const caps = (...flags: string[]) => berth('exec', ...flags, 'ex', 'sh', '-c', 'grep CapEff /proc/self/status').stdout.trim().split(/\s+/)[1];
    expect(caps()).toBe('00000000a80425fb');
    expect(caps('--privileged')).not.toBe('00000000a80425fb');
  });

  it('-d returns at once and the command runs; -t gives a terminal (terminal.test.ts drives it), -it needs one to read from', async () => {
    expect(berth('exec', '-d', 'ex', 'sh', '-c', 'echo detached > /tmp/d')).toMatchObject({ code: 0, stdout: '' });
    await until(() => berth('exec', 'ex', 'cat', '/tmp/d').stdout === 'detached\n');
    const t = berth('exec', '-t', 'ex', 'sh', '-c', 'tty; exit 4');
    expect(t).toMatchObject({ code: 4, stdout: expect.stringMatching(/^\/dev\/pts\/\d+\r\n$/) });
    expect(berthIn('', 'exec', '-it', 'ex', 'sh')).toMatchObject({ code: 2, stderr: expect.stringContaining('the input device is not a TTY') });
  });

  it('top lists the container\'s processes, exec\'d ones included', async () => {
    const sleeper = background('exec', 'ex', 'sleep', '30');
    await until(() => berth('top', 'ex').stdout.includes('sleep 30'));
    const r = berth('top', 'ex', '-o', 'pid,comm');
    expect(r.stdout.split('\n')[0]).toMatch(/PID\s+COMMAND/);
    expect(r.stdout).toContain('sleep');
    sleeper.p.kill('SIGTERM');
    await sleeper.done;
  });
});

describe('container verbs', () => {
  it('wait blocks until the exit and prints the code; events streams what happens, filtered', async () => {
    const events = background('events', '--format', 'json', '--filter', 'label=verbs=w');
    // A probe's create says the stream is subscribed: what follows cannot be missed under load.
    let tries = 0;
    for (; !events.out.stdout.includes('"create"'); tries++) {
      expect(berth('create', '--name', `w0-${tries}`, '-l', 'verbs=w', env.img, 'true').code).toBe(0);
      await until(() => events.out.stdout.includes('"create"'), 1000).catch(() => undefined);
    }
    expect(berth('create', '--name', 'w1', '-l', 'verbs=w', env.img, 'sh', '-c', 'sleep 1; exit 4').code).toBe(0);
    expect(berth('start', 'w1').code).toBe(0);
    const wait = background('wait', 'w1');
    expect(await wait.done).toBe(0);
    expect(wait.out.stdout).toBe('4\n');
    expect(berth('rename', 'w1', 'w2').code).toBe(0);
    await until(() => events.out.stdout.includes('"rename"'));
    events.p.kill('SIGINT');
    await events.done;
    const actions = events.out.stdout.trim().split('\n').map((l) => JSON.parse(l) as { Action: string; Actor: { Attributes: Record<string, string> } })
      .filter((a) => !a.Actor.Attributes.name?.startsWith('w0-'));
    expect(actions.map((a) => a.Action)).toEqual(['create', 'start', 'die', 'rename']);
    expect(actions[2]!.Actor.Attributes).toMatchObject({ exitCode: '4', image: env.img });
    // --since answers from the records; --until in the past ends at once.
    const past = berth('events', '--since', '1h', '--until', '0s', '--filter', 'container=w2', '--filter', 'event=die');
    expect(past).toMatchObject({ code: 0 });
    expect(past.stdout).toMatch(/container die [0-9a-f]{64} \(exitCode=4, image=.*, name=w2\)\n$/);
    expect(berth('rm', 'w2').code).toBe(0);
    for (let i = 0; i < tries; i++) expect(berth('rm', `w0-${i}`).code).toBe(0);
  });

  it('pause freezes and unpause thaws where cgroups are enforced', () => {
    expect(berth('run', '-d', '--name', 'pz', env.img, ...SERVICE).code).toBe(0);
    const r = berth('pause', 'pz');
    const enforced = (JSON.parse(berth('inspect', 'pz').stdout) as Array<{ HostConfig?: unknown; State: { Status: string } }>)[0]!;
    if (r.code === 0) {
      expect(enforced.State.Status).toBe('paused');
      expect(berth('unpause', 'pz').code).toBe(0);
    } else {
      expect(r).toMatchObject({ code: 6, stderr: expect.stringContaining('cannot freeze') });
    }
    expect(berth('rm', '-f', 'pz').code).toBe(0);
  });

  it('update changes the restart policy and limits, refuses bad values naming the flag', () => {
    expect(berth('run', '-d', '--name', 'up', '-m', '64m', env.img, ...SERVICE).code).toBe(0);
    expect(berth('update', '--restart', 'always', '-m', '32m', '--pids-limit', '40', 'up')).toMatchObject({ code: 0, stdout: 'up\n' });
    const i = (JSON.parse(berth('inspect', 'up').stdout) as Array<{ HostConfig: Record<string, unknown> }>)[0]!;
    expect(i.HostConfig).toMatchObject({ RestartPolicy: { name: 'always' }, Memory: 32 * 1024 * 1024 });
    expect(berth('update', '-m', 'lots', 'up')).toMatchObject({ code: 3, stderr: expect.stringContaining('--memory') });
    expect(berth('rm', '-f', 'up').code).toBe(0);
  });

  it('logs --since/--until select by time', async () => {
    expect(berth('run', '--name', 'lg', env.img, 'sh', '-c', 'echo early; sleep 2; echo late').code).toBe(0);
    const all = berth('logs', '-t', 'lg').stdout.trim().split('\n');
    expect(all.map((l) => l.split(' ')[1])).toEqual(['early', 'late']);
    const lateAt = all[1]!.split(' ')[0]!;
    expect(berth('logs', '--since', lateAt, 'lg').stdout).toBe('late\n');
    expect(berth('logs', '--until', new Date(Date.parse(lateAt) - 1000).toISOString(), 'lg').stdout).toBe('early\n');
    expect(berth('logs', '--since', 'yesterday', 'lg')).toMatchObject({ code: 3, stderr: expect.stringContaining('--since') });
    expect(berth('rm', 'lg').code).toBe(0);
  });
});
