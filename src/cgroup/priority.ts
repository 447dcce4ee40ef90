import { BerthError } from '../errors.js';

/**
 * Priority classes, chosen per container with the label `berth.priority`. They decide who keeps memory
 * and CPU on a small board when there is not enough for everyone:
 * - `critical`: its memory is protected from reclaim (`memory.low`), it gets 4× the CPU weight, and the
 *   OOM killer prefers anything else (`oom_score_adj` −500).
 * - `normal` (default): the profile's defaults; `--memory-reservation` is its `memory.low`.
 * - `best-effort`: a tenth of the CPU weight, no protection, the OOM killer's first choice
 *   (`oom_score_adj` 1000), and the pressure governor freezes and then stops it first.
 */

export const PRIORITY_LABEL = 'berth.priority';
export const PRIORITY_CLASSES = ['critical', 'normal', 'best-effort'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

export interface PriorityPolicy {
  /** Multiplies the profile's cpu.weight when no `--cpu-shares` is given. */
  readonly cpuWeightFactor: number;
  /** `process.oomScoreAdj`; 0 leaves the runtime's default. */
  readonly oomScoreAdj: number;
  /** Protect the container's whole memory allowance with `memory.low` when no reservation is given. */
  readonly protectMemory: boolean;
  /** Order in which the governor sheds load: lower goes first; undefined = never shed. */
  readonly shedRank?: number;
}

export const PRIORITY_POLICIES: Readonly<Record<PriorityClass, PriorityPolicy>> = {
  critical: { cpuWeightFactor: 4, oomScoreAdj: -500, protectMemory: true },
  normal: { cpuWeightFactor: 1, oomScoreAdj: 0, protectMemory: false },
  'best-effort': { cpuWeightFactor: 0.1, oomScoreAdj: 1000, protectMemory: false, shedRank: 0 },
};

/** The class a container's labels ask for; `normal` when unlabelled, a clear error when misspelt. */
export function priorityOf(labels: Readonly<Record<string, string>>): PriorityClass {
  const v = labels[PRIORITY_LABEL];
  if (v === undefined) return 'normal';
  if ((PRIORITY_CLASSES as readonly string[]).includes(v)) return v as PriorityClass;
  throw new BerthError('invalid', `label ${PRIORITY_LABEL}="${v}" is not a priority class: use ${PRIORITY_CLASSES.join(', ')}`);
}
