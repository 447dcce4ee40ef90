import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostsFile, resolvConf } from '../../src/network/etc-files.js';
import { assertHostPortsFree, resolveEphemeralPorts } from '../../src/network/host-ports.js';
import { netavarkDocument, netavarkMessage } from '../../src/network/netavark.js';
import { parsePublish } from '../../src/network/ports.js';
import type { NetworkDefinition } from '../../src/network/types.js';
import { variantHost } from '../helpers/host-tree.js';

const NET: NetworkDefinition = {
  id: 'a'.repeat(64), name: 'app', driver: 'bridge', subnet: '10.89.3.0/24', gateway: '10.89.3.1', internal: false, dnsEnabled: true,
  bridge: 'br-aaaaaaaaaaaa', labels: {}, options: { 'com.docker.network.driver.mtu': '1400' }, createdAt: 0,
};

describe('netavark document', () => {
  it('is keyed by network id, with static IPs from berth, aliases without the name, isolation on, and resolved ports', () => {
    const doc = netavarkDocument({
      containerId: 'c'.repeat(64), containerName: 'web',
      attachments: [{ network: NET, lease: { networkId: NET.id, containerId: 'c'.repeat(64), ip: '10.89.3.2', names: ['web', 'www'] }, interfaceName: 'eth0' }],
      ports: [parsePublish('127.0.0.1:8080-8081:80-81/udp')],
    });
    expect(doc).toEqual({
      container_id: 'c'.repeat(64),
      container_name: 'web',
      port_mappings: [{ host_ip: '127.0.0.1', container_port: 80, host_port: 8080, range: 2, protocol: 'udp' }],
      networks: { [NET.id]: { static_ips: ['10.89.3.2'], aliases: ['www'], interface_name: 'eth0' } },
      network_info: {
        [NET.id]: {
          name: NET.id, id: NET.id, driver: 'bridge', network_interface: 'br-aaaaaaaaaaaa', subnets: [{ subnet: '10.89.3.0/24', gateway: '10.89.3.1' }],
          ipv6_enabled: false, internal: false, dns_enabled: true, ipam_options: { driver: 'host-local' }, options: { isolate: 'true', mtu: '1400' },
        },
      },
    });
  });

  it('takes the JSON error line, whichever stream and whatever chatter surround it', () => {
    expect(netavarkMessage('failed to connect to syslog: Initialization\n{"error":"IO error: boom"}\n')).toBe('IO error: boom');
    expect(netavarkMessage('plain failure\n')).toBe('plain failure');
  });
});

describe('/etc files', () => {
  const host = 'nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch lan\noptions edns0\n';
  it('resolv.conf: the network DNS, else --dns, else the host servers minus loopback', () => {
    expect(resolvConf({ networkDns: ['10.89.3.1'], searchDomains: ['dns.podman'], hostResolvConf: host })).toBe('search dns.podman lan\nnameserver 10.89.3.1\noptions edns0\n');
    expect(resolvConf({ dns: ['192.0.2.9'], networkDns: ['10.89.3.1'], searchDomains: [], hostResolvConf: host })).toBe('search lan\nnameserver 192.0.2.9\noptions edns0\n');
    expect(resolvConf({ networkDns: [], searchDomains: [] , hostResolvConf: host })).toBe('search lan\nnameserver 192.0.2.53\noptions edns0\n');
    expect(resolvConf({ networkDns: [], searchDomains: [] })).toBe('');
  });
  it('hosts: loopback, the container itself, --add-host lines', () => {
    expect(hostsFile({ hostname: 'web', ip: '10.89.3.2', extraHosts: [{ name: 'broker', ip: '192.0.2.7' }] })).toBe(
      '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.89.3.2\tweb\n192.0.2.7\tbroker\n',
    );
  });
});

describe('host ports', () => {
  // 0.0.0.0:1883 LISTEN (inode 4242), 127.0.0.1:8080 LISTEN, an ESTABLISHED socket on 9000 (not a holder); UDP *:5353.
  const tcp = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000:075B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0',
    '   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 100 0 0 10 0',
    '   2: 0100007F:2328 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4444 1 0 100 0 0 10 0',
  ].join('\n');
  const udp = ['  sl  local_address rem_address   st', '   0: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 5555 2 0 0'].join('\n');
  const tree = () => variantHost(undefined, {
    'proc/net/tcp': tcp, 'proc/net/udp': udp, 'proc/sys/net/ipv4/ip_local_port_range': '40000\t40003\n',
    'proc/77/comm': 'mosquitto\n',
  });

  it('refuses a port a host process listens on, naming the port', () => {
    const h = tree();
    try {
      expect(() => assertHostPortsFree([parsePublish('1883:1883')], [], h.host)).toThrow('host port 1883/tcp (-p 0.0.0.0:1883->1883/tcp) is already in use');
      // The holder is named once /proc shows which process has the socket among its fds.
      fs.mkdirSync(path.join(h.dir, 'proc/77/fd'), { recursive: true });
      fs.symlinkSync('socket:[4242]', path.join(h.dir, 'proc/77/fd/3'));
      expect(() => assertHostPortsFree([parsePublish('1883:1883')], [], h.host)).toThrow('host port 1883/tcp (-p 0.0.0.0:1883->1883/tcp) is already in use by pid 77 (mosquitto)');
      expect(() => assertHostPortsFree([parsePublish('127.0.0.1:8080:80')], [], h.host)).toThrow(/host port 8080\/tcp/);
      expect(() => assertHostPortsFree([parsePublish('10.0.0.1:8080:80')], [], h.host)).not.toThrow();
      expect(() => assertHostPortsFree([parsePublish('9000:80')], [], h.host)).not.toThrow();
      expect(() => assertHostPortsFree([parsePublish('5353:53/udp')], [], h.host)).toThrow(/host port 5353\/udp/);
      expect(() => assertHostPortsFree([parsePublish('5353:53')], [], h.host)).not.toThrow();
    } finally {
      h.cleanup();
    }
  });

  it('refuses a port another container publishes, naming it', () => {
    const h = tree();
    try {
      expect(() => assertHostPortsFree([parsePublish('8000:80')], [{ container: 'web', ports: [parsePublish('7990-8010:7990-8010')] }], h.host))
        .toThrow('host port 0.0.0.0:8000->80/tcp is already published by container web (0.0.0.0:7990-8010->7990-8010/tcp)');
    } finally {
      h.cleanup();
    }
  });

  it('resolves ephemeral ports one by one inside the kernel range, skipping taken ones, and reports exhaustion', () => {
    const h = tree();
    try {
      const got = resolveEphemeralPorts([parsePublish('80-81'), parsePublish('9000:9000')], [{ container: 'x', ports: [parsePublish('40001:1')] }], h.host);
      expect(got.slice(0, 2).map((p) => p.containerPort)).toEqual([80, 81]);
      expect(new Set(got.slice(0, 2).map((p) => p.hostPort))).toEqual(new Set([40000, 40002, 40003].filter((p) => got.some((g) => g.hostPort === p))));
      expect(got.every((p) => p.count === 1 && p.hostPort !== 40001)).toBe(true);
      expect(got[2]).toEqual(parsePublish('9000:9000'));
      expect(() => resolveEphemeralPorts([parsePublish('1-5')], [], h.host)).toThrow('no free host port left in 40000-40003 for 5/tcp');
    } finally {
      h.cleanup();
    }
  });
});
