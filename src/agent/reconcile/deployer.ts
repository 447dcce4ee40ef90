import type { BoardInfo } from '../../board/index.js';
import { BerthError, toBerthError } from '../../errors.js';
import type { PullEvent } from '../../image/pull/pull.js';
import type { ImageService } from '../../image/service.js';
import type { ContainerEngine } from '../../runtime/engine-api.js';
import type { DeploymentRecords } from '../deployments.js';
import { AppCache } from '../../compose/cache.js';
import { ownerOf } from '../../compose/labels.js';
import type { App } from '../../compose/model.js';
import type { NormalizeOptions } from '../../compose/normalize.js';
import type { DeployStatus, ErrorInfo, ServiceHealth } from '../../protocol/types.js';
import { awaitHealthy } from './health.js';
import { plan, type ManagedContainer, type Step } from './plan.js';

/** Fetches an image for this board; resolves with the local image name. Injected by the front end. */
export type PullFn = (ref: string, signal: AbortSignal, onEvent: (e: PullEvent) => void) => Promise<string>;

export type DeployEvent =
  | { readonly type: 'status'; readonly revision: number; readonly status: DeployStatus; readonly error?: ErrorInfo }
  | { readonly type: 'progress'; readonly revision: number; readonly phase: Step['kind'] | 'rollback'; readonly service?: string; readonly image?: string; readonly bytes?: number; readonly total?: number }
  | { readonly type: 'health'; readonly revision: number; readonly service: string; readonly health: ServiceHealth };

export interface DeployOutcome {
  readonly revision: number;
  readonly status: DeployStatus;
  readonly error?: ErrorInfo;
}

export interface DeployerDeps {
  readonly engine: ContainerEngine;
  readonly images: ImageService;
  readonly board: BoardInfo;
  readonly records: DeploymentRecords;
  readonly pull: PullFn;
  readonly onEvent: (e: DeployEvent) => void;
  /** How this device normalizes desired states (its state root, for apps' data directories). */
  readonly normalize?: NormalizeOptions;
}

export const errorInfo = (err: unknown): ErrorInfo => {
  const e = toBerthError(err);
  return { code: e.category, result: e.resultCode, message: e.message };
};

/**
 * Carries out deploys: plan (plan.ts), then the steps one at a time, the health window, and on failure
 * a rollback, which is a plan towards the last good revision. The caller runs one apply at a time and
 * aborts `signal` when a newer revision arrives: the deploy stops between steps and is reported
 * superseded, without a rollback, since the newer revision plans from whatever state it left.
 */
export class Deployer {
  /** Last known health per service, for `reported`. */
  readonly health = new Map<string, ServiceHealth>();
  /** The model of each revision, normalized once: the ones applied here, and recorded ones (a rollback target). */
  readonly apps: AppCache;

  constructor(private readonly deps: DeployerDeps) {
    this.apps = new AppCache(undefined, deps.normalize);
  }

  /** The containers berth deployed, from their labels: the planner's view of the present. */
  managed(): ManagedContainer[] {
    return this.deps.engine.list().flatMap((c) => {
      const owner = ownerOf(c.options.labels);
      return owner ? [{ id: c.id, name: c.name, ...owner, running: c.state === 'running' }] : [];
    });
  }

  /** Applies an app normalized by the caller (once, where the desired state came in). */
  async apply(desired: App, signal: AbortSignal): Promise<DeployOutcome> {
    const { records, onEvent } = this.deps;
    this.apps.remember(desired);
    records.receive(desired.source, Date.now());
    onEvent({ type: 'status', revision: desired.revision, status: 'applying' });
    try {
      await this.converge(desired, desired.revision, signal);
      return this.finish(desired.revision, 'applied');
    } catch (err) {
      if (signal.aborted) return this.finish(desired.revision, 'superseded');
      const error = errorInfo(err);
      const lastGood = records.lastGood();
      if (desired.update.onFailure !== 'rollback' || !lastGood || lastGood.revision === desired.revision) {
        return this.finish(desired.revision, 'failed', error);
      }
      try {
        onEvent({ type: 'progress', revision: desired.revision, phase: 'rollback' });
        await this.converge(this.apps.of(lastGood.desired), desired.revision, signal);
        return this.finish(desired.revision, 'rolled-back', error);
      } catch (rollbackErr) {
        if (signal.aborted) return this.finish(desired.revision, 'superseded');
        const r = errorInfo(rollbackErr);
        return this.finish(desired.revision, 'failed', { ...error, message: `${error.message}; rollback to revision ${lastGood.revision} failed too: ${r.message}` });
      }
    }
  }

