/**
 * One agent upgrade on the device (docs/upgrade.md §2 steps 1–6): fetch and unpack the bundle side by
 * side, write the trial record, switch `current`, and hand over to the restarter. The decision whether
 * the new version stays is not made here: the launcher and the new agent's Trial make it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BerthError } from '../../errors.js';
import { ContentStore } from '../../image/content/store.js';
import { parseDigest } from '../../image/digest.js';
import type { Platform } from '../../image/platform.js';
import { parseReference } from '../../image/reference.js';
import type { RegistryApi } from '../../image/registry/types.js';
import { fetchBundle } from './fetch.js';
import type { InstallLayout } from './layout.js';
import { DEFAULT_TRIAL_WINDOW_S, type UpgradeResult } from './records.js';

/** What the signed desired state asks for: the bundle index (by reference) and its digest. */
export interface UpgradeRequest {
  /** `registry/repository[:tag]`: where to pull from. */
  readonly ref: string;
  /** The index digest: the only thing trusted about the bundle. */
  readonly digest: string;
}

export interface UpgraderDeps {
  readonly layout: InstallLayout;
  /** A registry client for `ref`'s registry, with berth's credentials and CAs (openRegistryClient). */
  readonly client: (ref: string) => RegistryApi;
  readonly platforms: readonly Platform[];
  readonly freeBytes: (dir: string) => number;
  /** Seconds the new agent has to confirm (agent.yaml upgrade.trialWindow; default DEFAULT_TRIAL_WINDOW_S). */
  readonly windowS?: number;
  /**
   * Makes the launcher start again (production: the agent exits with 75 and systemd's Restart=always
   * starts it; tests play systemd). Containers are never touched.
   */
  readonly restart: () => void;
  readonly log: (event: string, detail: Record<string, unknown>) => void;
  readonly now?: () => Date;
  /** Runs first, under the same one-at-a-time lock: a flat card's conversion to the launcher layout (migrate.ts). */
  readonly prepare?: () => Promise<void>;
}

export type UpgradeOutcome =
  | { readonly kind: 'current'; readonly version: string }
  | { readonly kind: 'switched'; readonly version: string; readonly previous: string }
  /** This bundle was rolled back here last time: not tried again until the fleet names another (docs/upgrade.md). */
  | { readonly kind: 'declined'; readonly rolledBack: UpgradeResult };

/** The directory name of a bundle: its berth version plus the index digest's first 12 hex digits. */
export function versionName(berth: string, digest: string): string {
  return `${berth}-${parseDigest(digest).hex.slice(0, 12)}`;
}

export class Upgrader {
  private busy = false;

  constructor(private readonly d: UpgraderDeps) {}

  /** The rollback result that makes this request one not to try again, if any (see upgrade). */
  declines(req: UpgradeRequest): UpgradeResult | undefined {
    const last = this.d.layout.result();
    return last?.state === 'rolled-back' && last.digest === req.digest ? last : undefined;
  }

  /**
   * Fetches, switches and restarts. Resolves `current` when this bundle already runs, `declined` when
   * the last upgrade was to this very bundle and was rolled back (as balena and IoT Edge do: a target
   * that failed its trial is not retried until the target changes; its rollback result stays). Throws (and
   * writes a `failed` result) for anything before the switch: the running version stays, untouched.
   */
  async upgrade(req: UpgradeRequest, signal: AbortSignal): Promise<UpgradeOutcome> {
    const { layout, log } = this.d;
    if (this.busy) throw new BerthError('conflict', 'an agent upgrade is already under way');
    this.busy = true;
    try {
      await this.d.prepare?.();
      const running = layout.linked('current');
      if (running === undefined) {
        throw new BerthError('host', `no ${layout.prefix}/current: this agent was not installed with the launcher, so it cannot upgrade itself`, {
          hint: 'reflash the card with this berth version, or install the launcher (docs/upgrade.md)',
        });
      }
      if (running.endsWith(`-${parseDigest(req.digest).hex.slice(0, 12)}`)) return { kind: 'current', version: running };
      const rolledBack = this.declines(req);
      if (rolledBack) return { kind: 'declined', rolledBack };
      layout.ensure();
      const ref = parseReference(req.ref);
      const tmp = path.join(layout.versions, `.fetch-${parseDigest(req.digest).hex.slice(0, 12)}.tmp`);
      fs.rmSync(tmp, { recursive: true, force: true });
      const content = new ContentStore(layout.contentDir);
      log('upgrade-fetching', { ref: req.ref, digest: req.digest });
      const fetched = await fetchBundle({
        client: this.d.client(req.ref), repository: ref.repository, digest: req.digest, platforms: this.d.platforms, content, freeBytes: this.d.freeBytes, signal,
        onRetry: (attempt, delayMs, reason) => log('upgrade-retry', { attempt, delayMs, reason }),
      }, tmp);
      const name = versionName(fetched.info.berth, req.digest);
      const dir = layout.versionDir(name);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(tmp, dir);
      content.delete(fetched.layer.digest); // unpacked: the blob only took space
      if (!fs.existsSync(path.join(dir, 'bin', 'berth'))) throw new BerthError('invalid', `agent bundle ${req.digest} has no bin/berth`);
      const time = (this.d.now ?? (() => new Date()))().toISOString();
      // Order matters for power loss (docs/upgrade.md): trial record, then previous, then current.
      layout.writeResult({ state: 'upgrading', to: name, from: running, digest: req.digest, time });
      layout.writeTrial({ to: name, from: running, window: this.d.windowS ?? DEFAULT_TRIAL_WINDOW_S, starts: 0, digest: req.digest });
      layout.point('previous', running);
      layout.point('current', name);
      log('upgrade-switched', { version: name, previous: running, digest: req.digest });
      this.d.restart();
      return { kind: 'switched', version: name, previous: running };
    } catch (err) {
      const e = err instanceof BerthError ? err : new BerthError('internal', (err as Error).message, { cause: err });
      if (layout.trial() === undefined) {
        layout.ensure();
        layout.writeResult({ state: 'failed', to: req.digest, cause: e.message, digest: req.digest, time: new Date().toISOString() });
      }
      log('upgrade-failed', { digest: req.digest, error: e.message });
      throw e;
    } finally {
      this.busy = false;
    }
  }
}
