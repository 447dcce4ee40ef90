import { describe, expect, it } from 'vitest';
import { containerName } from '../../src/compose/labels.js';
import { CONTAINER_NAME_LABEL } from '../../src/runtime/options.js';
import { network, refusal, service, services } from '../helpers/compose-services.js';

const nets = { networks: [network('default'), network('front'), network('back')] };

describe('compose ports', () => {
  it('short syntax (ranges, IPs, IPv6, bare numbers) and long syntax, through -p\'s parser', async () => {
    const s = await service(`
services:
  web:
    image: x
    ports:
      - 8080:80
      - "127.0.0.1:5353:53/udp"
      - "[::1]:9000:9000"
      - 3000
      - 8000-8001:80-81
      - target: 1883
        published: "1884"
        host_ip: 127.0.0.1
        protocol: tcp
        mode: host
      - {target: 9001}
`, nets);
    expect(s.run.ports).toEqual([
      { hostIp: '', hostPort: 8080, containerPort: 80, count: 1, protocol: 'tcp' },
      { hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53, count: 1, protocol: 'udp' },
      { hostIp: '::1', hostPort: 9000, containerPort: 9000, count: 1, protocol: 'tcp' },
      { hostIp: '', hostPort: 0, containerPort: 3000, count: 1, protocol: 'tcp' },
      { hostIp: '', hostPort: 8000, containerPort: 80, count: 2, protocol: 'tcp' },
      { hostIp: '127.0.0.1', hostPort: 1884, containerPort: 1883, count: 1, protocol: 'tcp' },
      { hostIp: '', hostPort: 0, containerPort: 9001, count: 1, protocol: 'tcp' },
    ]);
    expect(await refusal('services:\n  web:\n    image: x\n    ports: ["80:80:80:80"]\n', nets)).toMatch(/^services\.web\.ports: -p 80:80:80:80: too many/);
    expect(await refusal('services:\n  web:\n    image: x\n    ports: [{target: 70000}]\n', nets)).toMatch(/^desired state is invalid: services\.web\.ports\[0\]/);
  });

  it('with network_mode: host, a port mapped onto itself is what host networking gives; another host port is refused', async () => {
    expect((await service('services:\n  nr:\n    image: x\n    network_mode: host\n    ports: ["80:80", "1880"]\n')).run).toMatchObject({ network: 'host' });
    expect((await service('services:\n  nr:\n    image: x\n    network_mode: host\n    ports: ["80:80"]\n')).run.ports).toBeUndefined();
    expect(await refusal('services:\n  nr:\n    image: x\n    network_mode: host\n    ports: ["8080:80"]\n')).toMatch(/^services\.nr\.ports: 8080→80: with network_mode: host the container's ports are the host's/);
  });
});

