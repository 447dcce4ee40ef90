import { BerthError } from '../errors.js';
import type { BoardFacts } from './facts.js';
import type { BoardProfile } from './profiles.js';
import { WRITE_BUDGETS, type StorageClass, type WriteBudget } from './storage.js';

export type MatchKind = 'revision' | 'compatible' | 'model' | 'fallback';

/** The board as berth sees it: what was detected, the profile picked, and the numbers that follow. */
export interface BoardInfo {
  readonly profile: string;
  readonly profileName: string;
  readonly matchedBy: MatchKind;
  readonly model: string;
  readonly compatible: readonly string[];
  readonly revision?: { code: string; type: string; processor: string; memoryBytes: number; manufacturer?: string; boardRevision?: string };
  /** Installed RAM: from the revision code when the board states it, else what the kernel sees. */
  readonly memoryBytes: number;
  /** RAM the kernel manages (MemTotal): the base for budgets, since that is what cgroups can hand out. */
  readonly memTotalBytes: number;
  readonly cpus: number;
  readonly cpuIsa?: string;
  readonly kernelArch?: string;
  readonly userland: { arch: string; bits: number; source: string };
  /** OCI platforms this board runs natively, most preferred first. */
  readonly platforms: readonly string[];
  readonly reserve: { osBytes: number; agentBytes: number };
  /** RAM left for all containers together: MemTotal minus the reserve. */
  readonly containerBudgetBytes: number;
  readonly containerDefaults: { memoryHighBytes: number; memoryMaxBytes: number; pidsLimit: number; cpuWeight: number; maxParallelDownloads: number };
  readonly storage: { class: StorageClass; source: 'detected' | 'profile'; device?: string } & WriteBudget;
  readonly kernelCmdline?: { files: readonly string[]; edit: string };
  readonly notes: readonly string[];
}

const SCORES: Record<Exclude<MatchKind, 'fallback'>, number> = { revision: 3, compatible: 2, model: 1 };

/** Picks the best profile for the facts: revision type beats device-tree compatible beats model name. */
export function matchProfile(facts: BoardFacts, profiles: readonly BoardProfile[]): { profile: BoardProfile; matchedBy: MatchKind } | undefined {
  let best: { profile: BoardProfile; matchedBy: MatchKind; score: number } | undefined;
  for (const profile of profiles) {
    const m = profile.match;
    const hits: Array<Exclude<MatchKind, 'fallback'>> = [];
    if (facts.revision && m.revisionTypes?.includes(facts.revision.typeName)) hits.push('revision');
    if (m.compatible?.some((c) => facts.compatible.includes(c))) hits.push('compatible');
    if (m.model !== undefined && facts.model !== undefined && new RegExp(m.model).test(facts.model)) hits.push('model');
    const top = hits[0];
    if (top !== undefined && (best === undefined || SCORES[top] > best.score)) best = { profile, matchedBy: top, score: SCORES[top] };
  }
  return best;
}

function fallbackProfile(facts: BoardFacts, profiles: readonly BoardProfile[]): BoardProfile | undefined {
  const candidates = profiles.filter((p) => p.match.fallback?.userland === facts.userland.arch);
  // An unknown ISA matches the least demanding constraint-free profile first, then any.
  return (
    candidates.find((p) => facts.cpuIsa !== undefined && p.match.fallback?.cpuIsa?.includes(facts.cpuIsa)) ??
    candidates.find((p) => p.match.fallback?.cpuIsa === undefined) ??
    candidates[0]
  );
}

export function resolveBoard(facts: BoardFacts, profiles: readonly BoardProfile[]): BoardInfo {
  const notes = [...facts.notes];
  const matched = matchProfile(facts, profiles);
  let profile: BoardProfile;
  let matchedBy: MatchKind;
  if (matched) {
    ({ profile, matchedBy } = matched);
  } else {
    const fb = fallbackProfile(facts, profiles);
    if (!fb) {
      throw new BerthError('host', `no board profile fits this host (userland ${facts.userland.arch}, model ${facts.model ?? 'unknown'})`, {
        hint: 'add a profile to board-profiles/ for this board',
      });
    }
    profile = fb;
    matchedBy = 'fallback';
    const seen = [
      facts.model !== undefined ? `model "${facts.model}"` : 'no device-tree or DMI model',
      ...(facts.compatible.length > 0 ? [`compatible ${facts.compatible.join(', ')}`] : []),
    ];
    notes.push(`board not recognised (${seen.join('; ')}): using the generic profile ${profile.id}`);
  }

  const platforms = profile.platforms[facts.userland.arch];
  if (platforms === undefined) {
    throw new BerthError('host', `${profile.name} does not run a ${facts.userland.arch} userland (profile ${profile.id} supports: ${Object.keys(profile.platforms).join(', ')})`);
  }
  if (facts.userland.arch === 'arm' && facts.cpuIsa === 'armv8') notes.push('32-bit userland on a 64-bit CPU: only 32-bit arm images run natively');

  const reserveTotal = profile.reserve.osBytes + profile.reserve.agentBytes;
  const budget = Math.max(0, facts.memTotalBytes - reserveTotal);
  if (budget === 0) notes.push(`the profile reserves ${reserveTotal} bytes, more than the ${facts.memTotalBytes} the kernel sees: no memory left for containers`);
  const pct = (p: number): number => Math.floor((budget * p) / 100 / 4096) * 4096; // page-aligned, as cgroups round anyway
  const detectedClass = facts.rootDevice?.storageClass;
  const storageClass = detectedClass ?? profile.storage.class;

  return {
    profile: profile.id,
    profileName: profile.name,
    matchedBy,
    model: facts.model ?? profile.name,
    compatible: facts.compatible,
    ...(facts.revision && {
      revision: {
        code: facts.revision.code, type: facts.revision.typeName, processor: facts.revision.processor, memoryBytes: facts.revision.memoryBytes,
        ...(facts.revision.manufacturer !== undefined && { manufacturer: facts.revision.manufacturer }),
        ...(facts.revision.boardRevision !== undefined && { boardRevision: facts.revision.boardRevision }),
      },
    }),
    memoryBytes: facts.revision?.memoryBytes ?? facts.memTotalBytes,
    memTotalBytes: facts.memTotalBytes,
    cpus: facts.cpus,
    ...(facts.cpuIsa !== undefined && { cpuIsa: facts.cpuIsa }),
    ...(facts.kernelArch !== undefined && { kernelArch: facts.kernelArch }),
    userland: { ...facts.userland },
    platforms: [...platforms],
    reserve: { ...profile.reserve },
    containerBudgetBytes: budget,
    containerDefaults: {
      memoryHighBytes: pct(profile.containerDefaults.memoryHighPercent),
      memoryMaxBytes: pct(profile.containerDefaults.memoryMaxPercent),
      pidsLimit: profile.containerDefaults.pidsLimit,
      cpuWeight: profile.containerDefaults.cpuWeight,
      maxParallelDownloads: profile.containerDefaults.maxParallelDownloads,
    },
    storage: {
      class: storageClass,
      source: detectedClass !== undefined ? 'detected' : 'profile',
      ...(facts.rootDevice !== undefined && { device: facts.rootDevice.device }),
      ...WRITE_BUDGETS[storageClass],
    },
    ...(profile.kernelCmdline !== undefined && { kernelCmdline: profile.kernelCmdline }),
    notes,
  };
}
