import fs from 'node:fs';
import readline from 'node:readline/promises';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { BerthError } from '../errors.js';
import type { BundleArch } from '../flash/elf.js';
import type { FlashSource } from '../flash/flash.js';
import { packageVersion, type CliContext } from './context.js';

interface FlashFlags {
  fleet: string;
  id?: string;
  ids?: string;
  out?: string;
  outDir?: string;
  device?: string;
  bundle?: string;
  buildBundle?: boolean;
  preload?: string;
  armv6?: boolean;
}

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function registerFlash(program: Command, context: () => CliContext): void {
  program
    .command('flash')
    .description('provision a Raspberry Pi OS image (.img or .img.xz) for fleet devices: agent bundle, config, credentials, systemd unit')
    .argument('<image>', 'Raspberry Pi OS image; never modified')
    .requiredOption('--fleet <file>', 'fleet file: broker, credentials directory, CA, SSH key (README "Flashing a fleet")')
    .option('--id <device-id>', 'one device')
    .option('--ids <csv>', 'many devices: first column of a CSV file')
    .option('--out <file>', 'write the image for --id to this file')
    .option('--out-dir <dir>', 'write <dir>/<id>.img for each device of --ids')
    .option('--device <disk>', 'write to a whole disk (/dev/sdX), card after card for --ids, verified')
    .option('--bundle <dir>', 'agent bundle for the image\'s architecture')
    .option('--build-bundle', 'build the agent bundle for the image\'s architecture from this checkout (cached in .cache/bundle)')
    .option('--preload <app>', 'compose file (or desired-state JSON) whose images for the card\'s architecture are pulled now and put on the card: the board runs the app on first boot, with no network, until the fleet deploys')
    .option('--armv6', 'with --build-bundle: the cards go into ARMv6 boards (Pi Zero, Zero W, Pi 1): the armv6 bundle for a 32-bit image')
    .action(async (image: string, opts: FlashFlags) => {
      const ctx = context();
      // Imported on use: every verb loads this file, and flash's modules (fleet-file and agent-config
      // validators, image and ext4 code) are ~200 KiB that only `flash` runs.
      const [{ buildBundle }, { loadFleet, parseDeviceCsv }, { flashDevices, flashImages }] = await Promise.all([
        import('../flash/bundle.js'), import('../flash/fleet.js'), import('../flash/flash.js'),
      ]);
      const ids = flashIds(opts, parseDeviceCsv);
      const targets = [opts.out, opts.outDir, opts.device].filter((t) => t !== undefined).length;
      if (targets !== 1) throw new BerthError('usage', 'give exactly one of --out FILE, --out-dir DIR or --device DISK');
      if (opts.out !== undefined && opts.id === undefined) throw new BerthError('usage', '--out writes one image: use it with --id (--out-dir for --ids)');
      if (opts.outDir !== undefined && opts.ids === undefined) throw new BerthError('usage', '--out-dir is for --ids (--out FILE for --id)');
      if ((opts.bundle === undefined) === (opts.buildBundle !== true)) throw new BerthError('usage', 'give --bundle DIR or --build-bundle');
      const log = (line: string): void => void process.stderr.write(`berth flash: ${line}\n`);
      const bundleFor = opts.bundle !== undefined
        ? (): Promise<string> => Promise.resolve(opts.bundle!)
        // An armhf image cannot tell a Zero W from a Pi 3 (Raspberry Pi OS's 32-bit userland is ARMv6): the operator says.
        : (arch: BundleArch): Promise<string> => buildBundle({ arch: opts.armv6 === true && arch === 'arm' ? 'armv6' : arch, packageRoot: PACKAGE_ROOT, log });
      const src: FlashSource = { image, fleet: await loadFleet(opts.fleet), bundleFor, log, ...(opts.preload !== undefined && { preload: await preloadFor(ctx, opts.preload, log) }) };
      const done = opts.device !== undefined
        ? await flashDevices(src, ids, { device: opts.device, nextCard: promptForCard(opts.device) })
        : await flashImages(src, ids, (id) => opts.out ?? `${opts.outDir}/${id}.img`);
      for (const d of done) ctx.out.write(`${d.id}\t${d.target}\t${d.credentials}\n`);
    });
}

/** --preload: the app is read and checked before anything is written; its images are pulled once the card's architecture is known. */
async function preloadFor(ctx: CliContext, file: string, log: (line: string) => void): Promise<NonNullable<FlashSource['preload']>> {
  const [{ cardPlatforms, preparePreload, readPreloadApp }, { loadProfiles }] = await Promise.all([import('../flash/preload.js'), import('../board/profiles.js')]);
  const app = await readPreloadApp(file, ctx.env, (m) => log(`warning: ${m}`));
  return (arch) => preparePreload({ app, access: { root: ctx.root, env: ctx.env }, host: ctx.host, version: packageVersion(), log }, cardPlatforms(arch, loadProfiles(ctx.profilesDir)));
}

function flashIds(opts: FlashFlags, parseDeviceCsv: typeof import('../flash/fleet.js').parseDeviceCsv): string[] {
  if ((opts.id === undefined) === (opts.ids === undefined)) throw new BerthError('usage', 'give --id DEVICE_ID or --ids FILE.csv');
  if (opts.id !== undefined) return [opts.id];
  let text: string;
  try {
    text = fs.readFileSync(opts.ids!, 'utf8');
  } catch (err) {
    throw new BerthError('notFound', `cannot read --ids ${opts.ids}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  return parseDeviceCsv(text, opts.ids);
}

function promptForCard(device: string): (id: string) => Promise<void> {
  return async (id) => {
    const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
    try {
      await rl.question(`insert the card for ${id} into ${device} and press Enter `);
    } finally {
      rl.close();
    }
  };
}