  private finish(revision: number, status: 'applied' | 'failed' | 'rolled-back' | 'superseded', error?: ErrorInfo): DeployOutcome {
    this.deps.records.finish(revision, status, Date.now(), error);
    this.deps.onEvent({ type: 'status', revision, status, ...(error && { error }) });
    return { revision, status, ...(error && { error }) };
  }

  /** Plans from the present towards `target` and executes; `revision` labels progress messages. */
  private async converge(target: App, revision: number, signal: AbortSignal): Promise<void> {
    const { engine, onEvent } = this.deps;
    const { steps } = plan(this.managed(), target, target.update.strategy);
    const imageOf = new Map<string, string>();
    const created = new Map<string, string>();
    // The container of (service, spec): created by this run, or already there (a stopped one to start again).
    const containerOf = (service: string, hash: string): string => {
      const id = created.get(service) ?? this.managed().find((c) => c.service === service && c.hash === hash)?.id;
      if (id === undefined) throw new BerthError('internal', `no container for service ${service}`);
      return id;
    };
    for (const step of steps) {
      signal.throwIfAborted();
      const progress = { type: 'progress' as const, revision, phase: step.kind, ...('service' in step && { service: step.service }) };
      switch (step.kind) {
        case 'pull': {
          onEvent({ ...progress, image: step.image });
          imageOf.set(step.service, await this.ensureImage(step.image, revision, step.service, signal));
          break;
        }
        case 'create': {
          onEvent(progress);
          created.set(step.service, engine.create(imageOf.get(step.service)!, target.services.get(step.service)!.run).id);
          break;
        }
        case 'stop': {
          onEvent(progress);
          await engine.stop(step.id);
          break;
        }
        case 'start': {
          onEvent(progress);
          await engine.start(containerOf(step.service, step.hash));
          break;
        }
        case 'await-healthy': {
          onEvent({ ...progress });
          const watched = step.services.map((service) => {
            const { hash, healthcheck: check } = target.services.get(service)!;
            return { service, containerId: containerOf(service, hash), ...(check && { check }) };
          });
          const onHealth = (service: string, health: ServiceHealth): void => {
            this.health.set(service, health);
            onEvent({ type: 'health', revision, service, health });
          };
          for (const w of watched) onHealth(w.service, w.check ? 'starting' : 'none');
          await awaitHealthy(engine, watched, target.update.healthWindowMs, signal, onHealth);
          break;
        }
        case 'remove': {
          onEvent(progress);
          const c = await engine.remove(step.id, true);
          this.removeUnusedImage(c.image);
          break;
        }
      }
    }
  }

  /** pull_policy "missing": a local image is used as it is (a board may be offline); pin digests for exactness. */
  private async ensureImage(ref: string, revision: number, service: string, signal: AbortSignal): Promise<string> {
    try {
      return this.deps.images.find(ref).name;
    } catch (err) {
      if (!(err instanceof BerthError && err.category === 'notFound')) throw err;
    }
    let last = 0;
    return this.deps.pull(ref, signal, (e) => {
      if (e.type !== 'layer' || Date.now() - last < 1000) return;
      last = Date.now();
      this.deps.onEvent({ type: 'progress', revision, phase: 'pull', service, image: ref, bytes: e.bytes, total: e.total });
    });
  }

  private removeUnusedImage(name: string): void {
    if (this.deps.engine.list().some((c) => c.image === name)) return;
    try {
      this.deps.images.remove(name);
    } catch {
      /* already gone, or shared under another name: pruning is best effort */
    }
  }
}
