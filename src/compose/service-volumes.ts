import crypto from 'node:crypto';
import path from 'node:path';
import { parseTmpfs, parseVolume, validateContainerPath, type InlineFile, type RunOptions, type TmpfsMount, type VolumeMount } from '../runtime/options.js';
import type { FileRefSpec, ServiceSpec, VolumeMountSpec } from '../protocol/types.js';
import type { AppFile, ServiceContext } from './model.js';
import { atKey, invalidAt, keyPath } from './service-key.js';

/**
 * A service's storage keys → RunOptions mounts: `volumes` (short and long syntax), `tmpfs`, and the
 * `configs`/`secrets` it uses (files the engine writes and binds read-only). Named volumes resolve
 * through the app's top-level volumes (ServiceContext.volumes); relative bind sources through its data
 * directory (ServiceContext.dataDir).
 */

type Storage = Pick<RunOptions, 'volumes' | 'tmpfs' | 'files'>;
type Mount = { readonly volume: VolumeMount } | { readonly tmpfs: TmpfsMount };

/**
 * A relative host path (`./data`, `../shared`) still relative in a desired state: under the app's data
 * directory, and never outside it, so a fleet file cannot name an arbitrary host path by accident.
 */
function underDataDir(source: string, ctx: ServiceContext, at: string): string {
  if (source.startsWith('~')) throw invalidAt(at, `"${source}": a home-relative host path means nothing on the device; give an absolute path or a relative one (under the app's data directory)`);
  if (ctx.dataDir === '') throw invalidAt(at, `"${source}" is relative and this app has no data directory to resolve it under; give an absolute path`);
  const resolved = path.resolve(ctx.dataDir, source);
  if (resolved !== ctx.dataDir && !resolved.startsWith(`${ctx.dataDir}/`)) throw invalidAt(at, `"${source}" leaves the app's data directory ${ctx.dataDir}`);
  return resolved;
}

const isRelative = (source: string): boolean => source.startsWith('.') || source.startsWith('~');

/** An anonymous volume (`- /data`) as a named one of the app's, stable per service and target, so it outlives a recreated container as compose's does. */
const anonymousVolume = (service: string, target: string, ctx: ServiceContext): string =>
  `${ctx.app}_${service}_${crypto.createHash('sha256').update(target).digest('hex').slice(0, 12)}`;

/**
 * A `volume` mount of key `m.source` → the app's volume: its host name, or the bind/tmpfs its local
 * driver_opts describe. A name the app does not declare is berth's own volume of that name (desired
 * states named volumes directly before top-level `volumes:` existed).
 */
function namedVolume(m: VolumeMount, ctx: ServiceContext, at: string): Mount {
  const v = ctx.volumes.get(m.source);
  if (v === undefined) return { volume: m };
  const { type, o, device } = v.driverOpts;
  if (type === undefined && o === undefined && device === undefined) return { volume: { ...m, source: v.hostName } };
  if (type === 'tmpfs') return { tmpfs: parseTmpfs(`${m.target}${o ? `:${o}` : ''}`, `${at}: volume ${v.name}'s driver_opts`) };
  const bind = (o ?? '').split(',').includes('bind');
  if (bind && device !== undefined) {
    const source = isRelative(device) ? underDataDir(device, ctx, at) : device;
    return { volume: { ...atKey(at, () => parseVolume(`${source}:${m.target}`)), readOnly: m.readOnly, ...(m.propagation && { propagation: m.propagation }) } };
  }
  throw invalidAt(at, `volume ${v.name} has driver_opts berth cannot mount (type ${type ?? 'unset'}, o ${o ?? 'unset'})`, 'berth mounts local volumes, binds (type: none, o: bind, device: PATH) and tmpfs (type: tmpfs)');
}

function shortVolume(text: string, service: string, ctx: ServiceContext, at: string): Mount {
  const colon = text.indexOf(':');
  if (colon < 0) {
    const target = validateContainerPath(text, at);
    return { volume: { source: anonymousVolume(service, target, ctx), target, readOnly: false, kind: 'volume' } };
  }
  const source = text.slice(0, colon);
  const m = atKey(at, () => parseVolume(`${isRelative(source) ? underDataDir(source, ctx, at) : source}${text.slice(colon)}`));
  // docker-compose's short syntax creates a missing host directory (long syntax: bind.create_host_path).
  return m.kind === 'bind' ? { volume: { ...m, createHostPath: true } } : namedVolume(m, ctx, at);
}

