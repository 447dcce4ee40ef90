import { execFileSync } from 'node:child_process';

/**
 * The integration run's proof that no container packet leaves the host: an nftables table of its own
 * whose forward chain counts and drops what a berth bridge (br-*) sends to any interface that is not
 * a bridge or a test-made veth (btr*, remote-netns.ts), i.e. toward the host's uplinks, and records
 * the destinations. Host-wide, as forwarding is: a leak by a concurrent run on the host counts too,
 * which is right (the rule is everyone's). Packets to the host itself (published ports, the gateway's
 * DNS) are not forwarded and not matched.
 */
export interface LeakGuard {
  readonly table: string;
  /** Removes the table; what it counted. */
  close(): { packets: number; destinations: string[] };
}

const nft = (script: string) => execFileSync('nft', ['-f', '-'], { input: script, encoding: 'utf8' });

export function installLeakGuard(): LeakGuard {
  const table = `berth_itest_${process.pid}`;
  nft([
    `table inet ${table} {`,
    '  set dst4 { type ipv4_addr; size 256; flags dynamic; }',
    '  set dst6 { type ipv6_addr; size 256; flags dynamic; }',
    '  counter leaks { }',
    // Before netavark's and docker's filter chains (priority 0), so nothing accepts it first.
    '  chain forward {',
    '    type filter hook forward priority -10; policy accept;',
    '    iifname "br-*" oifname != "br-*" oifname != "btr*" meta nfproto ipv4 add @dst4 { ip daddr } counter name "leaks" drop',
    '    iifname "br-*" oifname != "br-*" oifname != "btr*" meta nfproto ipv6 add @dst6 { ip6 daddr } counter name "leaks" drop',
    '  }',
    '}',
    '',
  ].join('\n'));
  return {
    table,
    close() {
      const seen = readGuard(table);
      execFileSync('nft', ['delete', 'table', 'inet', table]);
      return seen;
    },
  };
}

/** What the guard `table` has counted so far, and the destinations it dropped packets to. */
export function readGuard(table: string): { packets: number; destinations: string[] } {
  const doc = JSON.parse(execFileSync('nft', ['-j', 'list', 'table', 'inet', table], { encoding: 'utf8' })) as { nftables: Array<Record<string, any>> };
  let packets = 0;
  const destinations: string[] = [];
  for (const o of doc.nftables) {
    if (o.counter?.name === 'leaks') packets += o.counter.packets as number;
    if (o.set?.elem) for (const el of o.set.elem as unknown[]) destinations.push(typeof el === 'string' ? el : JSON.stringify(el));
  }
  return { packets, destinations };
}

/**
 * Forgets what the guard `table` counted (all of it, which the caller has just read) and the decoy
 * `address` it recorded: for the test that proves the guard counts, with a packet toward a decoy of its own.
 */
export function forgetDecoy(table: string, address: string): void {
  execFileSync('nft', ['reset', 'counter', 'inet', table, 'leaks']);
  execFileSync('nft', ['delete', 'element', 'inet', table, address.includes(':') ? 'dst6' : 'dst4', `{ ${address} }`]);
}
