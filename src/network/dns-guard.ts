import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { holdLock } from './host-lock.js';
import type { NetavarkTool } from './netavark.js';
import type { NetworkDefinition } from './types.js';

const execFileAsync = promisify(execFile);

/**
 * aardvark-dns answers on each DNS network's gateway address, and a packet to a host address enters
 * through INPUT, which netavark 1.4 leaves open: a container of app B could ask app A's gateway and
 * learn A's names and addresses (measured: `nslookup server <A's gateway>` from B answered A's
 * server). docker has no such path (its DNS is inside each container). The guard: DNS (udp and tcp
 * 53) to a network's gateway is dropped unless it comes in on that network's own bridge.
 *
 * The rules are made the first time a network comes up in a boot (a marker on tmpfs, so later starts
 * cost no iptables call) and removed when its bridge goes (netavark removes it with its last
 * container). One missed (a kill -9 between the two) is harmless: a rule for a gateway no longer on
 * the host matches nothing (such packets are forwarded, not delivered to INPUT), and a network that
 * reuses the gateway replaces it. Changed under the netavark lock, so two berth processes do not add
 * the same rule twice.
 */

/** The comment that marks berth's rules (no spaces: `iptables -S` prints it unquoted). */
const COMMENT = 'berth-dns-guard';

/** The guard rule for `n`'s gateway and `proto`, as iptables arguments after the chain. */
function ruleArgs(n: NetworkDefinition, proto: 'udp' | 'tcp'): string[] {
  return ['-d', `${n.gateway}/32`, '!', '-i', n.bridge, '-p', proto, '-m', proto, '--dport', '53', '-m', 'comment', '--comment', COMMENT, '-j', 'DROP'];
}

/**
 * From `iptables -S INPUT`'s lines: berth guard rules for `n`'s gateway that belong to another
 * bridge (a removed network that had the same gateway), as `-D` arguments; and whether `n`'s own
 * rule for each protocol is there.
 */
export function planDnsGuard(rulesText: string, n: NetworkDefinition): { readonly remove: string[][]; readonly missing: Array<'udp' | 'tcp'> } {
  const lines = rulesText.split('\n').filter((l) => l.startsWith('-A INPUT ') && l.includes(`--comment ${COMMENT}`) && l.includes(` -d ${n.gateway}/32 `));
  const own = (l: string) => l.includes(` ! -i ${n.bridge} `);
  return {
    remove: lines.filter((l) => !own(l)).map((l) => ['-D', ...l.slice(3).split(' ')]),
    missing: (['udp', 'tcp'] as const).filter((p) => !lines.some((l) => own(l) && l.includes(` -p ${p} `))),
  };
}

/** Runs `fn` with iptables under the netavark lock; nothing without iptables. */
async function withIptables(tool: NetavarkTool, fn: (run: (args: string[]) => Promise<string>) => Promise<void>): Promise<void> {
  const iptables = tool.iptables;
  if (iptables === undefined) return;
  const release = await holdLock(tool.lock);
  try {
    await fn(async (args) => (await execFileAsync(iptables, ['-w', ...args], { timeout: 10_000 })).stdout);
  } finally {
    await release();
  }
}

/** Puts `n`'s guard in place once per boot (`markerDir` on tmpfs). No iptables (tool without it): nothing is done. */
export async function guardNetworkDns(tool: NetavarkTool, n: NetworkDefinition, markerDir: string): Promise<void> {
  const marker = path.join(markerDir, n.id);
  if (!n.dnsEnabled || fs.existsSync(marker)) return;
  await withIptables(tool, async (run) => {
    const plan = planDnsGuard(await run(['-S', 'INPUT']), n);
    for (const args of plan.remove) await run(args);
    for (const proto of plan.missing) await run(['-I', 'INPUT', '1', ...ruleArgs(n, proto)]);
    fs.mkdirSync(markerDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(marker, '');
  });
}

/**
 * After a teardown: when `n`'s bridge is gone (`bridgeExists` false, checked again under the lock),
 * its guard rules and marker go too.
 */
export async function unguardNetworkDns(tool: NetavarkTool, n: NetworkDefinition, markerDir: string, bridgeExists: () => boolean): Promise<void> {
  const marker = path.join(markerDir, n.id);
  if (!fs.existsSync(marker) || bridgeExists()) return;
  await withIptables(tool, async (run) => {
    if (bridgeExists()) return;
    const rules = (await run(['-S', 'INPUT'])).split('\n');
    const own = rules.filter((l) => l.startsWith('-A INPUT ') && l.includes(`--comment ${COMMENT}`) && l.includes(` -d ${n.gateway}/32 `) && l.includes(` ! -i ${n.bridge} `));
    for (const l of own) await run(['-D', ...l.slice(3).split(' ')]);
    fs.rmSync(marker, { force: true });
  });
}