describe('compose networks', () => {
  it('no networks: and no network_mode: the app default network, with the service name and container_name as aliases', async () => {
    const s = await service('services:\n  mqtt:\n    image: x\n    container_name: mosquitto\n', nets);
    expect(s.run.network).toBe('farm_default');
    expect(s.run.endpoints).toEqual([{ network: 'farm_default', aliases: ['mqtt', 'mosquitto'] }]);
    expect(s.run.labels[CONTAINER_NAME_LABEL]).toBe('mosquitto');
    // The container keeps its unique name, so an update can create the new one beside the old.
    expect(s.run.name).toBe(containerName('mqtt', s.hash));
    // Without any app network (a desired state from before networks existed): berth's own namespace.
    expect((await service('services:\n  mqtt:\n    image: x\n')).run).toMatchObject({ network: 'private' });
  });

  it('list and map form: endpoints in priority order with aliases and static addresses', async () => {
    expect((await service('services:\n  a:\n    image: x\n    networks: [front, back]\n', nets)).run.endpoints).toEqual([
      { network: 'farm_front', aliases: ['a'] }, { network: 'farm_back', aliases: ['a'] },
    ]);
    const s = await service(`
services:
  api:
    image: x
    networks:
      back:
        aliases: [db-client]
      front:
        ipv4_address: 10.89.0.10
        priority: 100
`, nets);
    expect(s.run.network).toBe('farm_front');
    expect(s.run.endpoints).toEqual([{ network: 'farm_front', aliases: ['api'], ipv4Address: '10.89.0.10' }, { network: 'farm_back', aliases: ['api', 'db-client'] }]);
    expect(await refusal('services:\n  a:\n    image: x\n    networks: [dmz]\n', nets)).toBe('services.a.networks.dmz: network "dmz" is not declared under the top-level networks:');
    expect(await refusal('services:\n  a:\n    image: x\n    networks: {front: {aliases: ["bad name"]}}\n', nets)).toBe('services.a.networks.front.aliases: "bad name" is not a DNS name');
    expect(await refusal('services:\n  a:\n    image: x\n    network_mode: host\n    networks: [front]\n', nets)).toBe('services.a.networks: cannot be combined with network_mode');
  });

  it('ipv6_address on a second, dual-stack network: that endpoint gets it; refused on the IPv4-only one, naming its key', async () => {
    const dual = { networks: [network('front'), { ...network('back'), enableIpv6: true, ipam6: { subnet: 'fd42:b::/64' } }] };
    const s = await service('services:\n  a:\n    image: x\n    networks:\n      front: {priority: 10}\n      back: {ipv6_address: "fd42:b:0:0::20"}\n', dual);
    expect(s.run.endpoints).toEqual([{ network: 'farm_front', aliases: ['a'] }, { network: 'farm_back', aliases: ['a'], ipv6Address: 'fd42:b::20' }]);
    expect(await refusal('services:\n  a:\n    image: x\n    networks:\n      back: {}\n      front: {ipv6_address: "fd42:b::20"}\n', dual)).toBe('services.a.networks.front.ipv6_address: fd42:b::20 needs IPv6 on network "front": add enable_ipv6: true to it');
  });

  it('network_mode: service:S joins S\'s container, is recreated with it, and starts after it', async () => {
    const all = await services('services:\n  vpn:\n    image: x\n  app:\n    image: y\n    network_mode: "service:vpn"\n', nets);
    const vpn = all.get('vpn')!;
    const app = all.get('app')!;
    expect(app.run.network).toBe(`container:${containerName('vpn', vpn.hash)}`);
    expect(app.dependsOn.get('vpn')).toEqual({ condition: 'service_started', restart: false, required: true });
    const changed = await services('services:\n  vpn:\n    image: x2\n  app:\n    image: y\n    network_mode: "service:vpn"\n', nets);
    expect(changed.get('app')!.hash).not.toBe(app.hash);
    expect(changed.get('app')!.run.network).toBe(`container:${containerName('vpn', changed.get('vpn')!.hash)}`);
    expect(await refusal('services:\n  app:\n    image: y\n    network_mode: "service:nope"\n')).toBe('services.app.network_mode: service "nope" is not in this app');
    expect(await refusal('services:\n  a:\n    image: y\n    network_mode: "service:b"\n  b:\n    image: y\n    network_mode: "service:a"\n')).toMatch(/services join each other's namespaces in a loop: a → b → a/);
    expect((await service('services:\n  a:\n    image: y\n    network_mode: "container:watchtower"\n')).run.network).toBe('container:watchtower');
    expect(await refusal('services:\n  a:\n    image: y\n    network_mode: "macvlan"\n')).toMatch(/^desired state is invalid: services\.a\.network_mode: must match pattern/);
  });

  it('dns, dns_search, dns_opt, extra_hosts (list and map), expose, hostname, domainname', async () => {
    const s = await service(`
services:
  a:
    image: x
    hostname: gw
    domainname: farm.lan
    dns: 10.0.0.1
    dns_search: [farm.lan]
    dns_opt: ["ndots:2", edns0]
    extra_hosts: ["broker:10.0.0.5", "nas=10.0.0.6"]
    expose: [1883, "9000-9001/udp"]
`, nets);
    expect(s.run).toMatchObject({
      hostname: 'gw', domainname: 'farm.lan', dns: ['10.0.0.1'], dnsSearch: ['farm.lan'], dnsOptions: ['ndots:2', 'edns0'],
      extraHosts: [{ name: 'broker', ip: '10.0.0.5' }, { name: 'nas', ip: '10.0.0.6' }], expose: ['1883/tcp', '9000-9001/udp'],
    });
    expect((await service('services:\n  a:\n    image: x\n    extra_hosts: {broker: 10.0.0.5}\n', nets)).run.extraHosts).toEqual([{ name: 'broker', ip: '10.0.0.5' }]);
    expect(await refusal('services:\n  a:\n    image: x\n    dns: [8.8.8]\n', nets)).toMatch(/^services\.a\.dns/);
    expect(await refusal('services:\n  a:\n    image: x\n    dns_search: ["bad domain"]\n', nets)).toBe('services.a.dns_search: "bad domain" is not a DNS name');
    expect(await refusal('services:\n  a:\n    image: x\n    extra_hosts: ["broker"]\n', nets)).toMatch(/^services\.a\.extra_hosts: --add-host broker: expected NAME:IP/);
  });
});
