import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { berthOn, httpd, inspections, openNetTestRoot, type NetTestRoot } from '../helpers/net/bridge.js';
import { RemoteNamespace } from '../helpers/net/remote-netns.js';
import { freePort } from '../helpers/services/ports.js';

// Dual-stack bridge networks (issue 16): real IPv6 traffic between containers, by name (AAAA from
// aardvark-dns), and to a published port from a "remote" namespace this file makes. Addresses: ULA
// prefixes chosen here (fd42::/16 for the network, fd5e::/16 for the remote link), nothing else.

let t: NetTestRoot;
let remote: RemoteNamespace;

beforeAll(async () => {
  t = await openNetTestRoot('nv6');
  remote = await RemoteNamespace.create();
}, 180_000);
afterAll(async () => {
  await t?.close();
  await remote?.close();
});

const berth = berthOn(() => t.root);
const { netInspect } = inspections(berth);
const tag = crypto.randomBytes(4).toString('hex');
const subnet = `fd42:${tag.slice(0, 4)}:${tag.slice(4)}::/64`;

describe('dual-stack networks', () => {
  it('containers reach each other over IPv6 by name; the published port answers on the host\'s IPv6 address from a remote namespace', async () => {
    expect(berth('network', 'create', '--ipv6', '--subnet', subnet, 'v6a')).toMatchObject({ code: 0 });
    const n = netInspect('v6a');
    expect(n.EnableIPv6).toBe(true);
    expect(n.IPAM.Config[1]).toEqual({ Subnet: subnet, Gateway: subnet.replace('::/64', '::1') });

    const port = await freePort();
    expect(berth('run', '-d', '--name', 'v6srv', '--network', 'v6a', '-p', `[::]:${port}:80`, t.img, ...httpd('hello-v6'))).toMatchObject({ code: 0 });
    const entry = Object.values(netInspect('v6a').Containers as Record<string, { Name: string; IPv6Address: string }>).find((c) => c.Name === 'v6srv')!;
    const srv6 = entry.IPv6Address.split('/')[0]!;
    expect(srv6).toBe(subnet.replace('::/64', '::2'));

    const client = berth('run', '--rm', '--network', 'v6a', t.img, 'sh', '-c',
      `nslookup -type=AAAA v6srv; for i in 1 2 3 4 5 6 7 8 9 10; do timeout 2 wget -qO- "http://[${srv6}]/" && exit 0; sleep 0.3; done; exit 1`);
    expect(client.code, client.stderr).toBe(0);
    expect(client.stdout).toContain(`Address: ${srv6}`);
    expect(client.stdout).toContain('hello-v6\n');

    const viaRemote = await remote.exec(['curl', '-g', '-s', '-m', '5', `http://[${remote.hostIp6}]:${port}/`]);
    expect(viaRemote).toMatchObject({ code: 0, stdout: 'hello-v6\n' });
    const loop = await remote.exec(['true']);
    expect(loop.code).toBe(0);
    expect(berth('rm', '-f', 'v6srv')).toMatchObject({ code: 0 });
  });

  it('refuses bad IPv6 input naming it', () => {
    const overlap = berth('network', 'create', '--ipv6', '--subnet', subnet.replace('/64', '/56'), 'v6b');
    expect(overlap.code).not.toBe(0);
    expect(overlap.stderr).toContain(`overlaps ${subnet} of network "v6a"`);
    const noFlag = berth('network', 'create', '--subnet', 'fd42:1::/64', 'v6c');
    expect(noFlag.stderr).toContain('fd42:1::/64 is an IPv6 address: the network needs --ipv6');
    const outside = berth('run', '--rm', '--network', 'v6a', '--ip6', 'fd43::5', t.img, 'true');
    expect(outside.stderr).toContain(`--ip6 fd43::5 is not an address of network v6a's IPv6 subnet ${subnet}`);
    const v4only = berth('network', 'create', 'v4only');
    expect(v4only.code).toBe(0);
    expect(berth('run', '--rm', '--network', 'v4only', '--ip6', 'fd42::5', t.img, 'true').stderr).toContain('--ip6 fd42::5: network v4only has no IPv6 subnet');
    // The refused creates left no network (ls has no --format: that flag made this check pass on an error).
    const ls = berth('network', 'ls');
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain(' v6a ');
    expect(ls.stdout).not.toMatch(/v6b|v6c/);
  });

  it('0.0.0.0:P publishes on IPv4 only, [::]:P on IPv6 only, no address on both (seen from a remote namespace); [::] without IPv6 is refused', async () => {
    const [p4, p6, both] = [await freePort(), await freePort(), await freePort()];
    expect(berth('run', '-d', '--name', 'fam', '--network', 'v6a', '-p', `0.0.0.0:${p4}:80`, '-p', `[::]:${p6}:80`, '-p', `${both}:80`, t.img, ...httpd('fam'))).toMatchObject({ code: 0 });
    const get = (host: string, port: number) => remote.exec(['curl', '-g', '-s', '-m', '5', `http://${host}:${port}/`]);
    const v4 = remote.hostIp;
    const v6 = `[${remote.hostIp6}]`;
    // The server may take a moment to listen: the first, expected-to-work request retries.
    for (let i = 0; i < 20 && (await get(v4, both)).code !== 0; i++) await new Promise((r) => setTimeout(r, 250));
    expect(await get(v4, both)).toMatchObject({ code: 0, stdout: 'fam\n' });
    expect(await get(v6, both)).toMatchObject({ code: 0, stdout: 'fam\n' });
    expect(await get(v4, p4)).toMatchObject({ code: 0, stdout: 'fam\n' });
    expect((await get(v6, p4)).code).not.toBe(0);
    expect(await get(v6, p6)).toMatchObject({ code: 0, stdout: 'fam\n' });
    expect((await get(v4, p6)).code).not.toBe(0);
    // A restart keeps them so (the networking stays up), and after rm nothing answers on either family.
    expect(berth('restart', 'fam')).toMatchObject({ code: 0 });
    for (let i = 0; i < 20 && (await get(v6, p6)).code !== 0; i++) await new Promise((r) => setTimeout(r, 250));
    expect((await get(v4, p6)).code).not.toBe(0);
    expect(berth('rm', '-f', 'fam')).toMatchObject({ code: 0 });
    expect((await get(v6, p6)).code).not.toBe(0);
    expect((await get(v4, p4)).code).not.toBe(0);

    const noV6 = berth('run', '-d', '--network', 'v4only', '-p', `[::]:${p6}:80`, t.img, 'true');
    expect(noV6.code).not.toBe(0);
    expect(noV6.stderr).toContain(`-p [::]:${p6}->80/tcp publishes on IPv6 only, and`);
  });

  it('network connect --ip6 gives a running container that IPv6 address (reached by name over IPv6), with run --ip6\'s refusals; ls shows both subnets', () => {
    const addr = subnet.replace('::/64', '::77');
    expect(berth('run', '-d', '--name', 'late', '--network', 'v4only', t.img, ...httpd('late-v6'))).toMatchObject({ code: 0 });
    expect(berth('network', 'connect', '--ip6', addr, 'v6a', 'late')).toMatchObject({ code: 0 });
    const client = berth('run', '--rm', '--network', 'v6a', t.img, 'sh', '-c',
      `nslookup -type=AAAA late; for i in 1 2 3 4 5 6 7 8 9 10; do timeout 2 wget -qO- "http://[${addr}]/" && exit 0; sleep 0.3; done; exit 1`);
    expect(client.code, client.stderr).toBe(0);
    expect(client.stdout).toContain(`Address: ${addr}`);
    expect(client.stdout).toContain('late-v6\n');

    expect(berth('run', '-d', '--name', 'late2', '--network', 'v4only', t.img, 'sleep', '300')).toMatchObject({ code: 0 });
    expect(berth('network', 'connect', '--ip6', addr, 'v6a', 'late2').stderr).toContain(`--ip6 ${addr} is already in use on network v6a`);
    expect(berth('network', 'connect', '--ip6', 'fd43::5', 'v6a', 'late2').stderr).toContain(`--ip6 fd43::5 is not an address of network v6a's IPv6 subnet ${subnet}`);
    expect(berth('network', 'create', 'v4two')).toMatchObject({ code: 0 });
    expect(berth('network', 'connect', '--ip6', 'fd42::5', 'v4two', 'late2').stderr).toContain('--ip6 fd42::5: network v4two has no IPv6 subnet');
    // The refusals left late2 on its one network.
    expect(berth('network', 'disconnect', 'v6a', 'late2').stderr).toContain('is not connected to network v6a');

    const row = berth('network', 'ls').stdout.split('\n').find((l) => /\sv6a\s/.test(l))!;
    expect(row).toMatch(/\s10\.\d+\.\d+\.0\/\d+,/);
    expect(row.trim().endsWith(`,${subnet}`)).toBe(true);
    expect(berth('rm', '-f', 'late', 'late2')).toMatchObject({ code: 0 });
  });

  it('compose: ipv6_address on a service\'s second network is its address there, reached over IPv6', () => {
    const back = `fd43:${tag.slice(0, 4)}:${tag.slice(4)}::/64`;
    const addr = back.replace('::/64', '::30');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-c6-'));
    const file = path.join(dir, 'compose.yaml');
    fs.writeFileSync(file, [
      'name: c6',
      'services:',
      '  srv:',
      `    image: ${t.img}`,
      `    command: ${JSON.stringify(httpd('compose-v6'))}`,
      '    networks:',
      '      front: {}',
      `      back: {ipv6_address: "${addr}"}`,
      'networks:',
      '  front: {}',
      `  back: {enable_ipv6: true, ipam: {config: [{subnet: "${back}"}]}}`,
      '',
    ].join('\n'));
    try {
      const deployed = berth('deploy', file);
      expect(deployed.code, deployed.stderr).toBe(0);
      const client = berth('run', '--rm', '--network', 'c6_back', t.img, 'sh', '-c',
        `nslookup -type=AAAA srv; for i in 1 2 3 4 5 6 7 8 9 10; do timeout 2 wget -qO- "http://[${addr}]/" && exit 0; sleep 0.3; done; exit 1`);
      expect(client.code, client.stderr).toBe(0);
      expect(client.stdout).toContain(`Address: ${addr}`);
      expect(client.stdout).toContain('compose-v6\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
