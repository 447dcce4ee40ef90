// A card flashed before the launcher (issue 20): the bundle flat in the prefix and a unit starting
// <prefix>/bin/berth agent. Its agent converts the card to the launcher layout on its first upgrade
// (src/agent/upgrade/migrate.ts), the new version runs on trial under the launcher and confirms, the flat
// leftovers go, and a container keeps its pid and start time. The test plays systemd: it starts whatever
// the unit file's ExecStart says, again each time the service exits (Restart=always after a daemon-reload).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBundleIndex } from '../../src/agent/upgrade/artifact.js';
import { InstallLayout } from '../../src/agent/upgrade/layout.js';
import { isFlatInstall } from '../../src/agent/upgrade/migrate.js';
import { versionName } from '../../src/agent/upgrade/upgrader.js';
import { RegistryClient } from '../../src/image/registry/client.js';
import { until } from '../helpers/agent-process.js';
import { berthSync, runBerth } from '../helpers/berth-cli.js';
import { REPO, requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { testFleetKey } from '../helpers/signing.js';
import { LauncherService, makeBundleDir } from '../helpers/upgrade.js';

let registry: RegistryInstance;
let broker: MosquittoInstance;
let service: LauncherService | undefined;
let work: string;
let root: string;
let v2Digest: string;

const berth = (...args: string[]) => berthSync(['--root', root, ...args]);
const inspect = (name: string) => (JSON.parse(berth('inspect', name).stdout) as Array<Record<string, any>>)[0]!;

beforeAll(async () => {
  requireBuilt();
  [registry, broker] = await Promise.all([startRegistry(), startMosquitto()]);
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-migrate-'));
  root = path.join(work, 'root');
  await pushBusyboxImage(registry, 'upgrade/busybox', 'v1', { arches: ['amd64'] });
  const client = new RegistryClient(registry.host, { retry: { attempts: 2, baseDelayMs: 50 } });
  try {
    v2Digest = (await pushBundleIndex(client, 'berth/agent', '0.0.2-test', [{ platform: 'linux/amd64', dir: makeBundleDir(path.join(work, 'v2'), '0.0.2-test', 'real') }])).digest;
  } finally {
    client.close();
  }
}, 120_000);

afterAll(async () => {
  await service?.stop();
  if (root && fs.existsSync(root)) {
    const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
    if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
  }
  await Promise.all([registry?.stop(), broker?.stop()]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('a card flashed before the launcher', () => {
  it('converts itself on its first upgrade: unit at the launcher, v2 confirmed, flat files gone, the container untouched', async () => {
    // The flat install, as berth flash laid it out before: the bundle (with the launcher it carries) in the prefix.
    const prefix = path.join(work, 'opt-berth');
    makeBundleDir(prefix, '0.0.1-test', 'real');
    fs.mkdirSync(path.join(prefix, 'scripts'));
    fs.copyFileSync(path.join(REPO, 'scripts', 'berth-launch'), path.join(prefix, 'scripts', 'berth-launch'));
    const unitFile = path.join(work, 'berth-agent.service');
    const template = fs.readFileSync(path.join(REPO, 'scripts', 'systemd', 'berth-agent.service'), 'utf8');
    fs.writeFileSync(unitFile, template.replace(/^ExecStart=.*$/m, `ExecStart=${prefix}/bin/berth agent`));
    expect(isFlatInstall(prefix, unitFile)).toBe(true);
    const execStart = (): string => /^ExecStart=(\S+) agent$/m.exec(fs.readFileSync(unitFile, 'utf8'))![1]!;

    const fleetKey = testFleetKey();
    const keyFile = fleetKey.writePrivate(work);
    const s = new LauncherService(prefix, ['--root', root, 'agent', '--no-governor', '--broker', broker.url, '--device-id', 'flat-1', '--config', fleetKey.agentConfig(work)], {
      command: execStart, env: { BERTH_UNIT_FILE: unitFile },
    });
    service = s;
    s.start();
    await until(() => s.lines.some((l) => l.event === 'broker-connected'), 20_000, 'agent online');
    const fleet = (...args: string[]) => runBerth(['fleet', ...args, '--broker', broker.url, '--signing-key', keyFile]);
    const file = path.join(work, 'app.yaml');
    fs.writeFileSync(file, `services:\n  app:\n    image: ${registry.host}/upgrade/busybox:v1\n    command: ["sleep", "600"]\n    stop_grace_period: 1s\n`);
    const deployed = await fleet('deploy', file, '--device', 'flat-1', '--timeout', '60s');
    expect(deployed.code, deployed.stdout + deployed.stderr).toBe(0);
    const app = (JSON.parse(berth('ps', '--json').stdout) as Array<{ name: string; id: string }>).find((c) => c.name.includes('app'))!;
    const before = inspect(app.id).State as { Pid: number; StartedAt: string };

    const up = await fleet('upgrade', `${registry.host}/berth/agent@${v2Digest}`, '--device', 'flat-1', '--timeout', '90s', '--json');
    expect(up.code, up.stdout + up.stderr + s.stderr.join('')).toBe(0);
    expect(s.lines.find((l) => l.event === 'upgrade-migrated')).toMatchObject({ prefix, version: '0.0.1-test-flat', unit: unitFile });
    // The unit now starts the launcher (what the second start ran), which started v2 on trial; v2 confirmed.
    expect(execStart()).toBe(path.join(prefix, 'launch', 'berth-launch'));
    const layout = new InstallLayout(prefix);
    const v2 = versionName('0.0.2-test', v2Digest);
    expect(layout.linked('current')).toBe(v2);
    expect(layout.linked('previous')).toBe('0.0.1-test-flat');
    expect(layout.result()).toMatchObject({ state: 'upgraded', to: v2, from: '0.0.1-test-flat' });
    expect(s.lines.find((l) => l.event === 'agent-started' && l.installed === v2)).toMatchObject({ onTrial: true });
    // The flat bundle lives on only as the previous version (hard links); nothing else is left at the top.
    expect(fs.readdirSync(prefix).sort()).toEqual(['current', 'launch', 'previous', 'upgrade', 'versions']);
    expect(layout.installed()).toEqual(['0.0.1-test-flat', v2]);
    expect(fs.existsSync(path.join(prefix, 'versions', '0.0.1-test-flat', 'bin', 'berth'))).toBe(true);
    expect(inspect(app.id).State).toMatchObject({ Status: 'running', Pid: before.Pid, StartedAt: before.StartedAt });
  }, 180_000);
});
