import type { DesiredState } from '../protocol/types.js';
import type { App } from './model.js';
import type { DesiredCheck } from '../protocol/validate.js';
import { checkApp, normalizeDesired, type NormalizeOptions } from './normalize.js';

/**
 * The app model of each revision, normalized once. The store keeps desired states as received (one row
 * per revision, never rewritten: `DeploymentRecords.receive` ignores a known revision), so a revision
 * number names one desired state and the model can be kept by it. The readers that look at the store
 * every tick (health monitor, reporter) ask here instead of normalizing again.
 */
export class AppCache {
  private readonly apps = new Map<number, App>();

  /**
   * `size`: how many revisions are kept: the running one, the last good one (the rollback target) and a
   * newer one. `normalize`: where this device keeps apps (their data directories), for every revision.
   */
  constructor(private readonly size = 4, private readonly normalize: NormalizeOptions = {}) {}

  /** A received desired-state message checked and normalized with this device's options (normalize.ts checkApp); not yet kept. */
  check(payload: Uint8Array | string): DesiredCheck<App> {
    return checkApp(payload, this.normalize);
  }

  /** Keeps an app normalized elsewhere (the agent on receipt, `berth deploy` from its file). */
  remember(app: App): App {
    this.apps.delete(app.revision);
    this.apps.set(app.revision, app);
    while (this.apps.size > this.size) this.apps.delete(this.apps.keys().next().value!);
    return app;
  }

  /** The model of a recorded desired state; normalized on first sight (a revision another process recorded). */
  of(desired: DesiredState): App {
    return this.apps.get(desired.revision) ?? this.remember(normalizeDesired(desired, this.normalize));
  }
}
