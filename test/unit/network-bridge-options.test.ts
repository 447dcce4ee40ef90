import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { withHostBinding } from '../../src/network/bridge-options.js';
import { NetworkService } from '../../src/network/service.js';
import { StateStore } from '../../src/store/store.js';
import { variantHost } from '../helpers/host-tree.js';

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

/** A NetworkService over a host whose only interface is eth0. */
function service(): NetworkService {
  const h = variantHost(undefined, { 'proc/net/route': 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n', 'sys/class/net/eth0': '' });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bropt-'));
  const store = StateStore.open(path.join(root, 'state'));
  cleanups.push(() => {
    store.close();
    h.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
  });
  return new NetworkService(store, h.host);
}

const D = 'com.docker.network.';

describe("docker's bridge driver options", () => {
  it('name the bridge (unless another network or a host interface has that name), and accept the MTU, icc and masquerade on, a binding address', () => {
    const s = service();
    const n = s.create({ name: 'lan', options: { [`${D}bridge.name`]: 'br-lan', [`${D}driver.mtu`]: '1400', [`${D}bridge.enable_icc`]: 'true', [`${D}bridge.enable_ip_masquerade`]: 'true', [`${D}bridge.host_binding_ipv4`]: '127.0.0.1' } });
    expect(n.bridge).toBe('br-lan');
    expect(() => s.create({ name: 'again', options: { [`${D}bridge.name`]: 'br-lan' } })).toThrow(`--opt ${D}bridge.name=br-lan: network lan already uses that bridge`);
    expect(() => s.create({ name: 'uplink', options: { [`${D}bridge.name`]: 'eth0' } })).toThrow(`--opt ${D}bridge.name=eth0: the host already has an interface of that name`);
    expect(() => s.create({ name: 'long', options: { [`${D}bridge.name`]: 'a-very-long-bridge' } })).toThrow(/not an interface name/);
    expect(s.list().map((x) => x.name)).toEqual(['lan']);
  });

  it('refuse what netavark cannot do and bad values, naming the option', () => {
    const s = service();
    expect(() => s.create({ name: 'x', options: { [`${D}bridge.enable_icc`]: 'false' } })).toThrow(`--opt ${D}bridge.enable_icc=false: berth cannot stop traffic between the containers of one bridge`);
    expect(() => s.create({ name: 'x', options: { [`${D}bridge.enable_ip_masquerade`]: 'false' } })).toThrow(`--opt ${D}bridge.enable_ip_masquerade=false: berth masquerades the outbound traffic`);
    expect(() => s.create({ name: 'x', options: { [`${D}bridge.host_binding_ipv4`]: 'eth0' } })).toThrow(`--opt ${D}bridge.host_binding_ipv4: "eth0" is not an IPv4 address`);
    expect(() => s.create({ name: 'x', options: { [`${D}driver.mtu`]: '9' } })).toThrow(/the MTU must be a number of 68…65535/);
    expect(() => s.create({ name: 'x', options: { [`${D}bridge.enable_icc`]: 'no' } })).toThrow(/use true or false/);
    expect(() => s.create({ name: 'x', options: { [`${D}bridge.default_bridge`]: 'true' } })).toThrow(`--opt ${D}bridge.default_bridge: unknown bridge option`);
  });

  it('bind ports without a host address to host_binding_ipv4 (0.0.0.0 being every address)', () => {
    const ports = [{ hostIp: '', hostPort: 8080, containerPort: 80, count: 1, protocol: 'tcp' as const }, { hostIp: '::', hostPort: 8081, containerPort: 80, count: 1, protocol: 'tcp' as const }];
    expect(withHostBinding(ports, { [`${D}bridge.host_binding_ipv4`]: '192.0.2.7' }).map((p) => p.hostIp)).toEqual(['192.0.2.7', '::']);
    expect(withHostBinding(ports, { [`${D}bridge.host_binding_ipv4`]: '0.0.0.0' }).map((p) => p.hostIp)).toEqual(['', '::']);
    expect(withHostBinding(ports, {}).map((p) => p.hostIp)).toEqual(['', '::']);
  });
});
