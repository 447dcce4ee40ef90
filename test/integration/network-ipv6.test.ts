import crypto from 'node:crypto';
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
    expect(berth('network', 'ls', '--format', '{{.Name}}').stdout).not.toMatch(/v6b|v6c/);
  });
});