/** compose writes tmpfs modes as octal text ("1777") or as the number a YAML reader made of them. */
const octal = (mode: string | number): string => (typeof mode === 'number' ? mode.toString(8) : mode);

function longVolume(v: VolumeMountSpec, service: string, ctx: ServiceContext, at: string): Mount {
  const target = validateContainerPath(v.target, at);
  const readOnly = v.read_only === true;
  if (v.type === 'tmpfs') {
    if (v.source !== undefined) throw invalidAt(at, 'a tmpfs mount has no source');
    const opts = [...(v.tmpfs?.size !== undefined ? [`size=${v.tmpfs.size}`] : []), ...(v.tmpfs?.mode !== undefined ? [`mode=${octal(v.tmpfs.mode)}`] : []), ...(readOnly ? ['ro'] : [])];
    return { tmpfs: parseTmpfs(`${target}${opts.length > 0 ? `:${opts.join(',')}` : ''}`, at) };
  }
  if (v.type === 'bind') {
    if (v.source === undefined) throw invalidAt(at, 'a bind mount needs a source');
    const source = isRelative(v.source) ? underDataDir(v.source, ctx, at) : v.source;
    const m = atKey(at, () => parseVolume(`${source}:${target}`));
    if (m.kind !== 'bind') throw invalidAt(at, `bind source "${v.source}" is not a host path`);
    return { volume: { ...m, readOnly, ...(v.bind?.propagation && { propagation: v.bind.propagation as VolumeMount['propagation'] }), ...(v.bind?.create_host_path === true && { createHostPath: true }) } };
  }
  // type volume; volume.nocopy asks for what berth does anyway (it never copies image content into a volume).
  if (v.source === undefined) return { volume: { source: anonymousVolume(service, target, ctx), target, readOnly, kind: 'volume' } };
  const m = atKey(at, () => parseVolume(`${v.source}:${target}`));
  if (m.kind !== 'volume') throw invalidAt(at, `volume source "${v.source}" is a host path; use type: bind`);
  return namedVolume({ ...m, readOnly }, ctx, at);
}

/** compose's file modes: octal text ("0440") or the number a YAML reader made of one. */
const fileMode = (mode: string | number): number => (typeof mode === 'number' ? mode : parseInt(mode, 8));

/** `configs:`/`secrets:` entries → files the engine writes; targets default to `/<name>` and `/run/secrets/<name>`. */
function files(refs: readonly (string | FileRefSpec)[] | undefined, declared: ReadonlyMap<string, AppFile>, kind: 'config' | 'secret', at: string): InlineFile[] {
  return (refs ?? []).map((r) => {
    const ref: FileRefSpec = typeof r === 'string' ? { source: r } : r;
    const file = declared.get(ref.source);
    if (file === undefined) throw invalidAt(at, `${kind} "${ref.source}" is not declared under the top-level ${kind}s:`);
    const dir = kind === 'secret' ? '/run/secrets' : '/';
    const target = validateContainerPath(ref.target === undefined ? path.posix.join(dir, ref.source) : path.posix.resolve(dir, ref.target), at);
    return {
      target, content: file.content,
      ...(ref.mode !== undefined && { mode: fileMode(ref.mode) }),
      ...(ref.uid !== undefined && { uid: Number(ref.uid) }),
      ...(ref.gid !== undefined && { gid: Number(ref.gid) }),
    };
  });
}

export function serviceStorage(service: string, svc: ServiceSpec, ctx: ServiceContext): Storage {
  const at = keyPath(service, 'volumes');
  const mounts = (svc.volumes ?? []).map((v) => (typeof v === 'string' ? shortVolume(v, service, ctx, at) : longVolume(v, service, ctx, at)));
  const tmpfsKey = svc.tmpfs === undefined ? [] : typeof svc.tmpfs === 'string' ? [svc.tmpfs] : svc.tmpfs;
  const configFiles = [...files(svc.configs, ctx.configs, 'config', keyPath(service, 'configs')), ...files(svc.secrets, ctx.secrets, 'secret', keyPath(service, 'secrets'))];
  return {
    volumes: mounts.flatMap((m) => ('volume' in m ? [m.volume] : [])),
    tmpfs: [...mounts.flatMap((m) => ('tmpfs' in m ? [m.tmpfs] : [])), ...tmpfsKey.map((t) => parseTmpfs(t, keyPath(service, 'tmpfs')))],
    ...(configFiles.length > 0 && { files: configFiles }),
  };
}
