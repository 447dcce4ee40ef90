import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toLinuxResources } from '../../src/cgroup/resources.js';
import { hostPaths } from '../../src/host/paths.js';
import { resolvConf } from '../../src/network/etc-files.js';
import { writeInlineFiles } from '../../src/runtime/inline-files.js';
import { defaultRunOptions, parseVolume, type RunOptions } from '../../src/runtime/options.js';
import { buildSpec } from '../../src/runtime/spec/build.js';
import { fixtureSeccomp } from '../helpers/seccomp-fixture.js';
import { readHostFacts } from '../../src/runtime/spec/host.js';

/** The runtime side of the compose service keys: what the spec builder and the engine do with the new RunOptions. */

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-spec-compose-'));
  fs.mkdirSync(path.join(tmp, 'rootfs/etc'), { recursive: true });
  fs.writeFileSync(path.join(tmp, 'rootfs/etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(tmp, 'rootfs/etc/group'), 'root:x:0:\n');
  fs.mkdirSync(path.join(tmp, 'host/proc/self'), { recursive: true });
  fs.mkdirSync(path.join(tmp, 'host/dev'), { recursive: true });
  fs.writeFileSync(path.join(tmp, 'host/proc/self/status'), 'Name:\tnode\nCapBnd:\t000001fffeffffff\n');
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const defaults = { memoryHighBytes: 0, memoryMaxBytes: 0, pidsLimit: 0, cpuWeight: 0 };
function spec(over: Partial<RunOptions>) {
  const options = { ...defaultRunOptions('web'), ...over };
  return buildSpec({
    id: 'c0ffee1234567890', image: { config: { Cmd: ['/bin/app'] } }, options, rootfs: path.join(tmp, 'rootfs'), stateRoot: path.join(tmp, 'state'),
    host: readHostFacts(hostPaths(path.join(tmp, 'host'))), resources: toLinuxResources(options, defaults), cgroupsEnforced: true, checkMountSources: false, seccomp: fixtureSeccomp(tmp),
  });
}

describe('spec: compose service keys', () => {
  it('pid: host and ipc: host leave those namespaces out; domainname is set', () => {
    expect(spec({}).linux.namespaces.map((n) => n.type)).toEqual(['pid', 'ipc', 'uts', 'mount', 'network']);
    expect(spec({ pidMode: 'host', ipcMode: 'host', domainname: 'farm.lan' })).toMatchObject({ domainname: 'farm.lan' });
    expect(spec({ pidMode: 'host', ipcMode: 'host' }).linux.namespaces.map((n) => n.type)).toEqual(['uts', 'mount', 'network']);
    expect(spec({ ipcMode: 'shareable' }).linux.namespaces.map((n) => n.type)).toContain('ipc');
    expect(spec({}).domainname).toBeUndefined();
  });

  it('bind propagation reaches the mount options; rprivate stays the default', () => {
    const mounts = spec({ volumes: [parseVolume('/media:/media:rslave,ro'), parseVolume('/srv:/srv')] }).mounts;
    expect(mounts.find((m) => m.destination === '/media')?.options).toEqual(['rbind', 'rslave', 'ro']);
    expect(mounts.find((m) => m.destination === '/srv')?.options).toEqual(['rbind', 'rprivate', 'rw']);
    expect(() => parseVolume('data:/data:rshared')).toThrow('-v data:/data:rshared: a propagation applies to bind mounts only');
    expect(() => parseVolume('/a:/b:rwx')).toThrow(/unknown option "rwx"/);
  });

  it('a bind of the host\'s /proc or /sys replaces the standard mount in place; /dev only for a privileged container', () => {
    const bind = (p: string) => ({ source: p, target: p, readOnly: false, kind: 'bind' as const });
    const m = spec({ volumes: [bind('/sys'), bind('/proc')] }).mounts;
    expect(m.filter((x) => x.destination === '/proc')).toEqual([{ destination: '/proc', type: 'bind', source: '/proc', options: ['rbind', 'rprivate', 'rw'] }]);
    // In the standard mount's place: the cgroup tree still goes on top of the bound /sys.
    expect(m.map((x) => x.destination).slice(0, 5)).toEqual(['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup']);
    expect(m.find((x) => x.destination === '/sys')?.type).toBe('bind');
    expect(() => spec({ volumes: [bind('/dev')] })).toThrow('cannot mount over /dev: the runtime provides it');
    const priv = spec({ privileged: true, volumes: [bind('/dev')] }).mounts;
    expect(priv.map((x) => x.destination).indexOf('/dev')).toBeLessThan(priv.map((x) => x.destination).indexOf('/dev/pts'));
    expect(priv.find((x) => x.destination === '/dev')).toMatchObject({ type: 'bind', source: '/dev' });
    // Only the host's own tree: another source over /proc is still refused.
    expect(() => spec({ volumes: [{ ...bind('/srv/fake'), target: '/proc' }] })).toThrow('cannot mount over /proc: the runtime provides it');
  });

  it('blkio weight becomes OCI blockIO.weight', () => {
    expect(toLinuxResources({ blkioWeight: 300 }, defaults).blockIO).toEqual({ weight: 300 });
    expect(toLinuxResources({}, defaults).blockIO).toBeUndefined();
  });
});

describe('resolv.conf with dns_search and dns_opt', () => {
  it('replace the search domains and options, as docker\'s --dns-search/--dns-option do', () => {
    const host = 'search lan\nnameserver 192.0.2.53\noptions edns0\n';
    expect(resolvConf({ dnsSearch: ['farm.lan'], dnsOptions: ['ndots:2'], networkDns: ['10.89.3.1'], searchDomains: ['dns.podman'], hostResolvConf: host }))
      .toBe('search farm.lan\nnameserver 10.89.3.1\noptions ndots:2\n');
  });
});

describe('inline files (compose configs and secrets)', () => {
  it('are written under the container directory with their mode and bound read-only', () => {
    const dir = path.join(tmp, 'containers/abc');
    fs.mkdirSync(dir, { recursive: true });
    const mounts = writeInlineFiles(dir, [
      { target: '/etc/app.conf', content: Buffer.from('port 1883\n').toString('base64') },
      { target: '/run/secrets/token', content: Buffer.from('s3cret').toString('base64'), mode: 0o400, uid: 1000, gid: 1000 },
    ]);
    expect(mounts).toEqual([
      { source: path.join(dir, 'files/0'), target: '/etc/app.conf', readOnly: true, kind: 'bind' },
      { source: path.join(dir, 'files/1'), target: '/run/secrets/token', readOnly: true, kind: 'bind' },
    ]);
    expect(fs.readFileSync(path.join(dir, 'files/0'), 'utf8')).toBe('port 1883\n');
    expect(fs.statSync(path.join(dir, 'files/0')).mode & 0o7777).toBe(0o444);
    const secret = fs.statSync(path.join(dir, 'files/1'));
    expect([secret.mode & 0o7777, secret.uid, secret.gid]).toEqual([0o400, 1000, 1000]);
    expect(writeInlineFiles(dir, undefined)).toEqual([]);
  });
});
