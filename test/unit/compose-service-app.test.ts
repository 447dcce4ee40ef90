import { describe, expect, it } from 'vitest';
import { composeApp } from '../../src/compose/file.js';
import { normalizeDesired } from '../../src/compose/normalize.js';
import { composeDocument } from '../../src/compose/render.js';
import { balenaWarnings, wantsSupervisorApi } from '../../src/compose/service-balena.js';
import { parseYaml } from '../../src/yaml.js';
import { file, network, refusal, service, services } from '../helpers/compose-services.js';

describe('compose depends_on', () => {
  it('short and long form, compose defaults filled in', async () => {
    const all = await services(`
services:
  sensor:
    image: x
    depends_on: [broker]
  store:
    image: x
    depends_on:
      broker: {condition: service_healthy, restart: true}
      init: {condition: service_completed_successfully}
      metrics: {condition: service_started, required: false}
  broker:
    image: x
  init:
    image: x
`);
    expect([...all.get('sensor')!.dependsOn]).toEqual([['broker', { condition: 'service_started', restart: false, required: true }]]);
    // An optional dependency that is not in the app is skipped, as compose does.
    expect([...all.get('store')!.dependsOn]).toEqual([
      ['broker', { condition: 'service_healthy', restart: true, required: true }], ['init', { condition: 'service_completed_successfully', restart: false, required: true }],
    ]);
    expect(all.get('broker')!.dependsOn.size).toBe(0);
  });

  it('refuses unknown services and loops, naming them', async () => {
    expect(await refusal('services:\n  a:\n    image: x\n    depends_on: [db]\n')).toBe('services.a.depends_on: service "db" is not in this app');
    expect(await refusal('services:\n  a:\n    image: x\n    depends_on: [a]\n')).toBe('services.a.depends_on: service a depends on itself');
    expect(await refusal('services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: {a: {condition: service_healthy}}\n'))
      .toBe('services.a.depends_on: services depend on each other in a loop: a → b → c → a');
    expect(await refusal('services:\n  a:\n    image: x\n    depends_on: {b: {condition: service_ready}}\n  b:\n    image: x\n')).toMatch(/^desired state is invalid: services\.a\.depends_on\.b\.condition: must be one of/);
  });
});

