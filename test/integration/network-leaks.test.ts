import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunOptions } from '../../src/runtime/options.js';
import { ContainerRecords } from '../../src/store/containers.js';
import { StateStore } from '../../src/store/store.js';
import { spawnAgent, stopProcess, until } from '../helpers/agent-process.js';
import { BERTH_BIN } from '../helpers/dist.js';
import { berthOn, httpd, httpGet, inspections, openNetTestRoot, type NetTestRoot } from '../helpers/net/bridge.js';
import { freePort } from '../helpers/services/ports.js';

// No leaked veth, bridge, netns, firewall rule, DNS name or lease after kill -9s and lost namespaces,
// and a running container's networking never disturbed on the way. Traffic: the host's loopback only.

let t: NetTestRoot;

beforeAll(async () => {
  t = await openNetTestRoot('netl');
}, 120_000);
afterAll(() => t?.close());

const berth = berthOn(() => t.root);
const { netInspect, ipOf } = inspections(berth);
const hostText = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
const idOf = (name: string): string => (JSON.parse(berth('inspect', name).stdout) as Array<{ Id: string }>)[0]!.Id;

/** What a container's networking leaves in the kernel and in netavark's state, found by its id and address. */
function traces(id: string, ip: string, networkId: string) {
  const aardvark = path.join(process.env.BERTH_NETWORK_RUN_DIR!, `netavark/aardvark-dns/${networkId}`);
  return {
    netns: fs.existsSync(`/run/netns/berth-${id}`),
    rules: hostText('iptables-save').split('\n').filter((l) => l.includes(`${ip}/32`) || l.includes(`${ip}:`) || l.includes(id)),
    dns: fs.existsSync(aardvark) && fs.readFileSync(aardvark, 'utf8').includes(id),
  };
}
const clean = { netns: false, rules: [], dns: false };

