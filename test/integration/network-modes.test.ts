import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectBoard } from '../../src/board/index.js';
import { hostPaths } from '../../src/host/paths.js';
import { BerthRoot } from '../../src/root.js';
import type { ContainerEngine } from '../../src/runtime/engine-api.js';
import { defaultRunOptions } from '../../src/runtime/options.js';
import { berthOn, httpd, httpGet, inspections, openNetTestRoot, type NetTestRoot } from '../helpers/net/bridge.js';
import { freePort } from '../helpers/services/ports.js';
import { netTestEnv } from '../helpers/net/test-env.js';

// Static addresses, several networks per container, --network container:X, the default bridge of
// `berth run`, and name resolution after a replacement: real traffic between berth's own containers
// and the host's loopback only. Names are looked up only where aardvark-dns knows them.

let t: NetTestRoot;
let parts: BerthRoot;
let engine: ContainerEngine;

beforeAll(async () => {
  t = await openNetTestRoot('netm');
  const host = hostPaths('/');
  parts = new BerthRoot({ root: t.root, host, env: { PATH: process.env.PATH, ...netTestEnv() }, version: 'test', board: detectBoard(host) });
  engine = await parts.engine();
}, 120_000);

afterAll(async () => {
  parts?.close();
  await t?.close();
});

const berth = berthOn(() => t.root);
const { netInspect, ipOf } = inspections(berth);
const names = () => (JSON.parse(berth('ps', '-a', '--json').stdout) as Array<{ name: string }>).map((c) => c.name);

describe('static addresses and several networks', () => {
  it('--ip takes the address asked for; one outside the subnet, in use, or on the default bridge is refused naming it, with nothing made', () => {
    expect(berth('network', 'create', '--subnet', '10.130.0.0/24', 'm_static').code).toBe(0);
    expect(berth('run', '-d', '--name', 'fixed', '--network', 'm_static', '--ip', '10.130.0.50', t.img, 'sleep', '300')).toMatchObject({ code: 0, stderr: '' });
    expect(ipOf('m_static', 'fixed')).toBe('10.130.0.50');
    expect(berth('run', '-d', '--name', 'outside', '--network', 'm_static', '--ip', '10.131.0.5', t.img, 'true')).toMatchObject({ code: 3, stderr: expect.stringContaining('--ip 10.131.0.5 is not a usable address of network m_static (10.130.0.0/24)') });
    expect(berth('run', '-d', '--name', 'twice', '--network', 'm_static', '--ip', '10.130.0.50', t.img, 'true')).toMatchObject({ code: 5, stderr: expect.stringContaining('--ip 10.130.0.50 is already in use on network m_static') });
    expect(berth('run', '-d', '--name', 'dflt', '--ip', '10.88.0.77', t.img, 'true')).toMatchObject({ code: 3, stderr: expect.stringContaining('--ip 10.88.0.77: a static address needs a user network, not the default bridge') });
    expect(berth('run', '-d', '--name', 'bad', '--network', 'm_static', '--ip', '10.130.0.x', t.img, 'true')).toMatchObject({ code: 3, stderr: expect.stringContaining('--ip') });
    expect(names()).toEqual(['fixed']);
    expect(Object.keys(netInspect('m_static').Containers)).toHaveLength(1);
    expect(berth('rm', '-f', 'fixed').code).toBe(0);
  });

  it('joins every endpoint at create, each with its aliases and address; a refused endpoint leaves no lease on the others', async () => {
    expect(berth('network', 'create', '--subnet', '10.132.0.0/24', 'm_front').code).toBe(0);
    expect(berth('network', 'create', '--subnet', '10.133.0.0/24', 'm_back').code).toBe(0);
    const options = {
      ...defaultRunOptions('multi'), network: 'm_front', cmd: httpd('hello-from-multi'),
      endpoints: [{ network: 'm_front', aliases: ['api'] }, { network: 'm_back', aliases: ['store-client'], ipv4Address: '10.133.0.9' }],
    };
    await engine.start(engine.create(t.img, options).id);
    expect(ipOf('m_back', 'multi')).toBe('10.133.0.9');
    // Each network's DNS answers that network's aliases, and traffic flows on both interfaces.
    const front = berth('run', '--rm', '--network', 'm_front', t.img, 'sh', '-c', 'nslookup api; for i in 1 2 3 4 5 6 7 8 9 10; do timeout 2 wget -qO- http://api/ && exit 0; sleep 0.2; done; exit 1');
    expect(front).toMatchObject({ code: 0, stdout: expect.stringContaining('hello-from-multi') });
    expect(front.stdout).toContain(`Address: ${ipOf('m_front', 'multi')}`);
    const back = berth('run', '--rm', '--network', 'm_back', t.img, 'sh', '-c', 'nslookup store-client; timeout 2 wget -qO- http://10.133.0.9/');
    expect(back.stdout).toMatch(/Address: 10\.133\.0\.9\n[\s\S]*hello-from-multi/);
    // The front network does not know the back network's alias (answers come from the network asked).
    expect(berth('run', '--rm', '--network', 'm_back', t.img, 'sh', '-c', 'nslookup api 10.133.0.1 >/dev/null && echo KNOWN; exit 0').stdout).not.toContain('KNOWN');

    const refused = { ...defaultRunOptions('half'), network: 'm_front', cmd: ['true'], endpoints: [{ network: 'm_front', aliases: [] }, { network: 'm_back', aliases: [], ipv4Address: '10.133.0.9' }] };
    expect(() => engine.create(t.img, refused)).toThrow('--ip 10.133.0.9 is already in use on network m_back');
    expect(Object.keys(netInspect('m_front').Containers)).toHaveLength(1);
    expect(names()).toEqual(['multi']);
    expect(berth('rm', '-f', 'multi').code).toBe(0);
    expect(berth('network', 'rm', 'm_front', 'm_back', 'm_static').code).toBe(0);
  }, 60_000);
});

