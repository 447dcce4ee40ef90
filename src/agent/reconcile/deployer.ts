import type { BoardInfo } from '../../board/index.js';
import { BerthError, toBerthError } from '../../errors.js';
import type { PullEvent } from '../../image/pull/pull.js';
import type { ImageService } from '../../image/service.js';
import type { ContainerEngine } from '../../runtime/engine-api.js';
import type { ContainerRecord } from '../../runtime/records.js';
import type { DeploymentRecords } from '../deployments.js';
import { AppCache } from '../../compose/cache.js';
import { appLabels, appOf, ownerOf } from '../../compose/labels.js';
import { balenaWarnings } from '../../compose/service-balena.js';
import type { App, AppService } from '../../compose/model.js';
import type { NormalizeOptions } from '../../compose/normalize.js';
import type { NetworkService } from '../../network/service.js';
import type { DeployStatus, ErrorInfo, ServiceHealth } from '../../protocol/types.js';
import type { ImageRecord } from '../../store/images.js';
import { awaitDependency, awaitHealthy, type WatchedService } from './health.js';
import { plan, type ManagedContainer, type Present, type Step } from './plan.js';
import { checkPlatforms, pullDecision } from './pull-policy.js';

/** Fetches an image for this board; resolves with the local image name. Injected by the front end. */
/** Pulls `ref` for this board (or for `platform`, `os/arch[/variant]`, when given); resolves to the local image's name. */
export type PullFn = (ref: string, signal: AbortSignal, onEvent: (e: PullEvent) => void, platform?: string) => Promise<string>;

export type DeployEvent =
  | { readonly type: 'status'; readonly revision: number; readonly status: DeployStatus; readonly error?: ErrorInfo }
  | {
    readonly type: 'progress'; readonly revision: number; readonly phase: Step['kind'] | 'rollback';
    readonly service?: string; readonly network?: string; readonly volume?: string; readonly image?: string; readonly bytes?: number; readonly total?: number;
  }
  | { readonly type: 'health'; readonly revision: number; readonly service: string; readonly health: ServiceHealth }
  /** Something the app asks for and will not get, though the deploy goes on (balena's engine socket…). */
  | { readonly type: 'warning'; readonly revision: number; readonly message: string };

export interface DeployOutcome {
  readonly revision: number;
  readonly status: DeployStatus;
  readonly error?: ErrorInfo;
}

/** The network operations a deploy makes: the app's networks are created before its containers and removed after them. */
export type DeployNetworks = Pick<NetworkService, 'list' | 'create' | 'remove'>;

/** Named volumes as a deploy sees them: which exist, and making one before the containers that mount it. */
export interface DeployVolumes {
  names(): ReadonlySet<string>;
  /** Creates the volume `name` (idempotent); `labels` name the app it was made for. */
  create(name: string, labels: Readonly<Record<string, string>>): void;
}

export interface DeployerDeps {
  readonly engine: ContainerEngine;
  readonly networks: DeployNetworks;
  readonly volumes: DeployVolumes;
  readonly images: ImageService;
  readonly board: BoardInfo;
  readonly records: DeploymentRecords;
  readonly pull: PullFn;
  readonly onEvent: (e: DeployEvent) => void;
  /** How this device normalizes desired states (its state root, for apps' data directories). */
  readonly normalize?: NormalizeOptions;
  /**
   * Variables a service's container gets on this device besides its own (placed first, so the
   * service's win): the supervisor API's address and key (src/agent/supervisor-api/env.ts). Not part
   * of the spec hash: they are the device's, not the app's.
   */
  readonly deviceEnv?: (app: App, service: AppService) => readonly string[];
  /**
   * The host directories an app's containers may bind from (the agent's deploy policy: policy.ts
   * bindRoots), held at every container start (RunOptions.confineBinds); absent = not confined (`berth deploy`).
   */
  readonly bindRoots?: (app: string) => readonly string[];
}

/** How a deployer is built (src/root.ts): the agent's and `berth deploy`'s differ only in these. */
export interface DeployerOptions {
  readonly onPull?: (ref: string) => void;
  readonly bindRoots?: (app: string) => readonly string[];
  /** How images are pulled instead of in this process (the agent's: in a child process, src/agent/pull-child). */
  readonly pull?: PullFn;
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

  /** The containers berth deployed, from their labels. */
  managed(): ManagedContainer[] {
    return this.deps.engine.list().flatMap((c) => {
      const owner = ownerOf(c.options.labels);
      return owner ? [{ id: c.id, name: c.name, ...owner, running: c.state === 'running' }] : [];
    });
  }

  /** The planner's view of the device: the deployed containers, the networks (with the app that made them), the volumes. */
  present(): Present {
    const networks = this.deps.networks.list().map((n) => {
      const app = appOf(n.labels);
      return { name: n.name, ...(app !== undefined && { app }) };
    });
    return { containers: this.managed(), networks, volumes: this.deps.volumes.names() };
  }

  /**
   * Containers of a current spec whose device variables are no longer what this device gives them (the
   * app was renamed, so its supervisor API key changed; its network's gateway moved). They cannot stay,
   * and their replacement would take their name (`<service>.<hash>`), so they go before the plan is made.
   */
  private staleDeviceEnv(target: App): ContainerRecord[] {
    const deviceEnv = this.deps.deviceEnv;
    if (deviceEnv === undefined) return [];
    return this.deps.engine.list().filter((c) => {
      const owner = ownerOf(c.options.labels);
      const s = owner && target.services.get(owner.service);
      if (s === undefined || s.hash !== owner!.hash) return false;
      try {
        return !deviceEnv(target, s).every((e) => c.options.env.includes(e));
      } catch {
        return true; // what it should get cannot be known yet (its network is still to be made): it is not what it has
      }
    });
  }

