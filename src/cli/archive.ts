import type { Command } from 'commander';
import fs from 'node:fs';
import { BerthError } from '../errors.js';
import type { ArchiveFormat } from '../image/archive/format.js';
import { parsePlatform } from '../image/platform.js';
import type { CliContext } from './context.js';
import { withCliRoot } from './engine.js';

interface SaveFlags {
  output?: string;
  format: string;
}

function saveAction(context: () => CliContext) {
  return async (refs: string[], flags: SaveFlags): Promise<void> => {
    const ctx = context();
    if (flags.format !== 'docker' && flags.format !== 'oci') throw new BerthError('usage', `--format: "${flags.format}" is not docker or oci`);
    if (flags.output === undefined && process.stdout.isTTY) throw new BerthError('usage', 'refusing to write an archive to a terminal', { hint: 'use -o FILE or redirect stdout' });
    await withCliRoot(ctx, async (root) => {
      // Written beside the target and renamed at the end: an interrupted save leaves no half archive under the name.
      const tmp = flags.output === undefined ? undefined : `${flags.output}.partial`;
      const out = tmp === undefined ? process.stdout : fs.createWriteStream(tmp, { mode: 0o644 });
      try {
        await root.images().save(refs, flags.format as ArchiveFormat, out);
        if (tmp !== undefined) fs.renameSync(tmp, flags.output!);
      } catch (err) {
        if (tmp !== undefined) fs.rmSync(tmp, { force: true });
        throw err;
      }
    });
  };
}

function loadAction(context: () => CliContext) {
  return async (flags: { input?: string; quiet?: boolean; platform?: string }): Promise<void> => {
    const ctx = context();
    if (flags.input === undefined && process.stdin.isTTY) throw new BerthError('usage', 'load reads an archive: give -i FILE or pipe one in');
    if (flags.input !== undefined && !fs.existsSync(flags.input)) throw new BerthError('notFound', `-i: no such file: ${flags.input}`);
    const names = await withCliRoot(ctx, (root) => {
      const platforms = flags.platform !== undefined ? [parsePlatform(flags.platform)] : root.board().platforms.map(parsePlatform);
      return root.images().load(flags.input === undefined ? process.stdin : fs.createReadStream(flags.input), platforms);
    });
    if (!flags.quiet) for (const n of names) ctx.out.write(`Loaded image: ${n}\n`);
  };
}

/** berth save / load (and image save / image load): offline images, docker's flags. */
export function registerArchive(program: Command, context: () => CliContext): void {
  const image = program.commands.find((c) => c.name() === 'image');
  for (const parent of [program, ...(image ? [image] : [])]) {
    parent
      .command('save')
      .description('write images to a tar archive (docker-archive, readable by docker/podman load; --format oci: an OCI image layout)')
      .option('-o, --output <file>', 'write to a file instead of stdout')
      .option('--format <format>', 'docker or oci', 'docker')
      .argument('<image...>')
      .action(saveAction(context));
    parent
      .command('load')
      .description('load images from a docker-archive or OCI layout tar (digests verified, no registry needed)')
      .option('-i, --input <file>', 'read from a file instead of stdin')
      .option('-q, --quiet', 'print nothing')
      .option('--platform <os/arch[/variant]>', "the platform to take from a multi-platform archive (default: the board's)")
      .action(loadAction(context));
  }
}
