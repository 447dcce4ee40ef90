import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { endpointsOf } from '../../src/network/container.js';
import { NetworkService } from '../../src/network/service.js';
import { SubnetClaims } from '../../src/network/subnet-claims.js';
import { StateStore } from '../../src/store/store.js';
import { variantHost } from '../helpers/host-tree.js';

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-claims-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A state root with its NetworkService over the shared claims directory `claimsDir` (no host routes). */
function rootWith(claimsDir: string): { s: NetworkService; store: StateStore; dir: string } {
  const h = variantHost(undefined, { 'proc/net/route': 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n' });
  const dir = tmp();
  const store = StateStore.open(dir);
  cleanups.unshift(() => {
    store.close();
    h.cleanup();
  });
  return { s: new NetworkService(store, h.host, new SubnetClaims(claimsDir, store.file)), store, dir };
}

describe('host-wide subnet claims (several state roots on one host)', () => {
  it('give two roots different subnets for the same names, and refuse an explicit subnet another root holds, naming it', () => {
    const claims = tmp();
    const a = rootWith(claims);
    const b = rootWith(claims);
    expect(a.s.ensureDefault().subnet).toBe('10.88.0.0/16');
    // Without claims both would have planned 10.88.0.0/16: no bridge was up yet for the route check to see.
    expect(b.s.ensureDefault().subnet).toBe('10.89.0.0/24');
    expect(a.s.create({ name: 'app_default' }).subnet).toBe('10.89.1.0/24');
    expect(b.s.create({ name: 'app_default' }).subnet).toBe('10.89.2.0/24');
    expect(() => b.s.create({ name: 'lan', subnet: '10.89.1.0/25' })).toThrow(`--subnet 10.89.1.0/25 overlaps 10.89.1.0/24 of network "app_default" of the berth state root ${a.dir}`);
    expect(fs.readdirSync(claims).sort()).toEqual(['10.88.0.0_16', '10.89.0.0_24', '10.89.1.0_24', '10.89.2.0_24']);
  });

  it('are released with their network, taken over from a root that no longer exists, and re-made at bring-up (after a reboot cleared them)', () => {
    const claims = tmp();
    const a = rootWith(claims);
    const n = a.s.create({ name: 'iot', subnet: '10.140.0.0/24' });
    a.s.remove('iot');
    expect(fs.readdirSync(claims)).toEqual([]);

    const gone = rootWith(claims);
    gone.s.create({ name: 'old', subnet: '10.141.0.0/24' });
    fs.rmSync(gone.store.file); // that root was deleted: its claim is stale
    expect(a.s.create({ name: 'new', subnet: '10.141.0.0/24' }).subnet).toBe('10.141.0.0/24');

    const kept = a.s.create({ name: 'kept', subnet: '10.142.0.0/24' });
    fs.rmSync(path.join(claims, '10.142.0.0_24')); // a reboot empties /run
    const other = rootWith(claims);
    other.s.create({ name: 'squatter', subnet: '10.142.0.0/24' });
    expect(() => a.s.claimHost(kept)).toThrow(`network kept's subnet 10.142.0.0/24 is in use by network "squatter" of the berth state root ${other.dir}`);
    expect(() => a.s.claimHost(a.s.find('new'))).not.toThrow();
    expect(n.subnet).toBe('10.140.0.0/24');
  });

  it('cover IPv6 subnets too: an explicit one another root holds is refused naming it, random ULA /64s are claimed, and both halves go with the network', () => {
    const claims = tmp();
    const a = rootWith(claims);
    const b = rootWith(claims);
    const v6 = a.s.create({ name: 'dual', ipv6: true, ipv6Subnet: 'fd42:aa::/64' });
    // b has no bridge and no route for it yet: only the claim tells it the subnet is taken.
    expect(() => b.s.create({ name: 'dual', ipv6: true, ipv6Subnet: 'fd42:aa::/56' })).toThrow(`--subnet fd42:aa::/56 overlaps fd42:aa::/64 of network "dual" of the berth state root ${a.dir}`);
    const random = b.s.create({ name: 'ula', ipv6: true });
    expect(random.ipv6Subnet).toMatch(/^fd[0-9a-f]{2}:[0-9a-f:]+\/64$/);
    const names = fs.readdirSync(claims);
    expect(names).toContain('fd42:aa::_64');
    expect(names).toContain(random.ipv6Subnet!.replace('/', '_'));
    // The refused create left no claim of either family behind.
    expect(names.filter((n) => !n.startsWith('10.'))).toHaveLength(2);

    // A refused IPv4 half gives the IPv6 claim back.
    expect(() => b.s.create({ name: 'clash', subnet: v6.subnet, ipv6: true, ipv6Subnet: 'fd42:bb::/64' })).toThrow(/overlaps/);
    expect(fs.readdirSync(claims)).not.toContain('fd42:bb::_64');

    b.s.remove('ula');
    expect(fs.readdirSync(claims)).not.toContain(random.ipv6Subnet!.replace('/', '_'));
    fs.rmSync(path.join(claims, 'fd42:aa::_64')); // a reboot empties /run
    b.s.create({ name: 'squatter', ipv6: true, ipv6Subnet: 'fd42:aa::/64' });
    expect(() => a.s.claimHost(v6)).toThrow(`network dual's subnet fd42:aa::/64 is in use by network "squatter" of the berth state root ${b.dir}`);
  });
});

describe('endpointsOf', () => {
  it('is the network with its aliases and --ip without endpoints, and refuses endpoints whose first is not the network', () => {
    expect(endpointsOf({ name: 'c', network: 'front', networkAliases: ['api'], ipv4Address: '10.89.0.9' })).toEqual([{ network: 'front', aliases: ['api'], ipv4Address: '10.89.0.9' }]);
    const endpoints = [{ network: 'front', aliases: ['web'] }, { network: 'back', aliases: [], ipv4Address: '10.89.1.5' }];
    expect(endpointsOf({ name: 'c', network: 'front', endpoints })).toBe(endpoints);
    expect(() => endpointsOf({ name: 'c', network: 'back', endpoints })).toThrow("the first network endpoint (front) must be the container's network back");
  });
});