describe('networking left behind', () => {
  it('by a container whose record is gone is removed at agent start (and by network prune); a running one is untouched, also over a kill -9 of the agent', async () => {
    expect(berth('network', 'create', '--subnet', '10.134.0.0/24', 'l_app').code).toBe(0);
    const netId = netInspect('l_app').Id as string;
    const port = await freePort();
    expect(berth('run', '-d', '--name', 'bystander', '--network', 'l_app', '-p', `${port}:80`, t.img, ...httpd('still-here')).code).toBe(0);
    expect(await httpGet('127.0.0.1', port)).toBe('still-here\n');
    const byId = idOf('bystander');
    const byIp = ipOf('l_app', 'bystander');

    // A stopped container whose record vanished (a store restored from a backup, a transaction lost with
    // the power): its namespace, veth, port rules and DNS name stay until someone reconciles.
    const victimPort = await freePort();
    expect(berth('run', '-d', '--name', 'victim', '--network', 'l_app', '-p', `${victimPort}:80`, t.img, 'sleep', '300').code).toBe(0);
    const victim = idOf('victim');
    const victimIp = ipOf('l_app', 'victim');
    expect(berth('stop', '-t', '0', 'victim').code).toBe(0);
    const store = StateStore.open(t.root);
    new ContainerRecords<RunOptions>(store).remove(victim);
    store.close();
    expect(traces(victim, victimIp, netId)).toMatchObject({ netns: true, dns: true });

    const agent = spawnAgent(t.root, []);
    try {
      const done = await until(() => agent.lines.find((e) => e.event === 'network-reconciled'), 30_000, 'network-reconciled');
      expect(done).toMatchObject({ tornDown: [victim], released: [victim], problems: [] });
      await until(() => agent.lines.some((e) => e.event === 'agent-started'), 30_000, 'agent-started');
    } finally {
      await stopProcess(agent.proc, 'SIGKILL');
    }
    expect(traces(victim, victimIp, netId)).toEqual(clean);
    expect(Object.values(netInspect('l_app').Containers as Record<string, { Name: string }>).map((c) => c.Name)).toEqual(['bystander']);
    // The running one kept everything: its rules, its name, its published port.
    expect(traces(byId, byIp, netId)).toMatchObject({ netns: true, dns: true });
    expect(await httpGet('127.0.0.1', port)).toBe('still-here\n');

    // After the kill -9, a second agent start finds nothing to do and disturbs nothing.
    const again = spawnAgent(t.root, []);
    try {
      expect(await until(() => again.lines.find((e) => e.event === 'network-reconciled'), 30_000, 'network-reconciled')).toMatchObject({ tornDown: [], released: [], problems: [] });
    } finally {
      await stopProcess(again.proc, 'SIGKILL');
    }
    expect(await httpGet('127.0.0.1', port)).toBe('still-here\n');
    // network prune runs the same reconcile: nothing more to remove, and l_app still in use.
    expect(berth('network', 'prune')).toMatchObject({ code: 0, stdout: '' });
    expect(berth('rm', '-f', 'bystander').code).toBe(0);
    expect(traces(byId, byIp, netId)).toEqual(clean);
    expect(berth('network', 'rm', 'l_app').code).toBe(0);
  }, 120_000);

  it("of one isolated network, torn down, leaves the others isolated (netavark 1.4's teardown drops the shared FORWARD jump; berth puts it back)", () => {
    for (const n of ['l_iso_a', 'l_iso_b', 'l_iso_c']) expect(berth('network', 'create', n).code).toBe(0);
    expect(berth('run', '-d', '--name', 'iso_server', '--network', 'l_iso_a', t.img, ...httpd('iso-a')).code).toBe(0);
    expect(berth('run', '-d', '--name', 'iso_b', '--network', 'l_iso_b', t.img, 'sleep', '300').code).toBe(0);
    // l_iso_c's only container comes and goes: its teardown is what dropped the jump.
    expect(berth('run', '--rm', '--network', 'l_iso_c', t.img, 'true').code).toBe(0);
    expect(hostText('iptables', '-S', 'FORWARD')).toContain('-j NETAVARK_ISOLATION_1');
    const serverIp = ipOf('l_iso_a', 'iso_server');
    // From iso_b's namespace with the host's curl: a probe container's own setup would put the jump back.
    const probe = spawnSync('ip', ['netns', 'exec', `berth-${idOf('iso_b')}`, 'curl', '-s', '-m', '3', `http://${serverIp}/`], { encoding: 'utf8' });
    expect(probe.stdout).not.toContain('iso-a');
    // The same request from l_iso_a gets the page: the refusal above is isolation, not a dead server.
    expect(berth('run', '--rm', '--network', 'l_iso_a', t.img, 'sh', '-c', `timeout 3 wget -qO- http://${serverIp}/`).stdout).toBe('iso-a\n');
    expect(berth('rm', '-f', 'iso_server', 'iso_b').code).toBe(0);
    expect(berth('network', 'rm', 'l_iso_a', 'l_iso_b', 'l_iso_c').code).toBe(0);
  }, 120_000);

  it('whose namespace was lost (a reboot-like loss: processes killed -9, netns deleted) is removed by rm and by the next start', async () => {
    expect(berth('network', 'create', '--subnet', '10.135.0.0/24', 'l_lost').code).toBe(0);
    const netId = netInspect('l_lost').Id as string;
    const bridge = netInspect('l_lost').Options['com.docker.network.bridge.name'] as string;
    const ports = [await freePort(), await freePort()];
    for (const [i, p] of ports.entries()) expect(berth('run', '-d', '--name', `lost${i}`, '--network', 'l_lost', '-p', `${p}:80`, t.img, ...httpd(`lost${i}`)).code).toBe(0);
    const ids = ['lost0', 'lost1'].map(idOf);
    const ips = ['lost0', 'lost1'].map((n) => ipOf('l_lost', n));
    for (const id of ids) {
      // The container's processes, then its monitor: as a power cut would end them.
      const procs = hostText('ip', 'netns', 'pids', `berth-${id}`).split(/\s+/).filter(Boolean);
      for (const p of procs) process.kill(Number(p), 'SIGKILL');
      const monitor = Number(fs.readFileSync(path.join(t.root, 'containers', id, 'state', 'monitor.pid'), 'utf8'));
      try {
        process.kill(monitor, 'SIGKILL');
      } catch {
        // already gone with its container
      }
      execFileSync('ip', ['netns', 'delete', `berth-${id}`]);
    }
    // The namespaces are gone, but the rules, DNS names and bridge they had are not.
    expect(traces(ids[0]!, ips[0]!, netId).rules.length).toBeGreaterThan(0);
    expect(hostText('ip', '-br', 'link')).toContain(bridge);

    // One is started again: the stale state is torn down first, then it is wired anew on its old port.
    expect(berth('start', 'lost0').code).toBe(0);
    expect(await httpGet('127.0.0.1', ports[0]!)).toBe('lost0\n');
    const rules = traces(ids[0]!, ips[0]!, netId).rules.filter((l) => l.startsWith('-A '));
    expect(rules.length).toBeGreaterThan(0);
    expect(new Set(rules).size).toBe(rules.length); // no stale copy beside the new rules
    // The other is removed: through a stand-in namespace, its rules and name go too.
    expect(berth('rm', '-f', 'lost1').code).toBe(0);
    expect(traces(ids[1]!, ips[1]!, netId)).toEqual(clean);
    expect(berth('rm', '-f', 'lost0').code).toBe(0);
    expect(traces(ids[0]!, ips[0]!, netId)).toEqual(clean);
    expect(hostText('ip', '-br', 'link')).not.toContain(bridge);
    expect(hostText('iptables-save').split('\n').filter((l) => l.includes('10.135.0.'))).toEqual([]);
    expect(berth('network', 'rm', 'l_lost').code).toBe(0);
  }, 120_000);

  it('after kill -9 of berth rm at any point: what is left is removed by rm -f, and the rest by network prune', async () => {
    expect(berth('network', 'create', '--subnet', '10.136.0.0/24', 'l_rm').code).toBe(0);
    const netId = netInspect('l_rm').Id as string;
    const made: Array<{ id: string; ip: string }> = [];
    for (const delayMs of [20, 80, 150, 250, 400]) {
      expect(berth('run', '-d', '--name', `rm${delayMs}`, '--network', 'l_rm', '-p', '80', t.img, 'sleep', '300').code).toBe(0);
      made.push({ id: idOf(`rm${delayMs}`), ip: ipOf('l_rm', `rm${delayMs}`) });
      const child = spawn(BERTH_BIN, ['--root', t.root, 'rm', '-f', `rm${delayMs}`], { stdio: 'ignore', env: { ...process.env, BERTH_HOST_ROOT: '', BERTH_RUNTIME: '' } });
      const exited = new Promise((r) => child.once('exit', r));
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGKILL');
      await exited;
    }
    const left = (JSON.parse(berth('ps', '-a', '--json').stdout) as Array<{ name: string }>).map((c) => c.name).filter((n) => n.startsWith('rm'));
    if (left.length > 0) expect(berth('rm', '-f', ...left)).toMatchObject({ code: 0, stderr: '' });
    expect(berth('network', 'prune').stdout).toBe('Deleted Networks:\nl_rm\n');
    for (const m of made) expect(traces(m.id, m.ip, netId)).toEqual(clean);
    expect(hostText('iptables-save').split('\n').filter((l) => l.includes('10.136.0.'))).toEqual([]);
  }, 120_000);
});
