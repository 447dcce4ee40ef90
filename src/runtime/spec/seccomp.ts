import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../../errors.js';
import { writeFileAtomic } from '../../host/fsync.js';
import { applyParity } from './seccomp-parity.js';
import { convertProfile, seccompArch, validateProfile, type SeccompArch, type SeccompProfile } from './seccomp-profile.js';
import type { OciSeccomp } from './types.js';
import { DEFAULT_SECCOMP_CANDIDATES, findDefaultSeccompProfile, SECCOMP_PACKAGE } from '../seccomp-default.js';

export { DEFAULT_SECCOMP_PROFILE, SECCOMP_PACKAGE } from '../seccomp-default.js';

/** Which filter a container asked for: `--security-opt seccomp=…` (absent = the default profile). */
export type SeccompChoice = { readonly kind: 'default' } | { readonly kind: 'unconfined' } | { readonly kind: 'profile'; readonly path: string };

/** The filter in force, as `berth inspect` shows it (also kept in the spec's annotations). */
export interface SeccompSummary {
  readonly mode: 'filter' | 'unconfined';
  /** Host path of the profile the filter came from. */
  readonly profile?: string;
  /** sha256 of that file's bytes when the container was created. */
  readonly digest?: string;
  /** True for the default profile: podman's rules plus berth's Docker-parity denials (seccomp-parity.ts). */
  readonly dockerParity?: boolean;
  /** Why there is no filter (unconfined, privileged). */
  readonly reason?: string;
}

export interface SeccompResult {
  readonly filter?: OciSeccomp;
  readonly summary: SeccompSummary;
}

/** What the spec builder asks of seccomp: the filter for a choice and the container's capability set. */
export interface SeccompSource {
  resolve(choice: SeccompChoice, caps: readonly string[]): SeccompResult;
}

/**
 * Profiles are files of installed packages, like executables, so they are read at their real paths,
 * not through HostPaths (which redirects reads of kernel interfaces); tests give `defaultProfile`.
 */
export interface SeccompProfilesOptions {
  /** `uname -m` (os.machine()). */
  readonly machine: string;
  /** `uname -r` (os.release()): for the profile's minKernel conditions. */
  readonly kernel: string;
  /** Where the default profile may be, in order (default DEFAULT_SECCOMP_CANDIDATES: the system's, then the bundle's copy). */
  readonly defaultProfiles?: readonly string[];
  /**
   * Where converted filters are kept across processes (`<state root>/seccomp`): each `berth run` is a new
   * process, and converting podman's profile costs far more than reading the result back. Absent = memory only.
   */
  readonly cacheDir?: string;
}

/**
 * Seccomp profiles converted for containers, cached: a profile file is read and hashed on each resolve
 * (a changed file takes effect on the next container), but converted only once per (digest, capability
 * set, default-or-not, arch, kernel): in memory for this instance (one per engine, so an agent converts
 * the default profile once for all its containers) and, with `cacheDir`, on disk for the next process.
 */
export class SeccompProfiles implements SeccompSource {
  private readonly arch: SeccompArch;
  private readonly parsed = new Map<string, SeccompProfile>();
  private readonly converted = new Map<string, OciSeccomp>();

  constructor(private readonly opts: SeccompProfilesOptions) {
    this.arch = seccompArch(opts.machine);
  }

  /** Looked up at each resolve: a package installed while the agent runs takes effect on the next container. */
  get defaultProfile(): string | undefined {
    return findDefaultSeccompProfile(this.candidates);
  }

  private get candidates(): readonly string[] {
    return this.opts.defaultProfiles ?? DEFAULT_SECCOMP_CANDIDATES;
  }

  resolve(choice: SeccompChoice, caps: readonly string[]): SeccompResult {
    if (choice.kind === 'unconfined') return { summary: { mode: 'unconfined', reason: 'seccomp=unconfined' } };
    const isDefault = choice.kind === 'default';
    const file = isDefault ? this.defaultProfile : choice.path;
    if (file === undefined) throw this.missingDefault();
    const bytes = this.read(file, isDefault);
    const digest = `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;
    const capSet = [...new Set(caps)].sort();
    const key = crypto.createHash('sha256').update(`${digest}|${isDefault ? 'parity' : 'as-written'}|${this.arch.scmp}|${this.opts.kernel}|${capSet.join(',')}`).digest('hex');
    let filter = this.converted.get(key) ?? this.readCached(key);
    if (filter === undefined) {
      const profile = this.parse(digest, bytes, file);
      const target = { caps: new Set(capSet), arch: this.arch, kernel: this.opts.kernel };
      const plain = convertProfile(profile, target);
      filter = isDefault ? applyParity(plain, target.caps) : plain;
      this.writeCached(key, filter);
    }
    this.converted.set(key, filter);
    return { filter: structuredClone(filter), summary: { mode: 'filter', profile: file, digest, ...(isDefault && { dockerParity: true }) } };
  }

  /** A filter converted by an earlier process; a missing or unreadable entry is simply converted again. */
  private readCached(key: string): OciSeccomp | undefined {
    if (this.opts.cacheDir === undefined) return undefined;
    try {
      const f = JSON.parse(fs.readFileSync(path.join(this.opts.cacheDir, `${key}.json`), 'utf8')) as OciSeccomp;
      return typeof f.defaultAction === 'string' && Array.isArray(f.syscalls) && Array.isArray(f.architectures) ? f : undefined;
    } catch {
      return undefined;
    }
  }

  /** Best effort: a cache that cannot be written costs the next process a conversion, nothing more. */
  private writeCached(key: string, filter: OciSeccomp): void {
    if (this.opts.cacheDir === undefined) return;
    try {
      fs.mkdirSync(this.opts.cacheDir, { recursive: true, mode: 0o700 });
      writeFileAtomic(path.join(this.opts.cacheDir, `${key}.json`), JSON.stringify(filter), 0o600, { durable: false });
    } catch {
      // read-only state root, full disk: the filter is still applied, only not remembered
    }
  }

  private read(file: string, isDefault: boolean): Buffer {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw isDefault ? this.missingDefault() : new BerthError('notFound', `--security-opt seccomp=${file}: no such file`);
      throw new BerthError('host', `cannot read seccomp profile ${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  private missingDefault(): BerthError {
    return new BerthError('host', `the default seccomp profile is missing (looked for ${this.candidates.join(' and ')}): berth starts no container without a seccomp filter`, {
      hint: `apt-get install ${SECCOMP_PACKAGE}; or, for one container, --security-opt seccomp=unconfined`,
    });
  }

  private parse(digest: string, bytes: Buffer, file: string): SeccompProfile {
    let profile = this.parsed.get(digest);
    if (profile === undefined) {
      let json: unknown;
      try {
        json = JSON.parse(bytes.toString('utf8'));
      } catch (err) {
        throw new BerthError('invalid', `seccomp profile ${file} is not valid JSON: ${(err as Error).message}`);
      }
      profile = validateProfile(json, file);
      this.parsed.set(digest, profile);
    }
    return profile;
  }
}
