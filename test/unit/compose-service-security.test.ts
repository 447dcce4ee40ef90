import { describe, expect, it } from 'vitest';
import { refusal, service, services } from '../helpers/compose-services.js';

describe('compose confinement, devices and kernel keys', () => {
  it('maps each onto berth run\'s options', async () => {
    const s = await service(`
services:
  zigbee:
    image: x
    privileged: true
    cap_add: [NET_ADMIN, sys_rawio]
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:false", "apparmor:unconfined"]
    group_add: [dialout, 997]
    devices:
      - /dev/ttyUSB0:/dev/ttyACM0
      - /dev/i2c-1:/dev/i2c-1:r
      - {source: /dev/gpiomem, target: /dev/gpiomem, permissions: rw}
      - {source: /dev/video0}
    device_cgroup_rules: ["c 189:* rmw"]
    sysctls: {net.core.somaxconn: 1024, net.ipv4.tcp_syncookies: 0}
    ulimits:
      nofile: {soft: 20000, hard: 40000}
      nproc: 65535
    pid: host
    ipc: shareable
    oom_score_adj: -500
    init: true
    tty: true
    stdin_open: true
    stop_signal: SIGINT
`);
    expect(s.run).toMatchObject({
      privileged: true, capAdd: ['CAP_NET_ADMIN', 'CAP_SYS_RAWIO'], capDrop: ['ALL'], security: { noNewPrivileges: false }, groupAdd: ['dialout', '997'],
      devices: [
        { hostPath: '/dev/ttyUSB0', containerPath: '/dev/ttyACM0', permissions: 'rwm' },
        { hostPath: '/dev/i2c-1', containerPath: '/dev/i2c-1', permissions: 'r' },
        { hostPath: '/dev/gpiomem', containerPath: '/dev/gpiomem', permissions: 'rw' },
        { hostPath: '/dev/video0', containerPath: '/dev/video0', permissions: 'rwm' },
      ],
      deviceCgroupRules: [{ allow: true, type: 'c', major: 189, access: 'rmw' }],
      sysctls: { 'net.core.somaxconn': '1024', 'net.ipv4.tcp_syncookies': '0' },
      ulimits: [{ type: 'RLIMIT_NOFILE', soft: 20000, hard: 40000 }, { type: 'RLIMIT_NPROC', soft: 65535, hard: 65535 }],
      pidMode: 'host', ipcMode: 'shareable', oomScoreAdj: -500, init: true, tty: true, stdinOpen: true, stopSignal: 'SIGINT',
    });
    expect((await service('services:\n  a:\n    image: x\n    sysctls: ["kernel.shmmax=1024"]\n')).run.sysctls).toEqual({ 'kernel.shmmax': '1024' });
  });

  it('refuses what berth run refuses, naming the key', async () => {
    const one = (key: string): Promise<string> => refusal(`services:\n  frigate:\n    image: x\n    ${key}\n`);
    expect(await one('cap_add: [FLY]')).toMatch(/^services\.frigate\.cap_add: unknown capability "FLY"/);
    expect(await one('security_opt: ["bogus=1"]')).toMatch(/^services\.frigate\.security_opt.*bogus=1: unknown security option/);
    expect(await one('devices: ["dev/ttyUSB0"]')).toMatch(/^services\.frigate\.devices: --device dev\/ttyUSB0: host path "dev\/ttyUSB0" must be absolute/);
    expect(await one('device_cgroup_rules: ["c x:y rwm"]')).toMatch(/^services\.frigate\.device_cgroup_rules: "c x:y rwm" is not TYPE MAJOR:MINOR ACCESS/);
    expect(await one('sysctls: {kernel.hostname: x}')).toMatch(/^services\.frigate\.sysctls kernel\.hostname: not a namespaced sysctl/);
    expect(await one('ulimits: {nofile: {soft: 2, hard: 1}}')).toMatch(/^services\.frigate\.ulimits\.nofile: --ulimit nofile=2:1: soft limit 2 is above the hard limit 1/);
    expect(await one('ulimits: {bogus: 1}')).toMatch(/^services\.frigate\.ulimits\.bogus: --ulimit: unknown limit "bogus"/);
    expect(await one('pid: "service:db"')).toBe('services.frigate.pid: service "db" is not in this app');
    expect(await one('ipc: "service:frigate"')).toBe('services.frigate.ipc: a service cannot join its own IPC namespace');
    expect(await one('ipc: none')).toBe('services.frigate.ipc: "none" is not an IPC mode: use host, private, shareable or container:NAME');
    expect(await one('pid: "container:"')).toMatch(/^desired state is invalid: services\.frigate\.pid: must match pattern/);
    expect(await one('stop_signal: SIGNOPE')).toBe('services.frigate.stop_signal: unknown signal "SIGNOPE"');
    expect(await one('oom_score_adj: 2000')).toMatch(/^desired state is invalid: services\.frigate\.oom_score_adj: must be <= 1000/);
  });

  it('pid/ipc: service:S join S\'s container, depend on S and are recreated with it, as network_mode: service:S', async () => {
    const yaml = (dbCmd: string) => `services:\n  db:\n    image: x\n    command: ${dbCmd}\n  tool:\n    image: y\n    pid: "service:db"\n    ipc: "service:db"\n  other:\n    image: z\n    ipc: "container:legacy"\n`;
    const a = await services(yaml('serve'));
    const db = a.get('db')!;
    expect(a.get('tool')!.run).toMatchObject({ pidMode: `container:${db.run.name}`, ipcMode: `container:${db.run.name}` });
    expect([...a.get('tool')!.dependsOn]).toEqual([['db', { condition: 'service_started', restart: false, required: true }]]);
    expect(a.get('other')!.run.ipcMode).toBe('container:legacy');
    const b = await services(yaml('serve --fast'));
    expect(b.get('tool')!.hash).not.toBe(a.get('tool')!.hash);
    expect(b.get('other')!.hash).toBe(a.get('other')!.hash);
    expect(await refusal('services:\n  a:\n    image: x\n    pid: "service:b"\n  b:\n    image: x\n    ipc: "service:a"\n')).toMatch(/services join each other's namespaces in a loop: a → b → a/);
  });

  it('logging: json-file and local with max-size/max-file become the capped log, none keeps none, other drivers are refused naming them', async () => {
    expect((await service('services:\n  a:\n    image: x\n    logging:\n      driver: json-file\n      options: {max-size: 10m, max-file: 3}\n')).run.log).toEqual({ driver: 'json-file', maxSize: 10 * 1024 * 1024, maxFile: 3 });
    expect((await service('services:\n  a:\n    image: x\n    logging: {driver: local, options: {max-file: "2"}}\n')).run.log).toEqual({ driver: 'local', maxFile: 2 });
    expect((await service('services:\n  a:\n    image: x\n    logging: {driver: none}\n')).run.log).toEqual({ driver: 'none' });
    expect(await refusal('services:\n  a:\n    image: x\n    logging: {driver: syslog}\n')).toMatch(/^services\.a\.logging: log driver "syslog" is not supported/);
    expect(await refusal('services:\n  a:\n    image: x\n    logging: {options: {tag: x}}\n')).toMatch(/^services\.a\.logging\.options: log option "tag" is not supported/);
  });
});

describe('compose resources', () => {
  it('the v2 keys and the v3 deploy.resources form', async () => {
    const v2 = await service('services:\n  a:\n    image: x\n    mem_limit: 256m\n    mem_reservation: 64m\n    cpus: 1.5\n    pids_limit: 100\n    cpuset: "0-1"\n    mem_swappiness: 10\n    blkio_config: {weight: 300}\n    shm_size: 128m\n');
    expect(v2.run).toMatchObject({ memory: 256 * 1024 ** 2, memoryReservation: 64 * 1024 ** 2, cpus: 1.5, pidsLimit: 100, cpusetCpus: '0-1', memorySwappiness: 10, blkioWeight: 300, shmSize: 128 * 1024 ** 2 });
    const v3 = await service('services:\n  a:\n    image: x\n    deploy:\n      resources:\n        limits: {cpus: "0.50", memory: 256M, pids: 100}\n        reservations: {memory: 64M}\n');
    expect(v3.run).toMatchObject({ memory: 256 * 1024 ** 2, memoryReservation: 64 * 1024 ** 2, cpus: 0.5, pidsLimit: 100 });
    expect((await service('services:\n  a:\n    image: x\n    cpu_quota: 50000\n')).run.cpus).toBe(0.5);
    expect((await service('services:\n  a:\n    image: x\n    cpu_quota: 25000\n    cpu_period: 50000\n')).run.cpus).toBe(0.5);
    expect((await service('services:\n  a:\n    image: x\n    deploy: {replicas: 1, mode: replicated}\n')).run.memory).toBeUndefined();
  });

  it('refuses what means more than one container on the device, and two spellings that disagree', async () => {
    expect(await refusal('services:\n  a:\n    image: x\n    deploy: {replicas: 3}\n')).toBe('services.a.deploy.replicas: 3: berth runs one container per service on a device');
    expect(await refusal('services:\n  a:\n    image: x\n    deploy: {mode: global}\n')).toBe('services.a.deploy.mode: "global" is a swarm mode; berth runs one container per service on each device');
    expect(await refusal('services:\n  a:\n    image: x\n    deploy: {placement: {constraints: []}}\n')).toMatch(/^desired state is invalid: services\.a\.deploy\.placement: unknown key/);
    expect(await refusal('services:\n  a:\n    image: x\n    mem_limit: 1g\n    deploy: {resources: {limits: {memory: 2g}}}\n')).toBe(`services.a.deploy.resources.limits.memory: ${2 * 1024 ** 3} differs from mem_limit (${1024 ** 3}); give one of them`);
    expect(await refusal('services:\n  a:\n    image: x\n    cpu_period: 50000\n')).toBe('services.a.cpu_period: needs cpu_quota');
    expect(await refusal('services:\n  a:\n    image: x\n    shm_size: 1q\n')).toMatch(/^desired state is invalid: services\.a\.shm_size/);
    expect(await refusal('services:\n  a:\n    image: x\n    cpuset: "3-1"\n')).toMatch(/^services\.a\.cpuset: "3-1" is not a CPU list/);
    expect(await refusal('services:\n  a:\n    image: x\n    blkio_config: {weight: 5}\n')).toMatch(/^desired state is invalid: services\.a\.blkio_config\.weight: must be >= 10/);
  });
});
