import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { berthOn, httpd, httpGet, openNetTestRoot, type NetTestRoot } from '../helpers/net/bridge.js';
import { RemoteNamespace } from '../helpers/net/remote-netns.js';
import { freePort } from '../helpers/services/ports.js';

// docker's bridge driver options (issue 16) as the kernel sees them: the bridge's name and MTU, and
// host_binding_ipv4 keeping published ports to one host address (reached from 127.0.0.1, not from a
// "remote" namespace this file makes). The bridge's name keeps the br- prefix the leak guard watches.

let t: NetTestRoot;
let remote: RemoteNamespace;

beforeAll(async () => {
  t = await openNetTestRoot('nopt');
  remote = await RemoteNamespace.create();
}, 180_000);
afterAll(async () => {
  await t?.close();
  await remote?.close();
});

const berth = berthOn(() => t.root);
const bridge = `br-n6${crypto.randomBytes(3).toString('hex')}`;
const D = 'com.docker.network.';

describe('bridge driver options', () => {
  it('name the bridge, set its MTU and bind ports without an address to host_binding_ipv4', async () => {
    expect(berth('network', 'create', '-o', `${D}bridge.name=${bridge}`, '-o', `${D}driver.mtu=1400`, '-o', `${D}bridge.host_binding_ipv4=127.0.0.1`, '-o', `${D}bridge.enable_icc=true`, 'opts')).toMatchObject({ code: 0 });
    const port = await freePort();
    expect(berth('run', '-d', '--name', 'optsrv', '--network', 'opts', '-p', `${port}:80`, t.img, ...httpd('opts'))).toMatchObject({ code: 0 });
    expect(fs.readFileSync(`/sys/class/net/${bridge}/mtu`, 'utf8').trim()).toBe('1400');
    const inside = berth('run', '--rm', '--network', 'opts', t.img, 'cat', '/sys/class/net/eth0/mtu');
    expect(inside).toMatchObject({ code: 0, stdout: '1400\n' });
    expect(berth('port', 'optsrv').stdout).toBe(`80/tcp -> 127.0.0.1:${port}\n`);
    expect(await httpGet('127.0.0.1', port)).toBe('opts\n');
    expect((await remote.exec(['curl', '-s', '-m', '5', `http://${remote.hostIp}:${port}/`])).code).not.toBe(0);

    expect(berth('rm', '-f', 'optsrv')).toMatchObject({ code: 0 });
    expect(fs.existsSync(`/sys/class/net/${bridge}`)).toBe(false);
    expect(berth('network', 'rm', 'opts')).toMatchObject({ code: 0 });
  });

  it('refuse what netavark cannot honour, naming the option, and leave no network', () => {
    const icc = berth('network', 'create', '-o', `${D}bridge.enable_icc=false`, 'noicc');
    expect(icc.code).not.toBe(0);
    expect(icc.stderr).toContain(`--opt ${D}bridge.enable_icc=false: berth cannot stop traffic between the containers of one bridge`);
    const lo = berth('network', 'create', '-o', `${D}bridge.name=lo`, 'lo-net');
    expect(lo.stderr).toContain(`--opt ${D}bridge.name=lo: the host already has an interface of that name`);
    expect(berth('network', 'ls').stdout).not.toMatch(/noicc|lo-net/);
  });
});
