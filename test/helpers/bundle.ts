// A minimal OCI runtime bundle for tests that run real containers: a rootfs holding the static busybox
// of the host's architecture plus applet symlinks, and the config.json that `runc spec` generates,
// edited for a non-terminal process with the given args.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { busyboxPath, type TestArch } from './images/busybox.js';

const run = promisify(execFile);

export const BUNDLE_APPLETS = ['sh', 'echo', 'sleep', 'cat', 'true', 'false', 'yes', 'head', 'tr', 'kill'] as const;

export interface Bundle {
  /** Absolute bundle directory (config.json + rootfs/). */
  dir: string;
  cleanup(): Promise<void>;
}

export interface BundleOptions {
  /** process.env entries (default PATH and TERM from `runc spec`). */
  env?: string[];
  /** Edits the parsed config.json before it is written. */
  edit?: (config: OciConfig) => void;
}

/** The parts of an OCI runtime config the tests touch; the rest passes through untouched. */
export interface OciConfig {
  process: { terminal: boolean; args: string[]; env: string[]; cwd: string; [k: string]: unknown };
  root: { path: string; readonly: boolean };
  [k: string]: unknown;
}

export function hostTestArch(): TestArch {
  switch (process.arch) {
    case 'x64':
      return 'amd64';
    case 'arm64':
      return 'arm64';
    case 'arm':
      return 'armhf';
    default:
      throw new Error(`no busybox test binary for ${process.arch}`);
  }
}

/** Builds a bundle in a new temp dir whose container runs `args` (resolved against /bin). */
export async function makeBundle(args: string[], opts: BundleOptions = {}): Promise<Bundle> {
  const dir = await mkdtemp(join(os.tmpdir(), 'berth-bundle-'));
  try {
    const rootfs = join(dir, 'rootfs');
    for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'etc']) await mkdir(join(rootfs, d), { recursive: true });
    await copyFile(await busyboxPath(hostTestArch()), join(rootfs, 'bin/busybox'));
    for (const a of BUNDLE_APPLETS) await symlink('busybox', join(rootfs, 'bin', a));
    await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    await run('runc', ['spec', '--bundle', dir]);
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as OciConfig;
    config.process.terminal = false;
    config.process.args = args;
    if (opts.env) config.process.env = opts.env;
    config.root = { path: 'rootfs', readonly: true };
    opts.edit?.(config);
    await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
