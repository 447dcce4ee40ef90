import type { SingleBar } from 'cli-progress';
import type { DeployEvent, DeployPlanEntry, DeploySummary } from '../fleet/deploy.js';
import { FAILURES, type Outcome } from '../fleet/rollout.js';
import { ERROR_CATEGORIES } from '../errors.js';
import { table } from './format.js';

/**
 * How `berth fleet deploy` shows a rollout: on a terminal a progress bar (cli-progress) with the
 * counts so far, otherwise one plain line per sent and finished device.
 */
export class DeployProgress {
  private bar: SingleBar | undefined;
  private finished = 0;
  private readonly counts = { applied: 0, failed: 0, sent: 0, active: 0 };
  private readonly phases = new Map<string, string>();

  private constructor(private readonly out: NodeJS.WritableStream, private readonly total: number) {}

  static async create(out: NodeJS.WritableStream & { isTTY?: boolean }, total: number): Promise<DeployProgress> {
    const p = new DeployProgress(out, total);
    if (out.isTTY) {
      const mod = (await import('cli-progress')) as unknown as typeof import('cli-progress') & { default?: typeof import('cli-progress') };
      const { SingleBar, Presets } = mod.default ?? mod;
      p.bar = new SingleBar({
        stream: out as NodeJS.WriteStream,
        format: '{bar} {value}/{total} done | sent {sent} | applied {applied} | failed {failed} | deploying {active}',
        hideCursor: true,
      }, Presets.shades_classic);
      p.bar.start(total, 0, p.payload());
    }
    return p;
  }

  private payload(): Record<string, number> {
    return { ...this.counts, active: this.phases.size };
  }

  handle = (e: DeployEvent): void => {
    switch (e.type) {
      case 'sent':
        this.counts.sent++;
        if (!this.bar) this.out.write(`${e.device}: sent revision ${e.revision}\n`);
        break;
      case 'progress':
        this.phases.set(e.device, e.phase);
        break;
      case 'finished':
        this.phases.delete(e.device);
        this.finished++;
        if (e.outcome === 'applied') this.counts.applied++;
        else this.counts.failed++;
        if (!this.bar) this.out.write(`${e.device}: ${e.outcome}${e.error ? ` (${e.error})` : ''}\n`);
        break;
      case 'aborted':
        if (this.bar) this.bar.stop();
        this.out.write(`aborting: ${e.reason}; no more devices get this deployment\n`);
        if (this.bar) this.bar.start(this.total, this.finished, this.payload());
        break;
    }
    this.bar?.update(this.finished, this.payload());
  };

  stop(): void {
    this.bar?.stop();
  }
}

const ORDER: readonly Outcome[] = ['applied', 'failed', 'rolled-back', 'rejected', 'superseded', 'offline', 'timed-out', 'not-sent'];

export function planTable(plan: readonly DeployPlanEntry[]): string {
  return table([['DEVICE', 'ONLINE', 'CURRENT', 'NEW REVISION'], ...plan.map((p) => [p.device, p.online ? 'yes' : 'no', p.currentRevision === undefined ? '-' : String(p.currentRevision), String(p.revision)])]);
}

/** The counts table, then one row per device that did not apply (all of them up to 50, then a count). */
export function summaryText(s: DeploySummary, appliedLabel = 'APPLIED'): string {
  const counts = table([ORDER.map((o) => (o === 'applied' ? appliedLabel : o.toUpperCase())), ORDER.map((o) => String(s.counts[o]))]);
  const notApplied = s.devices.filter((d) => d.outcome !== 'applied');
  const shown = notApplied.slice(0, 50);
  const rows = shown.length === 0 ? '' : table([['DEVICE', 'REVISION', 'OUTCOME', 'ERROR'], ...shown.map((d) => [d.device, String(d.revision), d.outcome, d.error ?? (d.outcome === 'offline' ? 'stays retained: applies when the device reconnects' : '')])]);
  const more = notApplied.length > shown.length ? `… and ${notApplied.length - shown.length} more (--json lists all)\n` : '';
  const head = `${s.devices.length} devices in ${(s.elapsedMs / 1000).toFixed(1)} s${s.aborted ? `; ABORTED: ${s.aborted}` : ''}\n`;
  return head + counts + (rows ? `\n${rows}${more}` : '');
}

/** 0 all applied; `cancelled` aborted; `runtime` something failed; `network` offline or timed out only. */
export function deployExitCode(s: DeploySummary): number {
  if (s.aborted) return ERROR_CATEGORIES.cancelled.exit;
  if (s.devices.some((d) => FAILURES.has(d.outcome))) return ERROR_CATEGORIES.runtime.exit;
  if (s.devices.some((d) => d.outcome !== 'applied')) return ERROR_CATEGORIES.network.exit;
  return 0;
}