describe('compose labels and balena features', () => {
  it('stringifies number, boolean and null label values as compose does', async () => {
    const s = await service('services:\n  a:\n    image: x\n    labels: {io.balena.features.dbus: 1, traefik.enable: true, note: null, ratio: 0.5}\n');
    expect(s.run.labels).toMatchObject({ 'io.balena.features.dbus': '1', 'traefik.enable': 'true', note: '', ratio: '0.5' });
  });

  it('feature labels give balena\'s host mounts and environment; false values give nothing', async () => {
    const s = await service(`
services:
  wifi:
    image: x
    environment: {DBUS_SYSTEM_BUS_ADDRESS: "unix:path=/custom"}
    labels:
      io.balena.features.dbus: '1'
      io.balena.features.sysfs: 1
      io.balena.features.procfs: true
      io.balena.features.kernel-modules: 'on'
      io.balena.features.firmware: '1'
      io.balena.features.journal-logs: '1'
      io.balena.features.balena-socket: '0'
`);
    expect(s.run.volumes).toEqual([
      { source: '/run/dbus', target: '/host/run/dbus', readOnly: false, kind: 'bind' },
      { source: '/sys', target: '/sys', readOnly: false, kind: 'bind' },
      { source: '/proc', target: '/proc', readOnly: false, kind: 'bind' },
      { source: '/lib/modules', target: '/lib/modules', readOnly: false, kind: 'bind' },
      { source: '/lib/firmware', target: '/lib/firmware', readOnly: false, kind: 'bind' },
      { source: '/var/log/journal', target: '/var/log/journal', readOnly: true, kind: 'bind' },
      { source: '/run/log/journal', target: '/run/log/journal', readOnly: true, kind: 'bind' },
      { source: '/etc/machine-id', target: '/etc/machine-id', readOnly: true, kind: 'bind' },
    ]);
    // balena's variable first, the service's own after it: the service's value wins.
    expect(s.run.env).toEqual(['DBUS_SYSTEM_BUS_ADDRESS=unix:path=/host/run/dbus/system_bus_socket', 'DBUS_SYSTEM_BUS_ADDRESS=unix:path=/custom']);
  });

  it('refuses gpu and unknown features, naming the label', async () => {
    expect(await refusal("services:\n  relay:\n    image: x\n    labels: {io.balena.features.gpu: '1'}\n")).toMatch(/^services\.relay\.labels\.io\.balena\.features\.gpu: not supported: GPU device requests/);
    expect(await refusal('services:\n  relay:\n    image: x\n    labels: {io.balena.features.teleport: 1}\n')).toMatch(/^services\.relay\.labels\.io\.balena\.features\.teleport: unknown balena feature/);
  });

  it('supervisor-api is the agent\'s to give; balena-socket and balena-api are plain labels with a warning naming service and label', async () => {
    const relay = await service("services:\n  relay:\n    image: x\n    labels: {io.balena.features.supervisor-api: '1', io.balena.features.balena-socket: 1, io.balena.features.balena-api: 'true'}\n");
    // Nothing device-specific in the model: the key and address are added on the device at create time.
    expect(relay.run.env).toEqual([]);
    expect(relay.run.volumes).toEqual([]);
    expect(wantsSupervisorApi(relay.run.labels)).toBe(true);
    const app = normalizeDesired({ revision: 1, services: { relay: { image: 'x', labels: { 'io.balena.features.balena-socket': '1', 'io.balena.features.balena-api': 'on' } }, off: { image: 'x', labels: { 'io.balena.features.balena-socket': '0' } } } });
    expect(balenaWarnings(app)).toEqual([
      'services.relay.labels.io.balena.features.balena-socket: accepted as a plain label; no engine socket is mounted: berth has no Docker Engine API (a tool that talks to DOCKER_HOST finds no engine)',
      'services.relay.labels.io.balena.features.balena-api: accepted as a plain label; no BALENA_API_KEY or BALENA_API_URL is set (berth devices talk to their fleet over MQTT, not balenaCloud)',
    ]);
  });

  it('container_name: unique in the app, and never another service\'s name', async () => {
    expect(await refusal('services:\n  a:\n    image: x\n    container_name: hub\n  b:\n    image: x\n    container_name: hub\n')).toBe('services.b.container_name: "hub" is also the name of service a');
    expect(await refusal('services:\n  a:\n    image: x\n    container_name: b\n  b:\n    image: x\n')).toBe('services.a.container_name: "b" is also the name of service b');
    expect(await refusal('services:\n  a:\n    image: x\n    container_name: "-x"\n')).toMatch(/^desired state is invalid: services\.a\.container_name: must match pattern/);
  });

  it('platform and pull_policy are kept on the model for the puller', async () => {
    expect(await service('services:\n  a:\n    image: x\n    platform: linux/arm/v7\n    pull_policy: if_not_present\n')).toMatchObject({ platform: 'linux/arm/v7', pullPolicy: 'missing' });
    expect(await refusal('services:\n  a:\n    image: x\n    pull_policy: build\n')).toMatch(/^desired state is invalid: services\.a\.pull_policy/);
  });
});

