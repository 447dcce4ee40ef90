import fs from 'node:fs';
import path from 'node:path';
import { isErrno } from '../errors.js';
import { SECCOMP_ANNOTATION } from './spec/build.js';
import type { SeccompSummary } from './spec/seccomp.js';
import type { OciSpec } from './spec/types.js';

/**
 * The confinement a container runs under, for `berth inspect`'s `Security`: read back from its spec
 * (config.json, what the runtime enforces), not recomputed from its options.
 */
export interface SecurityView {
  readonly Seccomp: SeccompSummary & { readonly Rules?: number; readonly DefaultAction?: string; readonly Architectures?: readonly string[] };
  readonly AppArmorProfile: string;
  readonly NoNewPrivileges: boolean;
  readonly OomScoreAdj: number;
  /** Who enforces the device rules on this host (OciRuntime.devices.note). */
  readonly Devices: string;
  /** How `:ro` binds are read-only; absent when there are none. */
  readonly ReadOnlyBinds?: string;
}

/** The view of the spec in `bundle`; undefined when the bundle has no spec (never created on this host). */
export function securityView(bundle: string, devicesNote: string): SecurityView | undefined {
  let spec: OciSpec;
  try {
    spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as OciSpec;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  const annotated = spec.annotations?.[SECCOMP_ANNOTATION];
  const filter = spec.linux.seccomp;
  // Specs from before the filter have no annotation: what is in force is then read from the spec alone.
  const summary: SeccompSummary = annotated !== undefined ? (JSON.parse(annotated) as SeccompSummary) : { mode: filter ? 'filter' : 'unconfined' };
  const roBinds = spec.mounts.filter((m) => m.type === 'bind' && (m.options.includes('ro') || m.options.includes('rro')) && m.destination !== '/sbin/docker-init');
  return {
    Seccomp: { ...summary, ...(filter && { Rules: filter.syscalls.length, DefaultAction: filter.defaultAction, Architectures: filter.architectures }) },
    AppArmorProfile: spec.process.apparmorProfile ?? '',
    NoNewPrivileges: spec.process.noNewPrivileges,
    OomScoreAdj: spec.process.oomScoreAdj ?? 0,
    Devices: devicesNote,
    ...(roBinds.length > 0 && {
      ReadOnlyBinds: roBinds.every((m) => m.options.includes('rro'))
        ? 'recursive (rro: mounts below each source are read-only too)'
        : 'top mount only: this kernel lacks mount_setattr (Linux 5.12+), so mounts below a :ro source stay as writable as on the host',
    }),
  };
}
