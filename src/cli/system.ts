import type { Command } from 'commander';
import { diskUsage, systemPrune, type SystemParts } from '../runtime/system.js';
import type { CliContext } from './context.js';
import { withCliRoot } from './engine.js';
import { formatBytes, printJson, table } from './format.js';

async function withSystem<T>(ctx: CliContext, fn: (p: SystemParts) => Promise<T> | T): Promise<T> {
  return withCliRoot(ctx, async (root) => {
    const [engine, volumes, networks] = await Promise.all([root.engine(), root.volumes(), root.networks()]);
    return fn({ root: ctx.root, engine, images: root.images(), volumes, networks });
  });
}

const percent = (part: number, whole: number): string => `${formatBytes(part)} (${whole === 0 ? 0 : Math.round((part / whole) * 100)}%)`;

export function registerSystem(program: Command, context: () => CliContext): void {
  const system = program.command('system').description('disk usage and clean-up of the whole state root');
  system
    .command('df')
    .description('disk used by images, containers and volumes, and how much could be reclaimed')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const ctx = context();
      const rows = await withSystem(ctx, diskUsage);
      if (opts.json) return printJson(ctx.out, rows);
      ctx.out.write(table([['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], ...rows.map((r) => [r.type, String(r.total), String(r.active), formatBytes(r.size), percent(r.reclaimable, r.size)])]));
    });
  system
    .command('prune')
    .description('remove stopped containers, unused networks and unreferenced image data (-a: unused images, --volumes: unused volumes)')
    .option('-a, --all', 'also remove every image no container uses')
    .option('--volumes', 'also remove every volume no container uses')
    .option('-f, --force', 'do not prompt (berth never prompts)')
    .option('--json', 'print as JSON')
    .action(async (opts: { all?: boolean; volumes?: boolean; json?: boolean }) => {
      const ctx = context();
      const r = await withSystem(ctx, (p) => systemPrune(p, { ...(opts.all && { allImages: true }), ...(opts.volumes && { volumes: true }) }));
      if (opts.json) return printJson(ctx.out, r);
      const section = (title: string, names: readonly string[]): string => (names.length > 0 ? `${title}:\n${names.map((n) => `${n}\n`).join('')}\n` : '');
      ctx.out.write(`${section('Deleted Containers', r.containers)}${section('Deleted Networks', r.networks)}${section('Deleted Images', r.images)}${section('Deleted Volumes', r.volumes)}Total reclaimed space: ${formatBytes(r.bytes)}\n`);
    });
}
