import { describe, expect, it } from 'vitest';
import { allocateAddress, parseProcNetRoute, planSubnet, type TakenSubnet } from '../../src/network/ipam.js';
import { cidrsOverlap, formatCidr, parseCidr, parseIPv4 } from '../../src/network/ipv4.js';

const taken = (cidr: string, owner = 'network "x"'): TakenSubnet => ({ cidr: parseCidr(cidr, 't'), owner });

describe('IPv4 parsing', () => {
  it('parses and refuses', () => {
    expect(parseIPv4('10.89.0.1', 'x')).toBe(0x0a590001);
    expect(() => parseIPv4('10.89.0', '--gateway')).toThrow('--gateway: "10.89.0" is not an IPv4 address');
    expect(() => parseIPv4('10.89.0.256', 'x')).toThrow(/not an IPv4 address/);
    expect(() => parseIPv4('010.1.1.1', 'x')).toThrow(/not an IPv4 address/);
    expect(formatCidr(parseCidr('192.168.0.0/16', 'x'))).toBe('192.168.0.0/16');
    expect(() => parseCidr('10.89.0.5/24', '--subnet')).toThrow('--subnet: "10.89.0.5/24" has host bits set (did you mean 10.89.0.0/24?)');
    expect(() => parseCidr('10.89.0.0/33', '--subnet')).toThrow(/not an IPv4 CIDR/);
    expect(cidrsOverlap(parseCidr('10.0.0.0/8', 'a'), parseCidr('10.89.3.0/24', 'b'))).toBe(true);
    expect(cidrsOverlap(parseCidr('10.89.2.0/24', 'a'), parseCidr('10.89.3.0/24', 'b'))).toBe(false);
  });
});

describe('planSubnet', () => {
  it('takes the first free /24 of 10.89/16, skipping taken ones', () => {
    expect(planSubnet({}, [])).toEqual({ subnet: '10.89.0.0/24', gateway: '10.89.0.1' });
    expect(planSubnet({}, [taken('10.89.0.0/24'), taken('10.89.1.0/25')])).toEqual({ subnet: '10.89.2.0/24', gateway: '10.89.2.1' });
  });

  it('prefers the default bridge subnet when free', () => {
    expect(planSubnet({}, [], undefined, '10.88.0.0/16')).toEqual({ subnet: '10.88.0.0/16', gateway: '10.88.0.1' });
    expect(planSubnet({}, [taken('10.88.5.0/24')], undefined, '10.88.0.0/16').subnet).toBe('10.89.0.0/24');
  });

  it('reports an exhausted pool', () => {
    expect(() => planSubnet({}, [taken('10.89.0.0/16')])).toThrow('no free /24 subnet left in the address pool 10.89.0.0/16');
  });

  it('refuses an explicit subnet overlapping a network or a host route, naming it', () => {
    expect(() => planSubnet({ subnet: '10.89.0.0/16' }, [taken('10.89.3.0/24', 'network "app_default"')])).toThrow('--subnet 10.89.0.0/16 overlaps 10.89.3.0/24 of network "app_default"');
    expect(() => planSubnet({ subnet: '192.0.2.128/25' }, [taken('192.0.2.0/24', "the host's route on eth0")])).toThrow("overlaps 192.0.2.0/24 of the host's route on eth0");
  });

  it('checks gateway and ip-range against the subnet', () => {
    expect(planSubnet({ subnet: '172.30.0.0/16', gateway: '172.30.0.254', ipRange: '172.30.5.0/24' }, [])).toEqual({ subnet: '172.30.0.0/16', gateway: '172.30.0.254', ipRange: '172.30.5.0/24' });
    expect(() => planSubnet({ subnet: '172.30.0.0/16', gateway: '172.31.0.1' }, [])).toThrow('--gateway 172.31.0.1 is not a host address of 172.30.0.0/16');
    expect(() => planSubnet({ subnet: '172.30.0.0/24', gateway: '172.30.0.255' }, [])).toThrow(/not a host address/);
    expect(() => planSubnet({ subnet: '172.30.0.0/24', ipRange: '172.30.1.0/28' }, [])).toThrow('--ip-range 172.30.1.0/28 is not inside --subnet 172.30.0.0/24');
    expect(() => planSubnet({ gateway: '10.1.1.1' }, [])).toThrow('--gateway needs --subnet');
    expect(() => planSubnet({ subnet: '10.1.1.0/31' }, [])).toThrow(/leaves no room/);
  });
});

describe('allocateAddress', () => {
  const net = { name: 'n', subnet: '10.89.0.0/29', gateway: '10.89.0.1' };
  it('gives the lowest free host address, never the gateway, network or broadcast address', () => {
    expect(allocateAddress(net, new Set())).toBe('10.89.0.2');
    expect(allocateAddress(net, new Set(['10.89.0.2', '10.89.0.4']))).toBe('10.89.0.3');
    expect(allocateAddress({ ...net, gateway: '10.89.0.6' }, new Set())).toBe('10.89.0.1');
  });
  it('allocates within --ip-range', () => {
    expect(allocateAddress({ name: 'n', subnet: '10.89.0.0/24', gateway: '10.89.0.1', ipRange: '10.89.0.128/25' }, new Set())).toBe('10.89.0.128');
  });
  it('reports exhaustion naming the network and range', () => {
    const all = new Set(['10.89.0.2', '10.89.0.3', '10.89.0.4', '10.89.0.5', '10.89.0.6']);
    expect(() => allocateAddress(net, all)).toThrow('network n has no free address left in 10.89.0.0/29 (5 in use)');
  });
});

describe('parseProcNetRoute', () => {
  it('reads the host routes except the default one', () => {
    const text = [
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
      'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
      'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
      'wlan0\t0000A8C0\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
    ].join('\n');
    expect(parseProcNetRoute(text).map((r) => [formatCidr(r.cidr), r.owner, r.device])).toEqual([
      ['192.0.2.0/24', "the host's route on eth0", 'eth0'],
      ['192.168.0.0/16', "the host's route on wlan0", 'wlan0'],
    ]);
  });
});
