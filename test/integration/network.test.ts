import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BERTH_BIN } from '../helpers/dist.js';
import { berthOn, httpd, httpGet, inspections, openNetTestRoot, type NetTestRoot } from '../helpers/net/bridge.js';
import { RemoteNamespace } from '../helpers/net/remote-netns.js';
import { freePort } from '../helpers/services/ports.js';

// Real bridge networking through netavark: traffic only between the host (loopback), berth's
// containers and a "remote" namespace this file makes itself (198.18.0.0/15). Nothing else, ever.

let t: NetTestRoot;
let remote: RemoteNamespace;

beforeAll(async () => {
  t = await openNetTestRoot('net');
  remote = await RemoteNamespace.create();
}, 120_000);

afterAll(async () => {
  await t?.close();
  await remote?.close();
});

const berth = berthOn(() => t.root);
const { netInspect, ipOf } = inspections(berth);
const hostText = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

describe('berth network', () => {
  it('create, ls, inspect, rm and prune, with docker shapes and clear errors', () => {
    const created = berth('network', 'create', '--subnet', '10.123.0.0/24', '--ip-range', '10.123.0.128/25', '--label', 'team=iot', 'mgmt');
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(created.stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
    const ls = berth('network', 'ls');
    expect(ls.stdout).toMatch(/^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE\s+SUBNET\n/);
    expect(ls.stdout).toMatch(/\bmgmt\s+bridge\s+local\s+10\.123\.0\.0\/24\n/);
    expect(ls.stdout).toMatch(/\bbridge\s+bridge\s+local\s+\S+\n/); // docker's default network is always listed
    expect(netInspect('mgmt')).toMatchObject({
      Name: 'mgmt', Driver: 'bridge', Scope: 'local', Internal: false, Labels: { team: 'iot' }, Containers: {},
      IPAM: { Config: [{ Subnet: '10.123.0.0/24', Gateway: '10.123.0.1', IPRange: '10.123.0.128/25' }] },
    });

    expect(berth('network', 'create', 'mgmt')).toMatchObject({ code: 5, stderr: expect.stringContaining('network with name mgmt already exists') });
    expect(berth('network', 'create', '--subnet', '10.123.0.64/26', 'other')).toMatchObject({ code: 5, stderr: expect.stringContaining('--subnet 10.123.0.64/26 overlaps 10.123.0.0/24 of network "mgmt"') });
    expect(berth('network', 'create', '--gateway', '10.1.1.1', 'gw')).toMatchObject({ code: 2, stderr: expect.stringContaining('--gateway needs --subnet') });
    expect(berth('network', 'inspect', 'nope')).toMatchObject({ code: 4, stderr: expect.stringContaining('network nope not found') });

    expect(berth('run', '-d', '--name', 'holder', '--network', 'mgmt', t.img, 'sleep', '300').code).toBe(0);
    expect(ipOf('mgmt', 'holder')).toBe('10.123.0.128');
    expect(berth('network', 'rm', 'mgmt')).toMatchObject({ code: 5, stderr: expect.stringContaining('network mgmt is in use by container holder') });
    expect(berth('network', 'prune').stdout).not.toContain('mgmt');
    expect(berth('rm', '-f', 'holder').code).toBe(0);
    expect(berth('network', 'create', 'spare').code).toBe(0);
    expect(berth('network', 'prune').stdout).toBe('Deleted Networks:\nmgmt\nspare\n');
    expect(berth('network', 'rm', 'spare')).toMatchObject({ code: 4 });
  });
});

describe('containers on bridge networks', () => {
  it('reach each other by name on a user network, and cannot reach a container on another network', () => {
    expect(berth('network', 'create', 'app_a').code).toBe(0);
    expect(berth('network', 'create', 'app_b').code).toBe(0);
    expect(berth('run', '-d', '--name', 'server', '--network', 'app_a', '--network-alias', 'mqtt', t.img, ...httpd('hello-from-server')).code).toBe(0);

    const client = berth('run', '--rm', '--network', 'app_a', t.img, 'sh', '-c', 'cat /etc/resolv.conf; for i in 1 2 3 4 5 6 7 8 9 10; do timeout 2 wget -qO- http://server/ && exit 0; sleep 0.2; done; exit 1');
    expect(client).toMatchObject({ code: 0, stdout: expect.stringContaining('hello-from-server') });
    expect(client.stdout).toMatch(/^nameserver 10\.89\.\d+\.1$/m);
    const looked = berth('run', '--rm', '--network', 'app_a', t.img, 'sh', '-c', 'nslookup server');
    expect(looked.stdout).toContain(`Address: ${ipOf('app_a', 'server')}`);
    expect(berth('run', '--rm', '--network', 'app_a', t.img, 'sh', '-c', 'timeout 2 wget -qO- http://mqtt/').stdout).toBe('hello-from-server\n');
    expect(berth('run', '--rm', '--network-alias', 'x', '--network', 'bridge', t.img, 'true')).toMatchObject({ code: 3, stderr: expect.stringContaining('--network-alias needs a user network: bridge has no DNS') });

    const serverIp = ipOf('app_a', 'server');
    // By address only: a name unknown to app_b's DNS would be forwarded to the host's resolvers, which
    // these tests never talk to. (busybox wget's own -T crashes in this static build; timeout(1) instead.)
    const outsider = berth('run', '--rm', '--network', 'app_b', t.img, 'sh', '-c', `timeout 2 wget -qO- http://${serverIp}/ && echo REACHED; exit 0`);
    expect(outsider.code).toBe(0);
    expect(outsider.stdout).not.toContain('REACHED');
    // The same request from app_a succeeds: the refusal above is isolation, not a dead server.
    expect(berth('run', '--rm', '--network', 'app_a', t.img, 'sh', '-c', `timeout 2 wget -qO- http://${serverIp}/`).stdout).toBe('hello-from-server\n');

    // A replaced container's new address is what its name resolves to, within a second (docker's rule).
    expect(berth('rm', '-f', 'server').code).toBe(0);
    expect(berth('run', '-d', '--name', 'filler', '--network', 'app_a', t.img, 'sleep', '300').code).toBe(0); // takes the freed address
    expect(berth('run', '-d', '--name', 'server', '--network', 'app_a', t.img, ...httpd('hello-again')).code).toBe(0);
    const newIp = ipOf('app_a', 'server');
    expect(newIp).not.toBe(serverIp);
    // The 1 s rule is checked by counting lookups in network-modes.test.ts (a wall-clock bound on a whole
    // run failed on a loaded machine); here the first lookup of a new container must already see it.
    const again = berth('run', '--rm', '--network', 'app_a', t.img, 'sh', '-c', 'nslookup server');
    expect(again.stdout).toContain(`Address: ${newIp}`);
    expect(berth('rm', '-f', 'server', 'filler').code).toBe(0);
  }, 90_000);

  it('publishes ports to 127.0.0.1 and to a remote namespace; refuses a host port in use, naming it', async () => {
    const port = await freePort();
    const run = berth('run', '-d', '--name', 'web', '--network', 'bridge', '-p', `${port}:80`, '-p', '80', t.img, ...httpd('hello-from-web'));
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(await httpGet('127.0.0.1', port)).toBe('hello-from-web\n');
    const settings = (JSON.parse(berth('inspect', 'web').stdout) as Array<Record<string, any>>)[0]!.NetworkSettings;
    expect(settings.Ports[`80/tcp`][0]).toEqual({ HostIp: '0.0.0.0', HostPort: String(port) });
    const ephemeral = Number(settings.Ports['80/tcp'][1].HostPort);
    expect(ephemeral).toBeGreaterThan(1024);
    // 10.88.0.0/16 unless another state root on this host (a test file running alongside) claimed it first.
    const { Subnet, Gateway } = netInspect('bridge').IPAM.Config[0] as { Subnet: string; Gateway: string };
    expect(['10.88.0.0/16', ...Array.from({ length: 256 }, (_, i) => `10.89.${i}.0/24`)]).toContain(Subnet);
    expect(settings.Networks.bridge).toMatchObject({ IPAddress: ipOf('bridge', 'web'), Gateway, IPPrefixLen: Number(Subnet.split('/')[1]) });
    expect(ipOf('bridge', 'web').split('.').slice(0, 2).join('.')).toBe(Subnet.split('.').slice(0, 2).join('.'));
    expect(berth('port', 'web').stdout).toBe(`80/tcp -> 0.0.0.0:${port}\n80/tcp -> 0.0.0.0:${ephemeral}\n`);
    expect(berth('ps').stdout).toContain(`0.0.0.0:${port}->80/tcp, 0.0.0.0:${ephemeral}->80/tcp`);
    expect(await httpGet('127.0.0.1', ephemeral)).toBe('hello-from-web\n');
    const fromRemote = await remote.exec(['curl', '-s', '-m', '5', `http://${remote.hostIp}:${port}/`]);
    expect(fromRemote).toMatchObject({ code: 0, stdout: 'hello-from-web\n' });

    // The same host port again: refused before anything is made, naming the container that has it.
    const again = berth('run', '-d', '--name', 'web2', '--network', 'bridge', '-p', `${port}:80`, t.img, 'true');
    expect(again).toMatchObject({ code: 5, stderr: expect.stringContaining(`host port 0.0.0.0:${port}->80/tcp is already published by container web`) });
    // A port a host process listens on: refused, naming the process.
    const busy = net.createServer();
    const busyPort = await new Promise<number>((resolve) => busy.listen(0, '127.0.0.1', () => resolve((busy.address() as net.AddressInfo).port)));
    try {
      const held = berth('run', '-d', '--name', 'web3', '--network', 'bridge', '-p', `127.0.0.1:${busyPort}:80`, t.img, 'true');
      expect(held).toMatchObject({ code: 5, stderr: expect.stringContaining(`host port ${busyPort}/tcp (-p 127.0.0.1:${busyPort}->80/tcp) is already in use by pid ${process.pid}`) });
    } finally {
      busy.close();
    }
    // Nothing was made for the refused ones.
    expect(JSON.parse(berth('ps', '-a', '--json').stdout).map((c: { name: string }) => c.name).filter((n: string) => n.startsWith('web'))).toEqual(['web']);
    expect(berth('run', '-d', '--name', 'web4', '--network', 'none', '-p', '8080:80', t.img, 'true')).toMatchObject({ code: 3, stderr: expect.stringContaining('-p/--publish needs a bridge network, not --network none') });
    // docker's host range for one container port: the first free one (web has the range's first).
    expect(berth('run', '-d', '--name', 'ranged', '--network', 'bridge', '-p', `${port}-${port + 5}:80`, t.img, ...httpd('hello-from-ranged'))).toMatchObject({ code: 0, stderr: '' });
    const rangedPort = Number(/^80\/tcp -> 0\.0\.0\.0:(\d+)\n$/.exec(berth('port', 'ranged').stdout)?.[1]);
    expect(rangedPort).toBeGreaterThan(port);
    expect(rangedPort).toBeLessThanOrEqual(port + 5);
    expect(await httpGet('127.0.0.1', rangedPort)).toBe('hello-from-ranged\n');
    const listed = JSON.parse(berth('ps', '--json').stdout) as Array<{ name: string; ports: unknown }>;
    expect(listed.find((c) => c.name === 'ranged')!.ports).toEqual([{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: rangedPort, Type: 'tcp' }]);
    expect(listed.find((c) => c.name === 'web')!.ports).toEqual([{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: port, Type: 'tcp' }, { IP: '0.0.0.0', PrivatePort: 80, PublicPort: ephemeral, Type: 'tcp' }]);
    expect(berth('rm', '-f', 'web', 'ranged').code).toBe(0);
  }, 60_000);

  it('reaches a remote host through NAT (the remote sees the host address, not the container one)', async () => {
    const port = await freePort();
    await remote.serveHttp(port);
    const r = berth('run', '--rm', '--network', 'bridge', t.img, 'sh', '-c', `timeout 5 wget -qO- http://${remote.remoteIp}:${port}/`);
    expect(r).toMatchObject({ code: 0, stdout: `remote ${remote.hostIp}\n` });

    // An --internal network has no way out, and cannot publish ports.
    expect(berth('network', 'create', '--internal', 'closed').code).toBe(0);
    const shut = berth('run', '--rm', '--network', 'closed', t.img, 'sh', '-c', `timeout 3 wget -qO- http://${remote.remoteIp}:${port}/ && echo REACHED; exit 0`);
    expect(shut).toMatchObject({ code: 0 });
    expect(shut.stdout).not.toContain('REACHED');
    expect(berth('run', '--rm', '--network', 'closed', '-p', '80', t.img, 'true')).toMatchObject({ code: 3, stderr: expect.stringContaining('network closed is internal: it cannot publish ports (-p)') });
    expect(berth('network', 'rm', 'closed').code).toBe(0);
  }, 30_000);

  it('rm leaves no veth, bridge, netns, firewall rule or DNS entry behind', async () => {
    expect(berth('network', 'create', '--subnet', '10.124.0.0/24', 'leak').code).toBe(0);
    const port = await freePort();
    const id = berth('run', '-d', '--name', 'leaky', '--network', 'leak', '-p', `${port}:80`, t.img, 'sleep', '300').stdout.trim();
    const n = netInspect('leak');
    const bridge = n.Options['com.docker.network.bridge.name'] as string;
    const links = () => hostText('ip', '-br', 'link').split('\n').map((l) => l.split(/[\s@]/)[0]!);
    // The container's host-side veth: the bridge's member now; after rm, no link of that name may remain.
    const veths = hostText('ip', '-br', 'link', 'show', 'master', bridge).split('\n').filter(Boolean).map((l) => l.split(/[\s@]/)[0]!);
    const traces = () => ({
      bridge: links().includes(bridge),
      veth: veths.length > 0 && veths.some((v) => links().includes(v)),
      rules: hostText('iptables-save').split('\n').filter((l) => l.includes('10.124.0.') || l.includes(`--dport ${port} `) || l.includes(id)),
      netns: fs.existsSync(`/run/netns/berth-${id}`),
      dns: fs.existsSync(path.join(process.env.BERTH_NETWORK_RUN_DIR!, `netavark/aardvark-dns/${n.Id}`)),
    });
    const up = traces();
    expect(up).toMatchObject({ bridge: true, veth: true, netns: true, dns: true });
    expect(up.rules.length).toBeGreaterThan(0);

    expect(berth('rm', '-f', 'leaky').code).toBe(0);
    expect(traces()).toEqual({ bridge: false, veth: false, rules: [], netns: false, dns: false });
    expect(netInspect('leak').Containers).toEqual({});
    expect(berth('network', 'rm', 'leak')).toMatchObject({ code: 0, stdout: 'leak\n' });
  }, 30_000);

  it('kill -9 of berth at any point of run leaves nothing that rm -f does not remove', async () => {
    expect(berth('network', 'create', '--subnet', '10.125.0.0/24', 'crash').code).toBe(0);
    for (const delayMs of [50, 150, 300, 450, 600, 800, 1100]) {
      const child = spawn(BERTH_BIN, ['--root', t.root, 'run', '-d', '--name', `crash${delayMs}`, '--network', 'crash', '-p', '80', t.img, 'sleep', '300'], { stdio: 'ignore', env: { ...process.env, BERTH_HOST_ROOT: '', BERTH_RUNTIME: '' } });
      const exited = new Promise((r) => child.once('exit', r));
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGKILL'); // a no-op when the run already finished
      await exited;
    }
    const made = (JSON.parse(berth('ps', '-a', '--json').stdout) as Array<{ name: string; id: string }>).filter((c) => c.name.startsWith('crash'));
    if (made.length > 0) expect(berth('rm', '-f', ...made.map((c) => c.name)).code).toBe(0);
    const bridge = netInspect('crash').Options['com.docker.network.bridge.name'] as string;
    expect(hostText('ip', '-br', 'link')).not.toContain(bridge);
    expect(hostText('iptables-save').split('\n').filter((l) => l.includes('10.125.0.'))).toEqual([]);
    expect(fs.readdirSync('/run/netns').filter((n) => made.some((c) => n === `berth-${c.id}`))).toEqual([]);
  }, 120_000);
});
