import type { Command } from 'commander';
import { parseLabel } from '../runtime/options.js';
import type { Volumes } from '../runtime/volumes.js';
import type { CliContext } from './context.js';
import { withCliRoot } from './engine.js';
import { formatBytes, printJson, table } from './format.js';

const collect = (v: string, acc: string[]): string[] => [...acc, v];

async function withVolumes<T>(ctx: CliContext, fn: (v: Volumes) => T): Promise<T> {
  return withCliRoot(ctx, async (root) => fn(await root.volumes()));
}

export function registerVolume(program: Command, context: () => CliContext): void {
  const volume = program.command('volume').description('manage named volumes (<root>/volumes/NAME/_data)');
  volume
    .command('create')
    .description('create a volume (a name that exists is left as it is)')
    .option('-l, --label <K=V>', 'set a label (repeatable)', collect, [])
    .argument('<name>')
    .action(async (name: string, opts: { label: string[] }) => {
      const ctx = context();
      await withVolumes(ctx, (v) => v.create(name, Object.fromEntries(opts.label.map(parseLabel))));
      ctx.out.write(`${name}\n`);
    });
  volume
    .command('ls')
    .description('list volumes')
    .option('-q, --quiet', 'names only')
    .option('--json', 'print as JSON')
    .action(async (opts: { quiet?: boolean; json?: boolean }) => {
      const ctx = context();
      const list = await withVolumes(ctx, (v) => v.list());
      if (opts.json) return printJson(ctx.out, list);
      if (opts.quiet) return void ctx.out.write(list.map((v) => `${v.Name}\n`).join(''));
      ctx.out.write(table([['DRIVER', 'VOLUME NAME'], ...list.map((v) => [v.Driver, v.Name])]));
    });
  volume
    .command('inspect')
    .description('show volumes as JSON')
    .argument('<name...>')
    .action(async (names: string[]) => {
      const ctx = context();
      printJson(ctx.out, await withVolumes(ctx, (v) => names.map((n) => v.inspect(n))));
    });
  volume
    .command('rm')
    .description('remove volumes no container uses')
    .option('-f, --force', 'accepted for docker compatibility: a volume in use is still refused')
    .argument('<name...>')
    .action(async (names: string[]) => {
      const ctx = context();
      await withVolumes(ctx, (v) => {
        for (const n of names) {
          v.remove(n);
          ctx.out.write(`${n}\n`);
        }
      });
    });
  volume
    .command('prune')
    .description('remove every volume no container uses')
    .option('-a, --all', 'accepted for docker compatibility: berth has no anonymous volumes, every unused one goes')
    .option('-f, --force', 'do not prompt (berth never prompts)')
    .action(async () => {
      const ctx = context();
      const r = await withVolumes(ctx, (v) => v.prune());
      ctx.out.write(`${r.removed.length > 0 ? `Deleted Volumes:\n${r.removed.map((n) => `${n}\n`).join('')}\n` : ''}Total reclaimed space: ${formatBytes(r.bytes)}\n`);
    });
}