describe('--network container:X', () => {
  it("shares X's namespace, /etc/hosts, resolv.conf and hostname; refuses X not running, and --hostname", async () => {
    const port = await freePort();
    expect(berth('run', '-d', '--name', 'host1', '--hostname', 'gateway1', '-p', `${port}:8080`, t.img, 'sleep', '300').code).toBe(0);
    // The sidecar serves on port 8080 of host1's namespace: reachable through host1's published port.
    expect(berth('run', '-d', '--name', 'side', '--network', 'container:host1', t.img, 'sh', '-c', 'mkdir -p /w && echo from-sidecar > /w/index.html && exec httpd -f -p 8080 -h /w')).toMatchObject({ code: 0, stderr: '' });
    expect(await httpGet('127.0.0.1', port)).toBe('from-sidecar\n');
    const seen = berth('run', '--rm', '--network', 'container:host1', t.img, 'sh', '-c', 'hostname; cat /etc/hosts /etc/resolv.conf; wget -qO- http://127.0.0.1:8080/');
    const hostId = (JSON.parse(berth('inspect', 'host1').stdout) as Array<{ Id: string }>)[0]!.Id;
    expect(seen.stdout).toBe(['gateway1', fs.readFileSync(path.join(t.root, 'containers', hostId, 'hosts'), 'utf8') + fs.readFileSync(path.join(t.root, 'containers', hostId, 'resolv.conf'), 'utf8') + 'from-sidecar', ''].join('\n'));
    expect(seen.stdout).toContain(`${ipOf('bridge', 'host1')}\tgateway1`);

    expect(berth('run', '--rm', '--network', 'container:host1', '--hostname', 'x', t.img, 'true')).toMatchObject({ code: 3, stderr: expect.stringContaining('--hostname conflicts with --network container:host1') });
    expect(berth('run', '--rm', '--network', 'container:nope', t.img, 'true')).toMatchObject({ code: 4, stderr: expect.stringContaining('no such container: nope') });
    expect(berth('stop', '-t', '0', 'host1').code).toBe(0);
    expect(berth('run', '-d', '--name', 'orphan', '--network', 'container:host1', t.img, 'true')).toMatchObject({ code: 5, stderr: expect.stringContaining('cannot start orphan: container host1, whose network it joins (--network container:host1), is not running') });
    expect(berth('rm', '-f', 'side', 'orphan', 'host1').code).toBe(0);
  }, 60_000);
});

