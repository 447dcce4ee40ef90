import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { aardvarksOf } from '../helpers/net/aardvarks.js';
import { berthOn, openNetTestRoot, type NetTestRoot } from '../helpers/net/bridge.js';
import { forgetDecoy, readGuard } from '../helpers/net/leak-guard.js';
import { RemoteNamespace } from '../helpers/net/remote-netns.js';

// The integration project's network isolation (test/helpers/net/isolation-setup.ts), checked from the
// inside: what berth's containers look up goes to the run's loopback DNS sink and nowhere else, and
// the guard that fails the run on any container packet bound off the host does count such packets.

const iso = inject('netIsolation');
let t: NetTestRoot;
let decoy: RemoteNamespace | undefined;

beforeAll(async () => {
  t = await openNetTestRoot('iso');
}, 180_000);
afterAll(async () => {
  await t?.close();
  await decoy?.close();
});

const berth = berthOn(() => t.root);

describe('test-network isolation', () => {
  it('an unknown name asked on a user network is forwarded by aardvark-dns to the run\'s loopback sink only', () => {
    expect(berth('network', 'create', 'isonet')).toMatchObject({ code: 0 });
    const name = `leakprobe-${crypto.randomBytes(4).toString('hex')}.invalid`;
    // A container stays up meanwhile: aardvark-dns runs while its network has one.
    expect(berth('run', '-d', '--name', 'isoc', '--network', 'isonet', t.img, 'sleep', '300')).toMatchObject({ code: 0 });
    const r = berth('exec', 'isoc', 'sh', '-c', `cat /etc/resolv.conf; nslookup ${name}; exit 0`);
    expect(r.code, r.stderr).toBe(0);
    // The container asks its network's aardvark-dns (on the gateway), which forwards what it does not know.
    expect(r.stdout).toMatch(/^nameserver 10\./m);
    expect(fs.readFileSync(iso.queriesFile, 'utf8').split('\n')).toContain(name);
    // Every aardvark-dns of this run sees the loopback-only resolv.conf (so forwards nowhere else).
    const dir = path.join(process.env.BERTH_NETWORK_RUN_DIR!, 'netavark', 'aardvark-dns');
    const pids = aardvarksOf(dir);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) expect(fs.readFileSync(`/proc/${pid}/root/etc/resolv.conf`, 'utf8')).toBe(`nameserver ${iso.dnsSink}\n`);
    expect(berth('rm', '-f', 'isoc')).toMatchObject({ code: 0 });
    expect(berth('network', 'rm', 'isonet')).toMatchObject({ code: 0 });
  });

  it('a container on the default bridge (no network DNS) is given none of the host\'s resolvers', () => {
    const r = berth('run', '--rm', t.img, 'cat', '/etc/resolv.conf');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/^nameserver/m);
  });

  it('the guard counts and drops a container packet headed for an interface that is not a bridge or a test veth', async () => {
    // Nothing has tried to leave so far in this run.
    expect(readGuard(iso.guardTable)).toEqual({ packets: 0, destinations: [] });
    decoy = await RemoteNamespace.create('decoy');
    const r = berth('run', '--rm', t.img, 'sh', '-c', `nc -w 2 ${decoy!.remoteIp} 80 </dev/null && echo REACHED; exit 0`);
    expect(r.stdout).not.toContain('REACHED');
    const seen = readGuard(iso.guardTable);
    expect(seen.packets).toBeGreaterThan(0);
    expect(seen.destinations).toEqual([decoy!.remoteIp]);
    forgetDecoy(iso.guardTable, decoy!.remoteIp);
    expect(readGuard(iso.guardTable)).toEqual({ packets: 0, destinations: [] });
  });
});
