import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build, type Plugin } from 'esbuild';
import { REPO } from '../dist.js';

/**
 * Prepares a VM run: bundles a guest script (TypeScript under test/vm/guest) into one ESM file the
 * guest's node runs without a loader, builds the static `hog` helper, and writes the shell script the
 * VM's init runs. The bundle lives in `.cache/vm/guest/` (the guest sees the host tree read-only), the
 * run's output in `outDir` (the writable share).
 */

/**
 * berth's own modules are not bundled: the guest imports the built `dist/` files, the code users run
 * (and their paths, e.g. to native/build/berth-monitor, stay right).
 */
const srcToDist: Plugin = {
  name: 'src-to-dist',
  setup(b) {
    const src = path.join(REPO, 'src') + path.sep;
    b.onResolve({ filter: /\/src\// }, (args) => {
      const abs = path.resolve(args.resolveDir, args.path);
      if (!abs.startsWith(src)) return undefined;
      return { path: path.join(REPO, 'dist', abs.slice(src.length)), external: true };
    });
  },
};

export interface GuestPrep {
  readonly script: string;
  readonly outDir: string;
}

export interface GuestOptions {
  /** Directory holding `<name>.ts`; default test/vm/guest. */
  readonly sourceDir?: string;
  /** C compiler for the static `hog`, for the guest's architecture; default the host's gcc. */
  readonly cc?: string;
}

export async function prepareGuest(name: string, outDir: string, env: Record<string, string> = {}, opts: GuestOptions = {}): Promise<GuestPrep> {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  // Three levels below the checkout, as test/helpers/images/ is: bundled helpers that find the cache
  // relative to their own module (import.meta.url) still land in the checkout's .cache/.
  const bundle = path.join(REPO, '.cache', 'vm', 'guest', `${name}.mjs`);
  await build({
    entryPoints: [path.join(opts.sourceDir ?? path.join(REPO, 'test', 'vm', 'guest'), `${name}.ts`)], bundle: true, platform: 'node', format: 'esm',
    target: 'node20', outfile: bundle, logLevel: 'error', plugins: [srcToDist],
    // CommonJS dependencies bundled into ESM still call require() for node builtins.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  execFileSync(opts.cc ?? 'gcc', ['-static', '-O2', '-o', path.join(outDir, 'hog'), path.join(REPO, 'test', 'vm', 'guest', 'hog.c')]);
  const vars = { VM_REPO: REPO.replace(/\/$/, ''), VM_OUT: outDir, BERTH_ROOT: '/var/lib/berth', ...env };
  const script = path.join(outDir, 'guest.sh');
  fs.writeFileSync(script, [
    'set -u',
    ...Object.entries(vars).map(([k, v]) => `export ${k}='${v}'`),
    `cd '${vars.VM_REPO}'`,
    `exec node '${bundle}'`,
    '',
  ].join('\n'));
  return { script, outDir };
}
