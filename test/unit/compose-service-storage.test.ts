import { describe, expect, it } from 'vitest';
import { file, refusal, service, volume } from '../helpers/compose-services.js';

describe('compose volumes', () => {
  it('short syntax: binds (created when missing, as docker does), propagation and SELinux options, named volumes by their app name', async () => {
    const s = await service(`
services:
  frigate:
    image: x
    volumes:
      - /etc/localtime:/etc/localtime:ro
      - /media/frigate:/media:rslave
      - /srv/config:/config:z
      - db:/db
      - cache:/cache:nocopy
      - /srv/shared:/shared:ro,cached
`, { volumes: [volume('db')] });
    expect(s.run.volumes).toEqual([
      { source: '/etc/localtime', target: '/etc/localtime', readOnly: true, kind: 'bind', createHostPath: true },
      { source: '/media/frigate', target: '/media', readOnly: false, kind: 'bind', propagation: 'rslave', createHostPath: true },
      { source: '/srv/config', target: '/config', readOnly: false, kind: 'bind', createHostPath: true },
      { source: 'farm_db', target: '/db', readOnly: false, kind: 'volume' },
      // Not declared at the top level: berth's own volume of that name, as desired states named them before.
      { source: 'cache', target: '/cache', readOnly: false, kind: 'volume' },
      // Docker Desktop's consistency hints mean nothing on Linux.
      { source: '/srv/shared', target: '/shared', readOnly: true, kind: 'bind', createHostPath: true },
    ]);
  });

  it('relative sources resolve under the app data directory and never leave it; an anonymous volume is a stable named one', async () => {
    const s = await service('services:\n  z2m:\n    image: x\n    volumes: ["./data:/app/data", "/scratch"]\n');
    expect(s.run.volumes[0]).toMatchObject({ source: '/var/lib/berth/apps/farm/data', target: '/app/data', kind: 'bind', createHostPath: true });
    expect(s.run.volumes[1]).toMatchObject({ source: expect.stringMatching(/^farm_z2m_[0-9a-f]{12}$/), target: '/scratch', kind: 'volume' });
    expect((await service('services:\n  z2m:\n    image: x\n    volumes: ["/scratch"]\n')).run.volumes[0]!.source).toBe(s.run.volumes[1]!.source);
    expect(await refusal('services:\n  z2m:\n    image: x\n    volumes: ["../../etc:/host-etc"]\n')).toBe('services.z2m.volumes: "../../etc" leaves the app\'s data directory /var/lib/berth/apps/farm');
    expect(await refusal('services:\n  z2m:\n    image: x\n    volumes: ["~/x:/x"]\n')).toMatch(/^services\.z2m\.volumes: "~\/x": a home-relative host path/);
    expect(await refusal('services:\n  z2m:\n    image: x\n    volumes: ["./x:/x"]\n', { dataDir: '' })).toMatch(/^services\.z2m\.volumes: "\.\/x" is relative and this app has no data directory/);
  });

  it('long syntax: bind with create_host_path and propagation, volume with nocopy, tmpfs with size and mode', async () => {
    const s = await service(`
services:
  mqtt:
    image: x
    volumes:
      - type: bind
        source: ./config
        target: /mosquitto/config
        read_only: true
        bind: {create_host_path: true, propagation: rshared}
      - type: bind
        source: /var/run/dbus
        target: /var/run/dbus
      - type: volume
        source: data
        target: /mosquitto/data
        volume: {nocopy: true}
      - type: tmpfs
        target: /run/cache
        tmpfs: {size: 64m, mode: "1777"}
`, { volumes: [volume('data')] });
    expect(s.run.volumes).toEqual([
      { source: '/var/lib/berth/apps/farm/config', target: '/mosquitto/config', readOnly: true, kind: 'bind', propagation: 'rshared', createHostPath: true },
      // Long syntax without create_host_path: a missing source stays an error at create, as compose.
      { source: '/var/run/dbus', target: '/var/run/dbus', readOnly: false, kind: 'bind' },
      { source: 'farm_data', target: '/mosquitto/data', readOnly: false, kind: 'volume' },
    ]);
    expect(s.run.tmpfs).toEqual([{ target: '/run/cache', options: ['size=64m', 'mode=1777'] }]);
    expect(await refusal('services:\n  a:\n    image: x\n    volumes: [{type: tmpfs, target: /t, tmpfs: {size: 1q}}]\n')).toMatch(/^desired state is invalid: services\.a\.volumes\[0\]\.tmpfs\.size: must match pattern/);
    expect(await refusal('services:\n  a:\n    image: x\n    volumes: [{type: bind, target: /t}]\n')).toBe('services.a.volumes: a bind mount needs a source');
    expect(await refusal('services:\n  a:\n    image: x\n    volumes: [{type: volume, source: /etc, target: /t}]\n')).toBe('services.a.volumes: volume source "/etc" is a host path; use type: bind');
  });

  it('named volumes whose local driver_opts say bind or tmpfs mount as such; other drivers are refused naming the volume', async () => {
    const parts = { volumes: [volume('media', { type: 'none', o: 'bind', device: '/mnt/usb' }), volume('ram', { type: 'tmpfs', device: 'tmpfs', o: 'size=32m' }), volume('nas', { type: 'nfs', o: 'addr=10.0.0.2' })] };
    const s = await service('services:\n  a:\n    image: x\n    volumes: ["media:/media:ro", "ram:/ram"]\n', parts);
    expect(s.run.volumes).toEqual([{ source: '/mnt/usb', target: '/media', readOnly: true, kind: 'bind' }]);
    expect(s.run.tmpfs).toEqual([{ target: '/ram', options: ['size=32m'] }]);
    expect(await refusal('services:\n  a:\n    image: x\n    volumes: ["nas:/nas"]\n', parts)).toMatch(/^services\.a\.volumes: volume nas has driver_opts berth cannot mount \(type nfs/);
  });

  it('the tmpfs key (string or list), and duplicate mount points refused', async () => {
    expect((await service('services:\n  a:\n    image: x\n    tmpfs: /run\n')).run.tmpfs).toEqual([{ target: '/run', options: [] }]);
    expect((await service('services:\n  a:\n    image: x\n    tmpfs: ["/run:size=1.5g,mode=1777", /tmp]\n')).run.tmpfs).toEqual([
      { target: '/run', options: [`size=${1.5 * 1024 ** 3}`, 'mode=1777'] }, { target: '/tmp', options: [] },
    ]);
    expect(await refusal('services:\n  a:\n    image: x\n    tmpfs: ["/run:bogus"]\n')).toBe('services.a.tmpfs: invalid tmpfs option "bogus"');
    expect(await refusal('services:\n  a:\n    image: x\n    tmpfs: /data\n    volumes: ["/srv:/data"]\n')).toBe('service a: duplicate mount point /data');
  });
});

describe('compose configs and secrets', () => {
  it('become files the engine writes: /<name> and /run/secrets/<name> by default, long syntax target and mode', async () => {
    const parts = { configs: [file('mosquitto', 'listener 1883\n')], secrets: [file('token', 's3cret')] };
    const s = await service(`
services:
  mqtt:
    image: x
    configs:
      - mosquitto
      - {source: mosquitto, target: /mosquitto/config/mosquitto.conf, mode: "0440"}
    secrets:
      - token
      - {source: token, target: api-token, uid: "1000", gid: 1000, mode: 256}
`, parts);
    const content = (t: string): string => Buffer.from(t).toString('base64');
    expect(s.run.files).toEqual([
      { target: '/mosquitto', content: content('listener 1883\n') },
      { target: '/mosquitto/config/mosquitto.conf', content: content('listener 1883\n'), mode: 0o440 },
      { target: '/run/secrets/token', content: content('s3cret') },
      { target: '/run/secrets/api-token', content: content('s3cret'), mode: 0o400, uid: 1000, gid: 1000 },
    ]);
    expect(await refusal('services:\n  a:\n    image: x\n    secrets: [nope]\n', parts)).toBe('services.a.secrets: secret "nope" is not declared under the top-level secrets:');
    expect(await refusal('services:\n  a:\n    image: x\n    configs: [{source: mosquitto, mode: "999"}]\n', parts)).toMatch(/^desired state is invalid: services\.a\.configs\[0\]\.mode: must match pattern/);
  });
});
