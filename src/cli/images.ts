import type { Command } from 'commander';
import type { ImageService } from '../image/service.js';
import type { CliContext } from './context.js';
import { withCliRoot } from './engine.js';
import { formatBytes, printJson, table } from './format.js';

async function withImages<T>(ctx: CliContext, fn: (images: ImageService) => T): Promise<T> {
  return withCliRoot(ctx, (root) => fn(root.images()));
}

function listAction(context: () => CliContext) {
  return async (opts: { json?: boolean }): Promise<void> => {
    const ctx = context();
    const list = await withImages(ctx, (images) => images.list());
    if (opts.json) return printJson(ctx.out, list);
    ctx.out.write(table([['NAME', 'PLATFORM', 'DIGEST', 'SIZE', 'PULLED'], ...list.map((i) => [i.name, i.platform, i.manifestDigest.slice(7, 19), formatBytes(i.size), new Date(i.pulledAt).toISOString().slice(0, 19).replace('T', ' ')])]));
  };
}

function rmiAction(context: () => CliContext) {
  return async (refs: string[]): Promise<void> => {
    const ctx = context();
    await withImages(ctx, (images) => {
      for (const ref of refs) {
        const r = images.remove(ref);
        ctx.out.write(`removed ${r.name} (${r.blobs} blobs, ${r.snapshots} snapshots, ${formatBytes(r.bytes)} of blobs freed)\n`);
      }
    });
  };
}

function tagAction(context: () => CliContext) {
  return async (source: string, target: string): Promise<void> => {
    await withImages(context(), (images) => images.tag(source, target));
  };
}

export function registerImages(program: Command, context: () => CliContext): void {
  program.command('images').description('list pulled images').option('--json', 'print as JSON').action(listAction(context));
  program.command('rmi').description('remove images, and the layers no other image uses').argument('<ref...>').action(rmiAction(context));

  const image = program.command('image').description('manage images');
  image.command('ls').description('list pulled images').option('--json', 'print as JSON').action(listAction(context));
  image.command('rm').description('remove images').argument('<ref...>').action(rmiAction(context));
  image
    .command('inspect')
    .description('show an image as JSON: platform, digests, layers, config')
    .argument('<ref>')
    .action(async (ref: string) => {
      const ctx = context();
      printJson(ctx.out, await withImages(ctx, (images) => images.inspect(ref)));
    });
  image
    .command('tag')
    .description('give an image another name (SOURCE and TARGET are references; the content is shared)')
    .argument('<source>')
    .argument('<target>')
    .action(tagAction(context));
  program.command('tag').description('give an image another name (same as image tag)').argument('<source>').argument('<target>').action(tagAction(context));
  image
    .command('prune')
    .description('remove blobs and snapshots no image references, and stale partial downloads')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const ctx = context();
      const r = await withImages(ctx, (images) => images.prune());
      if (opts.json) printJson(ctx.out, r);
      else ctx.out.write(`removed ${r.blobs} blobs, ${r.snapshots} snapshots, ${r.partials} partial downloads (${formatBytes(r.bytes)} of blobs)\n`);
    });
}