describe('berth compose config with the service keys', () => {
  const FILE = `
services:
  hub:
    image: reg/hub:1
    container_name: zigbee-hub
    privileged: true
    cap_add: [net_admin]
    devices: [{source: /dev/ttyUSB0, target: /dev/ttyACM0}]
    ports: ["127.0.0.1:8080:80", {target: 1883, published: 1883}]
    volumes: [/srv/hub:/data:rslave, {type: bind, source: /run/dbus, target: /run/dbus}, {type: tmpfs, target: /cache, tmpfs: {size: 1m}}]
    tmpfs: /run
    sysctls: [net.core.somaxconn=512]
    ulimits: {nofile: 4096}
    logging: {driver: local, options: {max-size: 1m}}
    depends_on: {broker: {condition: service_healthy}}
    deploy: {resources: {limits: {memory: 64m}}}
    labels: {io.balena.features.firmware: 1}
    extra_hosts: {nas: 10.0.0.6}
    shm_size: 1g
    stop_signal: INT
  broker:
    image: reg/mqtt:2
    network_mode: host
    pid: host
`;

  it('shows every key normalized, and reads back to the same document', async () => {
    const doc = composeDocument(composeApp(await parseYaml(FILE), '/srv/farm/compose.yaml'));
    const hub = (doc.services as Record<string, Record<string, unknown>>).hub!;
    expect(hub).toMatchObject({
      container_name: 'zigbee-hub', privileged: true, cap_add: ['CAP_NET_ADMIN'], devices: ['/dev/ttyUSB0:/dev/ttyACM0:rwm'],
      ports: [{ target: 80, published: '8080', host_ip: '127.0.0.1', protocol: 'tcp' }, { target: 1883, published: '1883', protocol: 'tcp' }],
      volumes: ['/srv/hub:/data:rslave', { type: 'bind', source: '/run/dbus', target: '/run/dbus', read_only: false, bind: { create_host_path: false } }],
      tmpfs: ['/cache:size=1m', '/run'], sysctls: { 'net.core.somaxconn': '512' }, ulimits: { nofile: { soft: 4096, hard: 4096 } },
      logging: { driver: 'local', options: { 'max-size': String(1024 * 1024) } }, depends_on: { broker: { condition: 'service_healthy', restart: false, required: true } },
      mem_limit: 64 * 1024 * 1024, labels: { 'io.balena.features.firmware': '1' }, extra_hosts: ['nas:10.0.0.6'], shm_size: 1024 ** 3, stop_signal: 'SIGINT',
    });
    expect((doc.services as Record<string, unknown>).broker).toMatchObject({ network_mode: 'host', pid: 'host' });
    // The balena feature's mount is the label's to show (it runs all the same).
    expect(composeApp(await parseYaml(FILE), '/srv/farm/compose.yaml').services.get('hub')!.run.volumes.map((v) => v.target)).toContain('/lib/firmware');
    expect(composeDocument(composeApp(JSON.parse(JSON.stringify(doc)), '/srv/farm/compose.yaml'))).toEqual(doc);
  });

  it('shows networks by their key, with the aliases berth adds', async () => {
    const all = await services('services:\n  a:\n    image: x\n    container_name: alpha\n    networks: {front: {ipv4_address: 10.1.0.5}}\n', { networks: [network('front')] });
    const app = { name: 'farm', revision: 1, services: all, update: { strategy: 'download-then-kill', healthWindowMs: 1000, onFailure: 'rollback' }, volumes: new Map(), networks: new Map([['front', network('front')]]), configs: new Map(), secrets: new Map(), source: { revision: 1, services: {} } } as const;
    expect((composeDocument(app).services as Record<string, Record<string, unknown>>).a!.networks).toEqual({ front: { aliases: ['a', 'alpha'], ipv4_address: '10.1.0.5' } });
  });
});

describe('berth compose config: configs and secrets', () => {
  it('shows them in the long syntax with every default spelled out', async () => {
    const parts = { configs: [file('conf', 'a=1\n')], secrets: [file('token', 'x')] };
    const all = await services('services:\n  a:\n    image: x\n    configs: [conf]\n    secrets: [token, {source: token, target: /etc/token, mode: "0400", uid: "1000"}]\n', parts);
    const source = { revision: 1, services: { a: { image: 'x', configs: ['conf'], secrets: ['token', { source: 'token', target: '/etc/token', mode: '0400', uid: '1000' }] } } };
    const app = { name: 'farm', revision: 1, services: all, update: { strategy: 'download-then-kill', healthWindowMs: 1000, onFailure: 'rollback' }, volumes: new Map(), networks: new Map(), configs: new Map(), secrets: new Map(), source } as const;
    expect((composeDocument(app).services as Record<string, Record<string, unknown>>).a).toMatchObject({
      configs: [{ source: 'conf', target: '/conf', mode: '0444' }],
      secrets: [{ source: 'token', target: '/run/secrets/token', mode: '0444' }, { source: 'token', target: '/etc/token', mode: '0400', uid: '1000' }],
    });
  });
});
