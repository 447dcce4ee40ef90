import { describe, expect, it } from 'vitest';
import { BerthError } from '../../src/errors.js';
import { portBindings, portLines } from '../../src/network/inspect.js';
import { formatPortMapping, parseAddHost, parsePublish, portsClash, validateNetworkAlias } from '../../src/network/ports.js';

const err = (spec: string): BerthError => {
  try {
    parsePublish(spec);
  } catch (e) {
    return e as BerthError;
  }
  throw new Error(`-p ${spec} was accepted`);
};

describe('parsePublish: docker short syntax [IP:][HOST[-END]:]CONTAINER[-END][/proto]', () => {
  it.each([
    ['80', { hostIp: '', hostPort: 0, containerPort: 80, count: 1, protocol: 'tcp' }],
    ['80/udp', { hostIp: '', hostPort: 0, containerPort: 80, count: 1, protocol: 'udp' }],
    ['80/TCP', { hostIp: '', hostPort: 0, containerPort: 80, count: 1, protocol: 'tcp' }],
    ['8080:80', { hostIp: '', hostPort: 8080, containerPort: 80, count: 1, protocol: 'tcp' }],
    ['5353:53/udp', { hostIp: '', hostPort: 5353, containerPort: 53, count: 1, protocol: 'udp' }],
    ['8000-8002:9000-9002', { hostIp: '', hostPort: 8000, containerPort: 9000, count: 3, protocol: 'tcp' }],
    ['9000-9001', { hostIp: '', hostPort: 0, containerPort: 9000, count: 2, protocol: 'tcp' }],
    ['127.0.0.1:8080:80', { hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, count: 1, protocol: 'tcp' }],
    ['127.0.0.1::80', { hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, count: 1, protocol: 'tcp' }],
    ['10.0.0.1:7000-7001:7000-7001/udp', { hostIp: '10.0.0.1', hostPort: 7000, containerPort: 7000, count: 2, protocol: 'udp' }],
    ['[::1]:8080:80', { hostIp: '::1', hostPort: 8080, containerPort: 80, count: 1, protocol: 'tcp' }],
    ['[fd00::2]::80/udp', { hostIp: 'fd00::2', hostPort: 0, containerPort: 80, count: 1, protocol: 'udp' }],
    ['65535:1', { hostIp: '', hostPort: 65535, containerPort: 1, count: 1, protocol: 'tcp' }],
  ])('%s', (spec, want) => {
    expect(parsePublish(spec)).toEqual(want);
  });

  it.each([
    ['', /empty port specification/],
    ['http', /container port "http" is not a port/],
    ['0', /container port 0 is out of range 1…65535/],
    ['65536', /container port 65536 is out of range/],
    ['80/sctp', /unknown protocol "sctp"/],
    ['8080:', /container port "" is not a port/],
    ['8000-8001:80', /port range mismatch: host 8000-8001 has 2 ports, container 80 has 1/],
    ['8000:80-81', /port range mismatch: host 8000 has 1 port, container 80-81 has 2/],
    ['90-80', /container port range 90-80 ends before it starts/],
    ['1.2.3:80:80', /host IP "1.2.3" is not an IPv4 address/],
    [':8080:80', /empty host IP/],
    ['a:b:c:d', /too many ":"-separated parts/],
    ['[::1:8080:80', /bracketed IPv6 address must be followed by ":"/],
    ['[zz]:80:80', /"zz" is not an IPv6 address/],
    ['[::1]:1:2:3', /too many ":"-separated parts/],
  ])('refuses %j', (spec, message) => {
    const e = err(spec);
    expect(e.category).toBe('invalid');
    expect(e.message).toContain(`-p ${spec}`);
    expect(e.message).toMatch(message);
    expect(e.hint).toMatch(/\[IP:\]\[HOST\[-END\]:\]CONTAINER/);
  });

  it('formats as docker ps does', () => {
    expect(formatPortMapping(parsePublish('8080:80'))).toBe('0.0.0.0:8080->80/tcp');
    expect(formatPortMapping(parsePublish('127.0.0.1:7000-7001:8000-8001/udp'))).toBe('127.0.0.1:7000-7001->8000-8001/udp');
    expect(formatPortMapping(parsePublish('[::1]:53:53/udp'))).toBe('[::1]:53->53/udp');
  });

  it('clash: overlapping host ports of one protocol on a common address', () => {
    const p = parsePublish;
    expect(portsClash(p('8080:80'), p('8080:81'))).toBe(true);
    expect(portsClash(p('8000-8010:9000-9010'), p('127.0.0.1:8010:80'))).toBe(true);
    expect(portsClash(p('8080:80'), p('8080:80/udp'))).toBe(false);
    expect(portsClash(p('127.0.0.1:8080:80'), p('10.0.0.1:8080:80'))).toBe(false);
    expect(portsClash(p('8000-8010:9000-9010'), p('8011:80'))).toBe(false);
    expect(portsClash(p('80'), p('80'))).toBe(false);
  });
});

describe('parseAddHost', () => {
  it('NAME:IP and NAME=IP', () => {
    expect(parseAddHost('broker:10.0.0.5')).toEqual({ name: 'broker', ip: '10.0.0.5' });
    expect(parseAddHost('db.local=192.168.1.2')).toEqual({ name: 'db.local', ip: '192.168.1.2' });
  });
  it('refuses what is not NAME:IP', () => {
    expect(() => parseAddHost('broker')).toThrow(/--add-host broker: expected NAME:IP/);
    expect(() => parseAddHost('broker:300.1.1.1')).toThrow(/not an IPv4 address/);
    expect(() => parseAddHost('-x:1.2.3.4')).toThrow(/"-x" is not a host name/);
  });
});

describe('docker port and inspect shapes', () => {
  it('one binding per container port, ranges expanded, IPv6 bracketed in berth port lines', () => {
    const ports = [parsePublish('8000-8001:80-81'), parsePublish('[::1]:5353:53/udp'), parsePublish('127.0.0.1:9000:80')];
    expect(portBindings(ports)).toEqual({
      '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8000' }, { HostIp: '127.0.0.1', HostPort: '9000' }],
      '81/tcp': [{ HostIp: '0.0.0.0', HostPort: '8001' }],
      '53/udp': [{ HostIp: '::1', HostPort: '5353' }],
    });
    expect(portLines(ports)).toEqual(['80/tcp -> 0.0.0.0:8000', '80/tcp -> 127.0.0.1:9000', '81/tcp -> 0.0.0.0:8001', '53/udp -> [::1]:5353']);
  });
});

describe('validateNetworkAlias', () => {
  it('accepts DNS names and refuses the rest', () => {
    expect(validateNetworkAlias('mqtt')).toBe('mqtt');
    expect(validateNetworkAlias('broker.local')).toBe('broker.local');
    expect(() => validateNetworkAlias('no spaces')).toThrow('--network-alias: "no spaces" is not a DNS name');
    expect(() => validateNetworkAlias('-lead')).toThrow(/not a DNS name/);
    expect(() => validateNetworkAlias('a'.repeat(64))).toThrow(/not a DNS name/);
  });
});
