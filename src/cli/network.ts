import type { Command } from 'commander';
import { BerthError } from '../errors.js';
import { inspectNetwork, ipamConfig, portLines } from '../network/inspect.js';
import { isIPv6Text } from '../network/ipv6.js';
import { DEFAULT_NETWORK, type NetworkService } from '../network/service.js';
import { parseLabel } from '../runtime/options.js';
import type { CliContext } from './context.js';
import { printJson, table } from './format.js';

const collect = (v: string, acc: string[]): string[] => [...acc, v];

/** Opens the state root for one `berth network` command; networks need no engine or image store. */
async function withNetworks<T>(ctx: CliContext, fn: (s: NetworkService) => T): Promise<T> {
  const { withCliRoot } = await import('./engine.js');
  return withCliRoot(ctx, async (root) => fn(await root.networks()));
}

/** `-o K=V` driver options: a bare K is refused (docker needs a value too). */
function parseOpt(text: string): [string, string] {
  const i = text.indexOf('=');
  if (i <= 0) throw new BerthError('usage', `--opt ${text}: expected KEY=VALUE`);
  return [text.slice(0, i), text.slice(i + 1)];
}

/** `berth network create|ls|inspect|rm|prune|connect|disconnect` and `berth port`, docker's commands and output shapes. */
export function registerNetwork(program: Command, context: () => CliContext): void {
  program
    .command('port')
    .description("list a container's published ports (docker port)")
    .argument('<container>')
    .action(async (name: string) => {
      const ctx = context();
      const { withEngine } = await import('./engine.js');
      await withEngine(ctx, ({ engine }) => ctx.out.write(portLines(engine.find(name).options.ports ?? []).map((l) => `${l}\n`).join('')));
    });

  const network = program.command('network').description('manage bridge networks');

  network
    .command('create')
    .description('create a bridge network (addresses are chosen when containers join it)')
    .option('-d, --driver <driver>', 'network driver (only bridge)', 'bridge')
    .option('--subnet <cidr>', 'subnet, e.g. 10.90.0.0/24 (default: a free /24 of 10.89.0.0/16); once more with an IPv6 one for --ipv6', collect, [])
    .option('--gateway <ip>', 'gateway (the bridge address) inside --subnet (default: its first address); one per family', collect, [])
    .option('--ipv6', 'dual-stack: an IPv6 subnet too (the --subnet given, else a random /64 of fd00::/8)')
    .option('--ip-range <cidr>', 'allocate container addresses from this part of --subnet')
    .option('--internal', 'no outbound access and no published ports')
    .option('--label <K=V>', 'set a label (repeatable)', collect, [])
    .option('-o, --opt <K=V>', 'driver option (repeatable)', collect, [])
    .argument('<name>')
    .action(async (name: string, o: { driver: string; subnet: string[]; gateway: string[]; ipRange?: string; internal?: boolean; ipv6?: boolean; label: string[]; opt: string[] }) => {
      const ctx = context();
      const subnet = byFamily(o.subnet, '--subnet');
      const gateway = byFamily(o.gateway, '--gateway');
      const n = await withNetworks(ctx, (s) => s.create({
        name, driver: o.driver, internal: o.internal === true, labels: Object.fromEntries(o.label.map(parseLabel)), options: Object.fromEntries(o.opt.map(parseOpt)),
        ...(subnet.v4 !== undefined && { subnet: subnet.v4 }), ...(gateway.v4 !== undefined && { gateway: gateway.v4 }), ...(o.ipRange !== undefined && { ipRange: o.ipRange }),
        ...(o.ipv6 === true && { ipv6: true }), ...(subnet.v6 !== undefined && { ipv6Subnet: subnet.v6 }), ...(gateway.v6 !== undefined && { ipv6Gateway: gateway.v6 }),
      }));
      ctx.out.write(`${n.id}\n`);
    });

  network
    .command('ls')
    .alias('list')
    .description('list networks')
    .option('--json', 'print as JSON (docker network inspect shapes)')
    .option('-q, --quiet', 'only ids')
    .action(async (o: { json?: boolean; quiet?: boolean }) => {
      const ctx = context();
      await withNetworks(ctx, (s) => {
        // docker always shows its default network; berth makes it on first use, so listing is a use.
        s.ensureDefault();
        const list = s.list();
        if (o.json) return printJson(ctx.out, list.map((n) => inspectNetwork(n, s.leases(n.id))));
        if (o.quiet) return ctx.out.write(list.map((n) => `${n.id.slice(0, 12)}\n`).join(''));
        // A dual-stack network's two subnets share the cell, comma-separated: one row per network.
        ctx.out.write(table([['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE', 'SUBNET'], ...list.map((n) => [n.id.slice(0, 12), n.name, n.driver, 'local', ipamConfig(n).map((c) => c.Subnet).join(',')])]));
      });
    });

  network
    .command('inspect')
    .description('show networks as JSON, with their containers')
    .argument('<network...>')
    .action(async (names: string[]) => {
      const ctx = context();
      await withNetworks(ctx, (s) => printJson(ctx.out, names.map((name) => {
        const n = name === DEFAULT_NETWORK ? s.ensureDefault() : s.find(name);
        return inspectNetwork(n, s.leases(n.id));
      })));
    });

  network
    .command('rm')
    .alias('remove')
    .description('remove networks no container uses')
    .argument('<network...>')
    .action(async (names: string[]) => {
      const ctx = context();
      await withNetworks(ctx, (s) => {
        for (const name of names) ctx.out.write(`${s.remove(name).name}\n`);
      });
    });

  network
    .command('connect')
    .description('connect a container to a network (a running one at once, a stopped one from its next start)')
    .option('--alias <name>', 'another DNS name for the container on this network (repeatable)', collect, [])
    .option('--ip <address>', 'IPv4 address on the network (default: the next free one)')
    .option('--ip6 <address>', 'IPv6 address on the network (one made with --ipv6; default: the next free one)')
    .argument('<network>')
    .argument('<container>')
    .action(async (net: string, name: string, o: { alias: string[]; ip?: string; ip6?: string }) => {
      const ctx = context();
      const { withEngine } = await import('./engine.js');
      await withEngine(ctx, async ({ engine }) => {
        await engine.connectNetwork(name, net, { aliases: o.alias, ...(o.ip !== undefined && { ip: o.ip }), ...(o.ip6 !== undefined && { ip6: o.ip6 }) });
      });
    });

  network
    .command('disconnect')
    .description('disconnect a container from a network')
    .option('-f, --force', 'forget the connection even if its teardown fails')
    .argument('<network>')
    .argument('<container>')
    .action(async (net: string, name: string, o: { force?: boolean }) => {
      const ctx = context();
      const { withEngine } = await import('./engine.js');
      await withEngine(ctx, async ({ engine }) => {
        await engine.disconnectNetwork(name, net, o.force === true);
      });
    });

  network
    .command('prune')
    .description('remove all networks no container uses (the default bridge stays)')
    .option('-f, --force', 'accepted for docker compatibility (berth does not prompt)')
    .action(async () => {
      const ctx = context();
      const { withEngine } = await import('./engine.js');
      // First what removed containers left in the kernel (a kill -9 mid-remove, a lost namespace): their leases keep networks in use.
      await withEngine(ctx, ({ engine }) => engine.reconcileNetworking());
      await withNetworks(ctx, (s) => {
        const gone = s.prune();
        if (gone.length > 0) ctx.out.write(`Deleted Networks:\n${gone.map((n) => `${n.name}\n`).join('')}`);
      });
    });
}

/** docker's repeatable `--subnet`/`--gateway`: at most one value per address family. */
function byFamily(values: readonly string[], flag: string): { v4?: string; v6?: string } {
  const out: { v4?: string; v6?: string } = {};
  for (const v of values) {
    const key = isIPv6Text(v) ? 'v6' : 'v4';
    if (out[key] !== undefined) throw new BerthError('usage', `${flag} given twice for IPv${key === 'v6' ? 6 : 4} (${out[key]}, ${v}): one per address family`);
    out[key] = v;
  }
  return out;
}
