import type { BoardInfo } from '../board/index.js';
import type { ContainerEngine } from '../runtime/engine-api.js';
import type { DeploymentRecords } from './deployments.js';
import { deployedFor, parseHealthcheck, specHash } from './compose.js';
import type { ContainerRecord } from '../runtime/records.js';
import type { DeployStatus, DesiredState, ErrorInfo, ReportedState, ServiceHealth, ServiceReport, ServiceSpec } from '../protocol/types.js';

/** A service of the deployment that should be running. */
export interface DesiredService {
  readonly name: string;
  readonly spec: ServiceSpec;
}

/** A service of the deployment that should be running, and its container when there is one. */
export interface RunningService extends DesiredService {
  readonly container?: ContainerRecord;
}

/** The services of what should be running: the newest revision unless it failed or was rolled back. */
export function runningSpecs(records: DeploymentRecords): DesiredService[] {
  const latest = records.latest();
  const running: DesiredState | undefined = latest && (latest.status === 'applied' || latest.status === 'applying') ? latest.desired : records.lastGood()?.desired;
  return Object.entries(running?.services ?? {}).map(([name, spec]) => ({ name, spec }));
}

/** Each service with the container deployed for its current spec, when there is one. */
export function withContainers<S extends DesiredService>(services: readonly S[], containers: readonly ContainerRecord[]): Array<S & RunningService> {
  return services.map((s) => {
    const container = containers.find((x) => deployedFor(x.options.labels, s.name, specHash(s.spec)));
    return { ...s, ...(container && { container }) };
  });
}

/** runningSpecs with their containers. */
export function runningServices(engine: ContainerEngine, records: DeploymentRecords): RunningService[] {
  return withContainers(runningSpecs(records), engine.list());
}

/**
 * The `reported` document: where the device stands for the newest revision it knows of, and what each
 * service of the revision that is actually running looks like right now.
 */
export function buildReported(
  engine: ContainerEngine,
  records: DeploymentRecords,
  board: BoardInfo,
  version: string,
  health: ReadonlyMap<string, ServiceHealth>,
  override?: { revision: number; status: DeployStatus; error?: ErrorInfo },
): ReportedState {
  const latest = records.latest();
  const status = override?.status ?? toReportStatus(latest?.status);
  const revision = override?.revision ?? latest?.revision ?? 0;
  const error = override ? override.error : latest?.error;
  const services: Record<string, ServiceReport> = {};
  for (const { name, spec: svc, container: c } of runningServices(engine, records)) {
    services[name] = c
      ? {
        state: c.state, image: svc.image, imageDigest: c.imageDigest, restarts: c.restartCount,
        ...(c.exitCode !== undefined && { exitCode: c.exitCode }), oomKilled: c.oomKilled, health: health.get(name) ?? (parseHealthcheck(name, svc.healthcheck) ? 'starting' : 'none'),
      }
      : { state: 'missing', image: svc.image, restarts: 0, oomKilled: false, health: 'none' };
  }
  return {
    revision, status, ...(error && { error }), services,
    agent: { version }, board: { profile: board.profile, model: board.model }, time: new Date().toISOString(),
  };
}

function toReportStatus(s: string | undefined): DeployStatus {
  if (s === undefined) return 'applied';
  if (s === 'superseded') return 'applying';
  return s as DeployStatus;
}