describe('the default network of berth run', () => {
  it('is bridge (an address on 10.88/16 and a way out); none and private keep loopback only', () => {
    const dflt = berth('run', '--rm', t.img, 'cat', '/proc/net/route');
    expect(dflt).toMatchObject({ code: 0 });
    expect(dflt.stdout).toMatch(/^eth0\s+00000000\s+(?!00000000)[0-9A-F]{8}\s/m); // a default route via the bridge's gateway
    for (const mode of ['none', 'private']) {
      const r = berth('run', '--rm', '--network', mode, t.img, 'sh', '-c', 'ls /sys/class/net | tr "\\n" " "');
      expect(r).toMatchObject({ code: 0, stdout: 'lo ' });
    }
  });
});

describe('names after a replacement', () => {
  it("resolve to the new container's address within 1 s of its run returning (bounded attempts, 100 ms apart)", async () => {
    expect(berth('network', 'create', 'm_dns').code).toBe(0);
    expect(berth('run', '-d', '--name', 'svc', '--network', 'm_dns', t.img, 'sleep', '300').code).toBe(0);
    expect(berth('run', '-d', '--name', 'asker', '--network', 'm_dns', t.img, 'sleep', '300').code).toBe(0);
    const oldIp = ipOf('m_dns', 'svc');
    expect(berth('rm', '-f', 'svc').code).toBe(0);
    expect(berth('run', '-d', '--name', 'filler', '--network', 'm_dns', t.img, 'sleep', '300').code).toBe(0); // takes the freed address
    expect(berth('run', '-d', '--name', 'svc', '--network', 'm_dns', t.img, 'sleep', '300').code).toBe(0);
    const newIp = ipOf('m_dns', 'svc');
    expect(newIp).not.toBe(oldIp);
    // Up to 10 lookups 100 ms apart: the attempt that first sees the new address is printed; 0 = never.
    const probe = `for i in 1 2 3 4 5 6 7 8 9 10; do nslookup svc | grep -q 'Address: ${newIp}$' && { echo $i; exit 0; }; sleep 0.1; done; echo 0`;
    const r = await engine.exec('asker', ['sh', '-c', probe], 15_000);
    const attempt = Number(r.output.trim());
    expect(attempt).toBeGreaterThanOrEqual(1);
    expect(attempt).toBeLessThanOrEqual(10);
    expect(berth('rm', '-f', 'svc', 'asker', 'filler').code).toBe(0);
    expect(berth('network', 'rm', 'm_dns').code).toBe(0);
  }, 60_000);
});

describe('published ports over restarts', () => {
  it('a stopped and restarted container keeps its ephemeral host port', async () => {
    expect(berth('run', '-d', '--name', 'keeper', '-p', '80', t.img, ...httpd('kept')).code).toBe(0);
    const port = berth('port', 'keeper').stdout;
    const hostPort = Number(/:(\d+)\n$/.exec(port)?.[1]);
    expect(await httpGet('127.0.0.1', hostPort)).toBe('kept\n');
    expect(berth('stop', '-t', '0', 'keeper').code).toBe(0);
    expect(berth('start', 'keeper').code).toBe(0);
    expect(berth('port', 'keeper').stdout).toBe(port);
    expect(await httpGet('127.0.0.1', hostPort)).toBe('kept\n');
    expect(berth('rm', '-f', 'keeper').code).toBe(0);
  }, 60_000);
});
