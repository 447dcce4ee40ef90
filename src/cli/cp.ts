import type { Command } from 'commander';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError } from '../errors.js';
import type { CliContext } from './context.js';
import { withEngine } from './engine.js';

/** docker cp's operand: `CONTAINER:PATH` when a colon comes before any slash, else a local path (`-`: a tar on stdin/stdout). */
function operand(text: string): { container?: string; path: string } {
  const colon = text.indexOf(':');
  const slash = text.indexOf('/');
  if (colon > 0 && (slash < 0 || colon < slash)) return { container: text.slice(0, colon), path: text.slice(colon + 1) || '/' };
  return { path: text };
}

export function registerCp(program: Command, context: () => CliContext): void {
  program
    .command('cp')
    .description('copy files between a container (running or not) and the host (CONTAINER:PATH; - for a tar stream on stdin/stdout)')
    .argument('<src>')
    .argument('<dest>')
    .option('-a, --archive', 'keep owners (uid/gid) as they are')
    .option('-L, --follow-link', 'copy what a source symlink points to')
    .action(async (srcText: string, destText: string, flags: { archive?: boolean; followLink?: boolean }) => {
      const src = operand(srcText);
      const dest = operand(destText);
      if ((src.container === undefined) === (dest.container === undefined)) {
        throw new BerthError('usage', 'cp copies between a container and the host: exactly one of SRC and DEST must be CONTAINER:PATH');
      }
      const keepOwner = flags.archive === true;
      // On use: the copy code brings tar-stream, which only cp and pull need (every verb loads this file).
      const { archiveFrom, archiveTop, extractTo } = await import('../runtime/cp/copy.js');
      await withEngine(context(), async ({ engine }) => {
        // Running or not (docker cp works on stopped containers too): see openRoot.
        const root = engine.openRoot((src.container ?? dest.container)!);
        try {
          if (src.container !== undefined) {
            const archive = archiveFrom(root.path, src.path, flags.followLink);
            if (dest.path === '-') return await pipeline(archive, process.stdout);
            // Out of the container: written as this user unless -a.
            await extractTo('/', dest.path, archive, { keepOwner, owner: { uid: process.getuid!(), gid: process.getgid!() }, top: archiveTop(src.path) });
            return;
          }
          const fromStdin = src.path === '-';
          const archive: Readable = fromStdin ? process.stdin : archiveFrom('/', src.path, flags.followLink);
          // Into the container: owned by its root unless -a (docker).
          await extractTo(root.path, dest.path, archive, { keepOwner, owner: { uid: 0, gid: 0 }, ...(!fromStdin && { top: archiveTop(src.path) }) });
        } finally {
          root.close();
        }
      });
    });
}
