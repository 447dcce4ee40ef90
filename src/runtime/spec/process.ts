import { BerthError } from '../../errors.js';
import type { Ulimit } from '../options.js';
import type { OciRlimit } from './types.js';

/** The image config's process fields (`ImageConfig.config`). */
export interface ImageProcessConfig {
  User?: string;
  Env?: readonly string[] | null;
  Entrypoint?: readonly string[] | null;
  Cmd?: readonly string[] | null;
  WorkingDir?: string;
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Docker's command line: `--entrypoint` replaces the image's Entrypoint and drops its Cmd; run arguments
 * replace the image's Cmd; the process is Entrypoint followed by Cmd. Nothing at all is `invalid`.
 */
export function mergeArgs(image: ImageProcessConfig | undefined, entrypoint: readonly string[] | undefined, cmd: readonly string[] | undefined): string[] {
  const ep = entrypoint ?? image?.Entrypoint ?? [];
  const args = cmd !== undefined && cmd.length > 0 ? cmd : entrypoint !== undefined ? [] : (image?.Cmd ?? []);
  const all = [...ep, ...args];
  if (all.length === 0 || all[0] === '') {
    throw new BerthError('invalid', 'no command specified: the image has neither Entrypoint nor Cmd', { hint: 'give a command after the image name, or --entrypoint' });
  }
  return all;
}

const keyOf = (e: string): string => {
  const i = e.indexOf('=');
  return i < 0 ? e : e.slice(0, i);
};

/** Replaces entries with the same key in place, appends new ones (Docker's ReplaceOrAppendEnvValues). */
export function replaceOrAppendEnv(base: readonly string[], over: readonly string[]): string[] {
  const out = [...base];
  const index = new Map(out.map((e, i) => [keyOf(e), i]));
  for (const e of over) {
    const i = index.get(keyOf(e));
    if (i === undefined) {
      index.set(keyOf(e), out.length);
      out.push(e);
    } else out[i] = e;
  }
  return out;
}

/**
 * Docker's environment: `PATH` (default) and `HOSTNAME` first, then the image's Env, then the run's
 * `-e` entries, a later key replacing an earlier one; `HOME` from the user's passwd entry when nothing
 * set it (runc and crun would do the same).
 */
export function mergeEnv(imageEnv: readonly string[] | null | undefined, runEnv: readonly string[], hostname: string, home: string): string[] {
  for (const e of runEnv) {
    if (!e.includes('=') || keyOf(e) === '') throw new BerthError('invalid', `invalid environment entry "${e}": expected KEY=VALUE`);
  }
  let env = replaceOrAppendEnv([`PATH=${DEFAULT_PATH}`, `HOSTNAME=${hostname}`], (imageEnv ?? []).filter((e) => keyOf(e) !== ''));
  env = replaceOrAppendEnv(env, runEnv);
  if (!env.some((e) => keyOf(e) === 'HOME')) env.push(`HOME=${home}`);
  return env;
}

/** RLIMIT_NOFILE soft limit, as Docker/containerd (select() and old programs break above 1024). */
export const NOFILE_SOFT = 1024;
/** RLIMIT_NOFILE hard limit: systemd's default, when the host allows it. */
export const NOFILE_HARD = 524288;

/**
 * The rlimits: `RLIMIT_NOFILE` 1024 soft / 524288 hard, then `--ulimit`s (same type replaces). Every
 * value is clamped to the host's hard limit for that type: without CAP_SYS_RESOURCE a runtime cannot
 * raise it, and runc/crun fail the start with EPERM when asked to.
 */
export function buildRlimits(ulimits: readonly Ulimit[] | undefined, hostHard: Readonly<Record<string, number>>): OciRlimit[] {
  const wanted = new Map<string, { soft: number; hard: number }>([['RLIMIT_NOFILE', { soft: NOFILE_SOFT, hard: NOFILE_HARD }]]);
  for (const u of ulimits ?? []) wanted.set(u.type, { soft: u.soft, hard: u.hard });
  return [...wanted].map(([type, w]) => {
    const cap = hostHard[type] ?? Infinity;
    const hard = Math.min(w.hard, cap);
    return { type, hard, soft: Math.min(w.soft, hard) };
  });
}
