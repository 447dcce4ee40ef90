import fs from 'node:fs';
import path from 'node:path';
import { versionOf, which } from '../host/which.js';
import { OCI_RUNTIMES } from '../runtime/oci-runtime.js';
import type { Check } from './types.js';

export const runtimeCheck: Check = (ctx) => {
  const title = 'OCI runtime';
  const found = OCI_RUNTIMES.flatMap((name) => {
    const exe = which(name, ctx.searchPath);
    return exe ? [{ name, exe, version: versionOf(exe) }] : [];
  });
  const usable = found.filter((r) => r.version !== undefined);
  const describe = (r: (typeof found)[number]): string => `${r.name} at ${r.exe} (${r.version ?? 'does not run'})`;
  if (usable.some((r) => r.name === 'crun')) return { id: 'runtime', title, status: 'ok', detail: found.map(describe).join('; ') };
  if (usable.length > 0) {
    return {
      id: 'runtime', title, status: 'warn',
      detail: `${found.map(describe).join('; ')}; crun is preferred (about a third of runc's memory per container, faster starts)`,
      fix: 'apt-get install crun',
    };
  }
  return {
    id: 'runtime', title, status: 'fail',
    detail: found.length > 0 ? `found but not working: ${found.map(describe).join('; ')}` : 'neither crun nor runc is installed',
    fix: 'apt-get install crun',
  };
};

const MiB = 1024 * 1024;
const FAIL_FREE = 256 * MiB;
const WARN_FREE = 1024 * MiB;

/** Free space where images and containers will live: the state root, or the directory that will hold it. */
export const diskCheck: Check = (ctx) => {
  const title = 'free disk at the state root';
  let dir = path.resolve(ctx.root);
  while (!fs.existsSync(dir) && dir !== path.dirname(dir)) dir = path.dirname(dir);
  let st: fs.StatsFs;
  try {
    st = fs.statfsSync(dir);
  } catch (err) {
    return { id: 'disk', title, status: 'fail', detail: `cannot stat ${dir}: ${(err as Error).message}` };
  }
  const free = st.bavail * st.bsize;
  const where = dir === path.resolve(ctx.root) ? ctx.root : `${dir} (will hold ${ctx.root})`;
  const detail = `${(free / MiB).toFixed(0)} MiB free at ${where}, ${st.ffree} inodes free`;
  if (free < FAIL_FREE) return { id: 'disk', title, status: 'fail', detail, fix: `free at least ${FAIL_FREE / MiB} MiB (berth image prune, or remove other files)` };
  if (free < WARN_FREE || st.ffree < 10_000) return { id: 'disk', title, status: 'warn', detail, fix: 'keep at least 1 GiB and 10,000 inodes free so pulls do not fail midway' };
  return { id: 'disk', title, status: 'ok', detail };
};

export const nodeCheck: Check = () => {
  const title = 'Node.js';
  const version = process.versions.node;
  const major = Number(version.split('.')[0]);
  if (major < 20) return { id: 'node', title, status: 'fail', detail: `Node ${version} is too old; berth needs 20 or newer`, fix: 'install Node 22 LTS' };
  if (major < 22) {
    return { id: 'node', title, status: 'warn', detail: `Node ${version} works, but Node 20 is out of support since April 2026`, fix: 'install Node 22 LTS' };
  }
  return { id: 'node', title, status: 'ok', detail: `Node ${version}` };
};

export const privilegesCheck: Check = () => {
  const title = 'privileges';
  const uid = process.getuid?.();
  if (uid === 0) return { id: 'privileges', title, status: 'ok', detail: 'running as root' };
  return { id: 'privileges', title, status: 'warn', detail: `running as uid ${uid ?? 'unknown'}: creating containers needs root`, fix: 'run berth as root (the systemd unit does)' };
};
