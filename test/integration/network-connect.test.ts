import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { berthOn, httpd, httpGet, inspections, openNetTestRoot, type NetTestRoot } from '../helpers/net/bridge.js';
import { freePort } from '../helpers/services/ports.js';

// berth network connect/disconnect with real traffic between berth's own containers and the host's
// loopback. Nothing else, ever: names are looked up only where aardvark-dns knows them.

let t: NetTestRoot;

beforeAll(async () => {
  t = await openNetTestRoot('netc');
}, 120_000);
afterAll(() => t?.close());

const berth = berthOn(() => t.root);
const { netInspect, ipOf } = inspections(berth);
const idOf = (name: string): string => (JSON.parse(berth('inspect', name).stdout) as Array<{ Id: string }>)[0]!.Id;
/** Runs a host tool inside a container's network namespace (berth's /run/netns/berth-<id>). */
const inNetns = (container: string, ...cmd: string[]) => {
  try {
    return { code: 0, stdout: execFileSync('ip', ['netns', 'exec', `berth-${idOf(container)}`, ...cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (err) {
    return { code: (err as { status: number }).status, stdout: '' };
  }
};
const interfaces = (container: string) => inNetns(container, 'ip', '-br', 'addr').stdout.split('\n').filter((l) => /^eth\d/.test(l)).map((l) => l.split(/[\s@]/)[0]!).sort();

describe('berth network connect and disconnect', () => {
  it('wire a running container to another network and back, live, keeping its published port', async () => {
    expect(berth('network', 'create', '--subnet', '10.126.0.0/24', 'c_front').code).toBe(0);
    expect(berth('network', 'create', '--subnet', '10.127.0.0/24', 'c_back').code).toBe(0);
    expect(berth('run', '-d', '--name', 'db', '--network', 'c_back', t.img, ...httpd('hello-from-db')).code).toBe(0);
    const port = await freePort();
    expect(berth('run', '-d', '--name', 'web', '--network', 'c_front', '-p', `${port}:80`, t.img, ...httpd('hello-from-web')).code).toBe(0);
    const dbIp = ipOf('c_back', 'db');
    const fetchDb = () => inNetns('web', 'curl', '-s', '-m', '3', `http://${dbIp}/`);
    expect(fetchDb().stdout).not.toContain('hello-from-db'); // another network: isolated

    expect(berth('network', 'connect', '--alias', 'frontend', '--ip', '10.127.0.77', 'c_back', 'web')).toMatchObject({ code: 0, stderr: '' });
    expect(interfaces('web')).toEqual(['eth0', 'eth1']);
    expect(fetchDb()).toMatchObject({ code: 0, stdout: 'hello-from-db\n' });
    expect(ipOf('c_back', 'web')).toBe('10.127.0.77');
    // Its name and alias resolve on the new network (aardvark-dns updated at once).
    const look = berth('run', '--rm', '--network', 'c_back', t.img, 'sh', '-c', 'nslookup web; nslookup frontend');
    expect(look.stdout.match(/Address: 10\.127\.0\.77/g)).toHaveLength(2);
    const settings = (JSON.parse(berth('inspect', 'web').stdout) as Array<Record<string, any>>)[0]!.NetworkSettings;
    expect(Object.keys(settings.Networks).sort()).toEqual(['c_back', 'c_front']);
    // The running container's resolv.conf names both networks' DNS (rewritten in place, seen through the bind mount).
    expect(fs.readFileSync(path.join(t.root, 'containers', idOf('web'), 'resolv.conf'), 'utf8')).toMatch(/nameserver 10\.126\.0\.1\nnameserver 10\.127\.0\.1\n/);
    expect(await httpGet('127.0.0.1', port)).toBe('hello-from-web\n');

    expect(berth('network', 'connect', 'c_back', 'web')).toMatchObject({ code: 5, stderr: expect.stringContaining('container web is already connected to network c_back') });
    expect(berth('network', 'connect', 'nope', 'web')).toMatchObject({ code: 4, stderr: expect.stringContaining('network nope not found') });
    const webFront = ipOf('c_front', 'web');
    expect(berth('network', 'connect', '--ip', webFront, 'c_front', 'db')).toMatchObject({ code: 5, stderr: expect.stringContaining(`--ip ${webFront} is already in use on network c_front`) });
    expect(netInspect('c_front').Containers).not.toHaveProperty(idOf('db')); // nothing half-made
    expect(berth('network', 'rm', 'c_back')).toMatchObject({ code: 5, stderr: expect.stringContaining('in use by containers') });

    expect(berth('network', 'disconnect', 'c_back', 'web')).toMatchObject({ code: 0, stderr: '' });
    expect(interfaces('web')).toEqual(['eth0']);
    expect(fetchDb().stdout).not.toContain('hello-from-db');
    expect(berth('network', 'disconnect', 'c_back', 'web')).toMatchObject({ code: 4, stderr: expect.stringContaining('container web is not connected to network c_back') });
    expect(await httpGet('127.0.0.1', port)).toBe('hello-from-web\n');
    // Its primary network can go too: the other stays wired as it is (eth1 keeps its name).
    expect(berth('network', 'connect', 'c_back', 'web').code).toBe(0);
    expect(berth('network', 'disconnect', 'c_front', 'web').code).toBe(0);
    expect(interfaces('web')).toEqual(['eth1']);
    expect(fetchDb()).toMatchObject({ code: 0, stdout: 'hello-from-db\n' });

    expect(berth('rm', '-f', 'web', 'db').code).toBe(0);
    expect(netInspect('c_back').Containers).toEqual({});
    const bridge = netInspect('c_back').Options['com.docker.network.bridge.name'] as string;
    expect(execFileSync('ip', ['-br', 'link'], { encoding: 'utf8' })).not.toContain(bridge);
    expect(execFileSync('iptables-save', { encoding: 'utf8' }).split('\n').filter((l) => /10\.12[67]\.0\./.test(l))).toEqual([]);
  }, 90_000);

  it('record a stopped container\'s connection for its next start; refuse a container without bridge networking', async () => {
    expect(berth('run', '-d', '--name', 'db2', '--network', 'c_back', t.img, ...httpd('db2-here')).code).toBe(0);
    const dbIp = ipOf('c_back', 'db2');
    // Created, never started: connect only records it; the start wires both networks.
    const create = berth('create', '--name', 'late', '--network', 'c_front', t.img, 'sh', '-c', `ip -o addr | grep -o 'eth[0-9]' | sort -u | tr '\\n' ' '; for i in 1 2 3 4 5; do timeout 2 wget -qO- http://${dbIp}/ && exit 0; sleep 0.2; done; exit 1`);
    expect(create.code).toBe(0);
    expect(berth('network', 'connect', 'c_back', 'late')).toMatchObject({ code: 0, stderr: '' });
    expect(fs.existsSync(`/run/netns/berth-${idOf('late')}`)).toBe(false);
    expect(berth('start', 'late').code).toBe(0);
    for (let i = 0; i < 50 && !berth('logs', 'late').stdout.includes('db2-here'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(berth('logs', 'late').stdout).toBe('eth0 eth1 db2-here\n');
    // A stopped container whose networking is still up (it ran in this boot) is unwired at once.
    expect(berth('network', 'disconnect', 'c_back', 'late').code).toBe(0);
    expect(interfaces('late')).toEqual(['eth0']);
    expect(berth('start', 'late').code).toBe(0);
    for (let i = 0; i < 80 && (JSON.parse(berth('inspect', 'late').stdout) as Array<{ State: { Running: boolean } }>)[0]!.State.Running; i++) await new Promise((r) => setTimeout(r, 100));
    expect(berth('logs', 'late').stdout).toMatch(/^eth0 eth1 db2-here\neth0 (?!db2-here)/);

    expect(berth('run', '-d', '--name', 'lonely', '--network', 'none', t.img, 'sleep', '300').code).toBe(0);
    expect(berth('network', 'connect', 'c_back', 'lonely')).toMatchObject({ code: 3, stderr: expect.stringContaining('container lonely uses --network none: it cannot be connected to a bridge network') });
    expect(berth('rm', '-f', 'late', 'db2', 'lonely').code).toBe(0);
    expect(berth('network', 'rm', 'c_front', 'c_back').code).toBe(0);
  }, 90_000);
});
