import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startDnsSink, type DnsSink } from './dns-sink.js';
import { installLeakGuard, type LeakGuard } from './leak-guard.js';
import { aardvarksOf } from './aardvarks.js';

/**
 * The integration project's global setup: the house rule "tests talk only to loopback or to addresses
 * in namespaces the test made" for every file at once, since `berth run` and compose put containers on
 * a bridge by default, and a bridge's names are served by aardvark-dns, which forwards names it does
 * not know to the host's resolvers (a busybox search-domain try, an "unknown name" check).
 *
 * - Every berth process of the run (bin/berth, agents, in-process engines given {@link netTestEnv}'s
 *   variables) uses a network run directory of this run's own, so the aardvark-dns serving its
 *   networks is one netavark starts for it, and BERTH_RESOLV_CONF names a resolv.conf whose only
 *   server is a loopback address where {@link startDnsSink} answers NXDOMAIN and records the name:
 *   netavark runs in a mount namespace that shows that file as /etc/resolv.conf, and the aardvark-dns
 *   it starts keeps it. Containers without network DNS get its servers minus loopback: none.
 * - The proof ({@link installLeakGuard}): an nftables table counts and drops every packet forwarded
 *   from a berth bridge (br-*) to anything but another bridge or a test-made veth (btr*), i.e. every
 *   packet a container would send off the host. At the end the count must be zero, and every
 *   aardvark-dns of this run must have seen the loopback-only resolv.conf; else the run fails.
 *
 * The variables are set here, in vitest's main process, before it forks the worker, which inherits
 * them; so are spawned berth processes (helpers pass process.env on).
 */

let sink: DnsSink | undefined;
let guard: LeakGuard | undefined;
let work: string | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-itest-net-'));
  sink = await startDnsSink();
  const resolv = path.join(work, 'resolv.conf');
  fs.writeFileSync(resolv, `nameserver ${sink.address}\n`);
  const runDir = path.join(work, 'run');
  process.env.BERTH_NETWORK_RUN_DIR = runDir;
  process.env.BERTH_RESOLV_CONF = resolv;
  guard = installLeakGuard();
  project.provide('netIsolation', { dnsSink: sink.address, queriesFile: sink.queriesFile, guardTable: guard.table });
  return async () => {
    const problems: string[] = [];
    // Every aardvark-dns of this run's config dir read the loopback-only file: else its forwards could leave.
    for (const pid of aardvarksOf(path.join(runDir, 'netavark', 'aardvark-dns'))) {
      let seen = '';
      try {
        seen = fs.readFileSync(`/proc/${pid}/root/etc/resolv.conf`, 'utf8');
      } catch {
        continue; // gone meanwhile
      }
      if (seen !== fs.readFileSync(resolv, 'utf8')) problems.push(`aardvark-dns ${pid} forwards to the host's resolvers (its /etc/resolv.conf: ${JSON.stringify(seen)})`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const leaks = guard!.close();
    if (leaks.packets > 0) problems.push(`${leaks.packets} packet(s) from containers were about to leave the host (dropped), to ${leaks.destinations.join(', ') || 'unknown addresses'}`);
    await sink!.close();
    fs.rmSync(work!, { recursive: true, force: true });
    if (problems.length > 0) throw new Error(`test-network isolation broken:\n${problems.join('\n')}`);
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    netIsolation: { dnsSink: string; queriesFile: string; guardTable: string };
  }
}
