import type { BoardInfo } from '../board/index.js';
import type { ContainerEngine } from '../runtime/engine.js';
import type { DeploymentRecords } from '../store/deployments.js';
import { deployedFor, specHash } from './compose.js';
import type { DeployStatus, DesiredState, ErrorInfo, ReportedState, ServiceHealth, ServiceReport } from './protocol/types.js';

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
  const lastGood = records.lastGood();
  const status = override?.status ?? toReportStatus(latest?.status);
  const revision = override?.revision ?? latest?.revision ?? 0;
  const error = override ? override.error : latest?.error;
  // Services of what should be running: the newest revision unless it failed or was rolled back.
  const running: DesiredState | undefined = latest && (latest.status === 'applied' || latest.status === 'applying') ? latest.desired : lastGood?.desired;
  const services: Record<string, ServiceReport> = {};
  const containers = engine.list();
  for (const [name, svc] of Object.entries(running?.services ?? {})) {
    const c = containers.find((x) => deployedFor(x.options.labels, name, specHash(svc)));
    services[name] = c
      ? {
        state: c.state, image: svc.image, imageDigest: c.imageDigest, restarts: c.restartCount,
        ...(c.exitCode !== undefined && { exitCode: c.exitCode }), oomKilled: c.oomKilled, health: health.get(name) ?? 'none',
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