  /**
   * Applies an app normalized by the caller (once, where the desired state came in). A revision whose
   * deploy is already recorded as applying was interrupted (the agent died): its health window is run
   * again over every service, from the start, since nobody watched the containers meanwhile.
   */
  async apply(desired: App, signal: AbortSignal): Promise<DeployOutcome> {
    const { records, onEvent } = this.deps;
    this.apps.remember(desired);
    const resumed = records.get(desired.revision)?.status === 'applying';
    records.receive(desired.source, Date.now());
    onEvent({ type: 'status', revision: desired.revision, status: 'applying' });
    for (const message of balenaWarnings(desired)) onEvent({ type: 'warning', revision: desired.revision, message });
    try {
      await this.converge(desired, desired.revision, signal, resumed);
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
  private async converge(target: App, revision: number, signal: AbortSignal, resumed = false): Promise<void> {
    const { engine, networks, volumes, onEvent } = this.deps;
    // Before any step: a platform the board cannot run would fail only at exec, after the old containers went.
    checkPlatforms(target, this.deps.board);
    for (const c of this.staleDeviceEnv(target)) {
      onEvent({ type: 'progress', revision, phase: 'remove', service: ownerOf(c.options.labels)!.service });
      await engine.remove(c.id, true);
    }
    const { steps } = plan(this.present(), target, { strategy: target.update.strategy, resumed });
    const imageOf = new Map<string, string>();
    const created = new Map<string, string>();
    // The container of (service, spec): created by this run, or already there (a stopped one to start again).
    const containerOf = (service: string, hash: string): string => {
      const id = created.get(service) ?? this.managed().find((c) => c.service === service && c.hash === hash)?.id;
      if (id === undefined) throw new BerthError('internal', `no container for service ${service}`);
      return id;
    };
    const watch = (service: string, oneShot = false): WatchedService => {
      const { hash, healthcheck: check } = target.services.get(service)!;
      return { service, containerId: containerOf(service, hash), ...(check && { check }), ...(oneShot && { oneShot }) };
    };
    const onHealth = (service: string, health: ServiceHealth): void => {
      this.health.set(service, health);
      onEvent({ type: 'health', revision, service, health });
    };
    for (const step of steps) {
      signal.throwIfAborted();
      const progress = { type: 'progress' as const, revision, phase: step.kind, ...('service' in step && { service: step.service }) };
      switch (step.kind) {
        case 'create-volume': {
          onEvent({ ...progress, volume: step.hostName });
          volumes.create(step.hostName, { ...target.volumes.get(step.volume)!.labels, ...appLabels(target.name) });
          break;
        }
        case 'create-network': {
          onEvent({ ...progress, network: step.hostName });
          const n = target.networks.get(step.network)!;
          networks.create({ name: step.hostName, internal: n.internal, labels: { ...n.labels, ...appLabels(target.name) }, options: n.driverOpts, ...n.ipam, ...(n.enableIpv6 && { ipv6: true }), ...(n.ipam6 && { ipv6Subnet: n.ipam6.subnet, ...(n.ipam6.gateway !== undefined && { ipv6Gateway: n.ipam6.gateway }) }) });
          break;
        }
        case 'await-dependency': {
          onEvent(progress);
          await awaitDependency(engine, watch(step.service), step.condition, step.dependent, signal, onHealth);
          break;
        }
        case 'remove-network': {
          onEvent({ ...progress, network: step.hostName });
          this.removeUnusedNetwork(step.hostName);
          break;
        }
        case 'pull': {
          onEvent({ ...progress, image: step.image });
          imageOf.set(step.service, await this.ensureImage(target.services.get(step.service)!, revision, signal));
          break;
        }
        case 'create': {
          onEvent(progress);
          const s = target.services.get(step.service)!;
          const extra = this.deps.deviceEnv?.(target, s) ?? [];
          const roots = this.deps.bindRoots?.(target.name);
          const run = extra.length === 0 ? s.run : { ...s.run, env: [...extra, ...s.run.env] };
          created.set(step.service, engine.create(imageOf.get(step.service)!, roots ? { ...run, confineBinds: roots } : run).id);
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
          const watched = step.services.map((service) => watch(service, step.oneShot.includes(service)));
          for (const w of watched) onHealth(w.service, w.check && !w.oneShot ? 'starting' : 'none');
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

  /** The service's image as its pull_policy and platform say (pull-policy.ts): the local copy, or a pull. */
  private async ensureImage(svc: AppService, revision: number, signal: AbortSignal): Promise<string> {
    let local: ImageRecord | undefined;
    try {
      local = this.deps.images.find(svc.image);
    } catch (err) {
      if (!(err instanceof BerthError && err.category === 'notFound')) throw err;
    }
    if (pullDecision(svc, local, Date.now()) === 'local') return local!.name;
    const ref = svc.image;
    const service = svc.name;
    let last = 0;
    return this.deps.pull(ref, signal, (e) => {
      if (e.type !== 'layer' || Date.now() - last < 1000) return;
      last = Date.now();
      this.deps.onEvent({ type: 'progress', revision, phase: 'pull', service, image: ref, bytes: e.bytes, total: e.total });
    }, svc.platform);
  }

  /**
   * Removes a network the app no longer has. Best effort, as image pruning: a container started by hand
   * on it keeps it (NetworkService refuses), and the next deploy tries again, since the plan lists every
   * app-made network the desired state lacks.
   */
  private removeUnusedNetwork(name: string): void {
    try {
      this.deps.networks.remove(name);
    } catch (err) {
      if (!(err instanceof BerthError && (err.category === 'conflict' || err.category === 'notFound'))) throw err;
    }
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
