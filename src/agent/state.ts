import type { BoardInfo } from '../board/index.js';
import type { AppCache } from '../compose/cache.js';
import { deployedFor } from '../compose/labels.js';
import type { App, AppService } from '../compose/model.js';
import type { ContainerEngine } from '../runtime/engine-api.js';
import type { DeploymentRecords } from './deployments.js';
import type { ContainerRecord } from '../runtime/records.js';
import type { AgentReport, DeployStatus, ErrorInfo, ReportedState, ServiceHealth, ServiceReport } from '../protocol/types.js';

/** A service of the deployment that should be running, and its container when there is one. */
export type RunningService<S extends AppService = AppService> = S & { readonly container?: ContainerRecord };

/**
 * The app that should be running: the newest revision unless it failed or was rolled back. Read from
 * the store each time (a `berth deploy` from another process changes it without this agent's queue);
 * its model comes from `apps`, so each revision is normalized once.
 */
export function runningApp(records: DeploymentRecords, apps: AppCache): App | undefined {
  const latest = records.latest();
  const running = latest && (latest.status === 'applied' || latest.status === 'applying') ? latest.desired : records.lastGood()?.desired;
  return running && apps.of(running);
}

/** The services of {@link runningApp}, in name order. */
export function runningSpecs(records: DeploymentRecords, apps: AppCache): AppService[] {
  return [...(runningApp(records, apps)?.services.values() ?? [])];
}

/** Each service with the container deployed for its current spec, when there is one. */
export function withContainers<S extends AppService>(services: readonly S[], containers: readonly ContainerRecord[]): Array<RunningService<S>> {
  return services.map((s) => {
    const container = containers.find((x) => deployedFor(x.options.labels, s.name, s.hash));
    return { ...s, ...(container && { container }) };
  });
}

/** runningSpecs with their containers. */
export function runningServices(engine: ContainerEngine, records: DeploymentRecords, apps: AppCache): RunningService[] {
  return withContainers(runningSpecs(records, apps), engine.list());
}

/**
 * The `reported` document: where the device stands for the newest revision it knows of, and what each
 * service of the revision that is actually running looks like right now.
 */
export function buildReported(
  engine: ContainerEngine,
  records: DeploymentRecords,
  apps: AppCache,
  board: BoardInfo,
  /** The package version, or the whole agent report (version, install, last upgrade: src/agent/upgrade/updates.ts). */
  version: string | AgentReport,
  health: ReadonlyMap<string, ServiceHealth>,
  override?: { revision: number; status: DeployStatus; error?: ErrorInfo },
): ReportedState {
  const latest = records.latest();
  const status = override?.status ?? toReportStatus(latest?.status);
  const revision = override?.revision ?? latest?.revision ?? 0;
  const error = override ? override.error : latest?.error;
  const services: Record<string, ServiceReport> = {};
  for (const { name, image, healthcheck, container: c } of runningServices(engine, records, apps)) {
    services[name] = c
      ? {
        state: c.state, image, imageDigest: c.imageDigest, restarts: c.restartCount,
        ...(c.exitCode !== undefined && { exitCode: c.exitCode }), oomKilled: c.oomKilled, health: health.get(name) ?? (healthcheck ? 'starting' : 'none'),
      }
      : { state: 'missing', image, restarts: 0, oomKilled: false, health: 'none' };
  }
  return {
    revision, status, ...(error && { error }), services,
    agent: typeof version === 'string' ? { version } : version, board: { profile: board.profile, model: board.model }, time: new Date().toISOString(),
  };
}

function toReportStatus(s: string | undefined): DeployStatus {
  if (s === undefined) return 'applied';
  if (s === 'superseded') return 'applying';
  return s as DeployStatus;
}
