import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aardvarksOf } from '../helpers/net/aardvarks.js';
import { berthOn, httpGet, openNetTestRoot, type BerthResult, type NetTestRoot } from '../helpers/net/bridge.js';
import { RemoteNamespace } from '../helpers/net/remote-netns.js';
import { freePort } from '../helpers/services/ports.js';

// Issue 16's compose-level test: `berth deploy` of a two-service app on its default network, a second
// app deployed alongside (its own state root, as a second agent on the host) on its own network.
// Traffic: loopback, the containers, and a "remote" namespace this file makes (198.18.0.0/15).
//
// Names a DNS server does not know are forwarded to the host's resolvers, which no test may talk to:
// the integration setup (test/helpers/net/isolation-setup.ts) gives every berth a loopback-only
// upstream. These berths also use a network run directory of their own, so the aardvark-dns killed at
// the end is this file's.

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cnet-'));
const runDir = path.join(work, 'run');
const env = { BERTH_NETWORK_RUN_DIR: runDir };

let a: NetTestRoot;
let b: NetTestRoot;
let remote: RemoteNamespace;

beforeAll(async () => {
  a = await openNetTestRoot('cneta', env);
  b = await openNetTestRoot('cnetb', env);
  remote = await RemoteNamespace.create();
}, 180_000);
afterAll(async () => {
  await a?.close();
  await b?.close();
  await remote?.close();
  for (const pid of aardvarksOf(path.join(runDir, 'netavark', 'aardvark-dns'))) process.kill(pid, 'SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
});

const berthA = berthOn(() => a.root, env);
const berthB = berthOn(() => b.root, env);

function deploy(berth: (...args: string[]) => BerthResult, name: string, text: string): BerthResult {
  const file = path.join(work, name, 'compose.yaml');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return berth('deploy', file);
}

const httpd = (text: string) => JSON.stringify(['sh', '-c', `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`]);
const netOf = (berth: (...args: string[]) => BerthResult, name: string) => (JSON.parse(berth('network', 'inspect', name).stdout) as Array<Record<string, any>>)[0]!;
const hostText = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

describe('berth deploy of a compose app on its default network', () => {
  it('client reaches server by service name; the published port from 127.0.0.1 and a remote namespace; a second app can neither reach nor resolve it; removal leaves nothing', async () => {
    const port = await freePort();
    const appA = [
      'name: cna',
      'services:',
      '  server:',
      `    image: ${a.img}`,
      `    command: ${httpd('hello-from-server')}`,
      `    ports: ["${port}:80"]`,
      '    stop_grace_period: 1s',
      '  client:',
      `    image: ${a.img}`,
      '    command: ["sleep", "3600"]',
      '    container_name: cna-client',
      '    stop_grace_period: 1s',
      'networks:',
      '  default:',
      '    ipam: {config: [{subnet: 10.138.0.0/24}]}',
      'x-berth:',
      '  update: {health_window: 1s}',
      '',
    ].join('\n');
    expect(deploy(berthA, 'a', appA)).toMatchObject({ code: 0, stdout: 'revision 1: applied\n' });
    const netA = netOf(berthA, 'cna_default');
    expect(netA.IPAM.Config[0]).toMatchObject({ Subnet: '10.138.0.0/24', Gateway: '10.138.0.1' });
    const serverIp = (Object.values(netA.Containers) as Array<{ Name: string; IPv4Address: string }>).find((c) => c.Name.startsWith('server'))!.IPv4Address.split('/')[0]!;

    // By service name, from the other service.
    const byName = berthA('exec', 'cna-client', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do timeout 2 wget -qO- http://server/ && exit 0; sleep 0.2; done; exit 1');
    expect(byName).toMatchObject({ code: 0, stdout: 'hello-from-server\n' });
    const looked = berthA('exec', 'cna-client', 'sh', '-c', 'nslookup server');
    expect(looked.stdout, JSON.stringify(looked)).toContain(`Address: ${serverIp}`);
    // The published port, from the host and from another host.
    expect(await httpGet('127.0.0.1', port)).toBe('hello-from-server\n');
    expect(await remote.exec(['curl', '-s', '-m', '5', `http://${remote.hostIp}:${port}/`])).toMatchObject({ code: 0, stdout: 'hello-from-server\n' });

    const appB = [
      'name: cnb',
      'services:',
      '  probe:',
      `    image: ${b.img}`,
      '    command: ["sleep", "3600"]',
      '    container_name: cnb-probe',
      '    stop_grace_period: 1s',
      'networks:',
      '  default:',
      '    ipam: {config: [{subnet: 10.138.1.0/24}]}',
      'x-berth:',
      '  update: {health_window: 1s}',
      '',
    ].join('\n');
    expect(deploy(berthB, 'b', appB)).toMatchObject({ code: 0, stdout: 'revision 1: applied\n' });
    const netB = netOf(berthB, 'cnb_default');
    // Not by address (a refusal, not a dead server: the same request from app A's client succeeds).
    const outsider = berthB('exec', 'cnb-probe', 'sh', '-c', `timeout 3 wget -qO- http://${serverIp}/ && echo REACHED; exit 0`);
    expect(outsider).toMatchObject({ code: 0 });
    expect(outsider.stdout).not.toContain('REACHED');
    expect(berthA('exec', 'cna-client', 'sh', '-c', `timeout 3 wget -qO- http://${serverIp}/`).stdout).toBe('hello-from-server\n');
    // Not by name: neither through its own network's DNS nor by asking app A's DNS server directly.
    const ownDns = berthB('exec', 'cnb-probe', 'sh', '-c', 'nslookup server; nslookup client; nslookup cna-client; exit 0');
    expect(ownDns.stdout).not.toMatch(/Address: 10\.138\.0\./);
    const askA = berthB('exec', 'cnb-probe', 'sh', '-c', 'timeout 5 nslookup server 10.138.0.1; exit 0');
    expect(askA.stdout).not.toMatch(/Address: 10\.138\.0\./);

    // Removal: the containers, then the networks (prune), leave no bridge, veth, netns or rule.
    const ids = [a, b].flatMap((t) => (JSON.parse(berthOn(() => t.root, env)('ps', '-a', '--json').stdout) as Array<{ id: string }>).map((c) => c.id));
    expect(ids).toHaveLength(3);
    const bridges = [netA.Id as string, netB.Id as string].map((id) => `br-${id.slice(0, 12)}`);
    expect(hostText('ip', '-o', 'link', 'show', 'type', 'bridge')).toContain(bridges[0]);
    for (const berth of [berthA, berthB]) {
      const listed = JSON.parse(berth('ps', '-a', '--json').stdout) as Array<{ name: string }>;
      expect(berth('rm', '-f', ...listed.map((c) => c.name)).code).toBe(0);
      expect(berth('network', 'prune').code).toBe(0);
    }
    const links = hostText('ip', '-o', 'link');
    for (const br of bridges) expect(links).not.toContain(br);
    expect(links.split('\n').filter((l) => bridges.some((br) => l.includes(`master ${br}`)))).toEqual([]);
    expect(hostText('ip', 'netns', 'list').split('\n').filter((l) => ids.some((id) => l.includes(id)))).toEqual([]);
    expect(hostText('iptables-save').split('\n').filter((l) => l.includes('10.138.0.') || l.includes('10.138.1.') || l.includes(`:${port} `) || l.includes(`--dport ${port}`))).toEqual([]);
    expect(fs.readdirSync(path.join(runDir, 'netavark', 'aardvark-dns')).filter((f) => f !== 'aardvark.pid' && f !== 'placeholder')).toEqual([]);
  }, 240_000);
});
