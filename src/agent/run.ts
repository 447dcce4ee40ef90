import os from 'node:os';
import type { BoardInfo } from '../board/index.js';
import type { HostPaths } from '../host/paths.js';
import type { ImageService } from '../image/service.js';
import type { ContainerEngine } from '../runtime/engine-api.js';
import type { DeploymentRecords } from './deployments.js';
import type { GovernorConfig } from './governor/policy.js';
import type { BrokerOptions } from '../protocol/connection.js';
import { DeviceTopics } from '../protocol/topics.js';
import type { Deployer, DeployerOptions, DeployEvent, PullFn } from './reconcile/deployer.js';
import { DeployQueue } from './reconcile/queue.js';
import type { BackoffConfig } from './restart-policy.js';
import { HealthMonitor } from './health-monitor.js';
import { runningSpecs } from './state.js';
import type { Spool } from './spool.js';
import { Supervisor } from './supervisor.js';
import type { FleetPublicKey } from '../protocol/signing.js';
import { bindRoots, DEFAULT_DEPLOY_POLICY, type DeployPolicy } from './policy.js';
import type { TrustStore } from './trust.js';
import type { NetworkService } from '../network/service.js';
import type { SupervisorKeyRecords } from '../store/supervisor-keys.js';
import { AgentUpdates, type AgentUpdatesDeps } from './upgrade/updates.js';

/**
 * The parts of the agent that live in the state store, built by the composition root (src/root.ts's
 * BerthRoot, which `berth deploy` builds its deployer from too).
 */
export interface AgentParts {
  deployments(): DeploymentRecords;
  /** The reconciler over the engine, images and deployments, pulling for this board. */
  deployer(onEvent: (e: DeployEvent) => void, opts?: DeployerOptions): Promise<Deployer>;
  /** The offline spool: asked for only with a broker. */
  spool(): Promise<Spool>;
  /** The rotated fleet key and the commands already run (src/store/trust.ts): asked for only with a broker. */
  trust(): TrustStore;
  /** The supervisor API's device UUID and app keys (src/store/supervisor-keys.ts). */
  supervisorKeys(): SupervisorKeyRecords;
  /** The bridge networks, for the gateways the supervisor API listens on. */
  networks(): Promise<Pick<NetworkService, 'list'>>;
}

/** Who may deploy what over MQTT (agent.yaml fleetKey, allowUnsigned, deployPolicy). */
export interface FleetSecurity {
  /** The fleet's public key from agent.yaml; undefined: no signed message can be accepted. */
  readonly fleetKey?: FleetPublicKey;
  /** Development only: unsigned desired states and commands are accepted too. */
  readonly allowUnsigned: boolean;
  readonly policy: DeployPolicy;
}

/** With a broker but no security settings: nothing is accepted, nothing beyond the sandbox allowed. */
const NO_SECURITY: FleetSecurity = { allowUnsigned: false, policy: DEFAULT_DEPLOY_POLICY };

export interface AgentRunOptions {
  readonly engine: ContainerEngine;
  readonly images: ImageService;
  readonly board: BoardInfo;
  readonly parts: AgentParts;
  readonly host: HostPaths;
  readonly stateRoot: string;
  readonly version: string;
  readonly backoff: BackoffConfig;
  /** false: no pressure governor. */
  readonly governor: Partial<GovernorConfig> | false;
  /** No broker: local-only (supervision, governor, `berth deploy`'s last deployment). */
  readonly broker?: BrokerOptions & { readonly deviceId: string };
  /** How messages from the broker are judged; with a broker, absent = nothing is accepted. */
  readonly security?: FleetSecurity;
  readonly telemetryIntervalMs: number;
  /** agent.yaml `supervisorApi.allowPower`: the supervisor API's /v1/reboot and /v1/shutdown act (else 403). */
  readonly allowPower?: boolean;
  /** An agent on trial after an upgrade (src/agent/upgrade/trial.ts): told as it starts, reconciles, reaches the broker. */
  readonly trial?: { stage(s: 'started' | 'reconciled' | 'broker'): void };
  /** Self-update over MQTT (docs/upgrade.md): the install and the upgrader; the agent adds its queue and reporter. */
  readonly upgrades?: Pick<AgentUpdatesDeps, 'context' | 'upgrader'>;
  /** How deploys pull images; absent: in this process (src/cli/agent.ts gives a child process's, src/agent/pull-child). */
  readonly pull?: PullFn;
  /** One structured log line per decision: `event` + the numbers behind it. */
  readonly log: (event: string, detail: Record<string, unknown>, container?: string) => void;
}

/** Supervisor, health, host-condition and governor events the fleet hears of (the rest stay in the log). */
const FLEET_EVENTS = new Set(['upgrade-switched', 'upgrade-error', 'upgrade-confirmed', 'health', 'low-disk', 'under-voltage', 'throttled', 'oom-kill', 'exited', 'restart-failed', 'crash-loop', 'governor-freeze', 'governor-stop', 'governor-thaw', 'governor-restart', 'governor-note']);

/**
 * Events after which `reported` no longer matches the board, besides the engine's own container events
 * (starts, exits, freezes…), which the MQTT front end follows itself.
 */
const STATE_CHANGES = new Set(['health']);

/**
 * `berth agent`: the supervisor, the pressure governor, the reconciler resuming the last deployment,
 * and, with a broker, the MQTT front end and telemetry. Runs until `signal` aborts; containers keep
 * running under their monitors after it returns.
 */
export async function runAgent(o: AgentRunOptions, outer: AbortSignal): Promise<void> {
  const { engine, images, board, log } = o;
  // A loop that fails stops the others too, and the MQTT front end says offline, before the caller
  // closes the store under them (a report timer once fired into a closed database).
  // (Not AbortSignal.any: the ARMv6 bundle's Node 18 may predate it.)
  const stopAll = new AbortController();
  if (outer.aborted) stopAll.abort();
  else outer.addEventListener('abort', () => stopAll.abort(), { once: true });
  const signal = stopAll.signal;
  const records = o.parts.deployments();
  let mqtt: import('./mqtt/agent.js').MqttAgent | undefined;
  const onDeployEvent = (e: DeployEvent): void => {
    if (e.type === 'status') log('deploy', { revision: e.revision, status: e.status, ...(e.error && { error: e.error.message }) });
    else if (e.type === 'warning') log('deploy-warning', { revision: e.revision, warning: e.message });
    mqtt?.onDeployEvent(e);
  };
  // A fleet agent's containers bind only from where its deploy policy allows, checked again at every start.
  const policy = o.broker ? (o.security ?? NO_SECURITY).policy : undefined;
  const deployer = await o.parts.deployer(onDeployEvent, { ...(policy && { bindRoots: (app: string) => bindRoots(policy, o.stateRoot, app) }), ...(o.pull && { pull: o.pull }) });
  const queue = new DeployQueue(deployer);
  // A card flashed with --preload: its images loaded and its app recorded (revision 0) before the resume below deploys it.
  const { adoptPreload } = await import('./preload.js');
  await adoptPreload({ stateRoot: o.stateRoot, images, records, platforms: board.platforms, ...(policy && { policy }), log });
  // Rejected revisions do not count: only valid ones move what a new desired state must be newer than.
  const latest = records.newestAccepted();
  if (latest) queue.seen(latest.revision);

  const forward = (type: string, detail: Record<string, unknown>, container?: string): void => {
    log(type, detail, container);
    if (FLEET_EVENTS.has(type)) mqtt?.event({ kind: type, ...(container !== undefined && { container }), ...detail });
    if (STATE_CHANGES.has(type)) mqtt?.stateChanged();
  };
  const health = new HealthMonitor({
    engine, services: () => runningSpecs(records, deployer.apps), deploying: () => queue.busy(), health: deployer.health,
    onChange: (service, h, detail) => forward('health', { service, health: h, ...detail }, detail.container),
  });
  // Before the supervisor starts anything: what containers gone during a kill -9 or a reboot left in the kernel.
  forward('network-reconciled', { ...(await engine.reconcileNetworking()) });
  o.trial?.stage('started');
  const loops: Array<Promise<void>> = [new Supervisor(engine, (e) => forward(e.type, e.detail, e.container), o.backoff).run(signal), health.run(signal)];
  // balena's supervisor API for the containers that carry its label (listens only while one exists).
  const { runSupervisorApi, systemPower } = await import('./supervisor-api/index.js');
  loops.push(runSupervisorApi({
    engine, records, apps: deployer.apps, host: o.host, version: o.version, deviceName: o.broker?.deviceId ?? os.hostname(),
    networks: await o.parts.networks(), keys: o.parts.supervisorKeys(), log: (event, detail) => log(event, detail),
    ...(o.allowPower === true && { power: systemPower((event, detail) => log(event, detail)) }),
  }, signal));

  if (o.governor !== false) {
    const { PressureGovernor } = await import('./governor/governor.js');
    const available = PressureGovernor.available(engine);
    if (available.ok) {
      const parent = engine.ensureParentCgroup();
      const governor = new PressureGovernor(engine, { config: o.governor, onEvent: (e) => forward(e.type, e.detail, e.container) });
      log('governor-started', { ...governor.config, containerBudgetBytes: board.containerBudgetBytes, parentCgroup: parent });
      loops.push(governor.run(signal));
    } else {
      log('governor-off', { why: available.why });
    }
  }

  if (o.broker) {
    const [{ connectBroker }, { MqttAgent }, telemetry, spool, { MessageIntake }, { FleetTrust }] = await Promise.all([
      import('../protocol/connection.js'), import('./mqtt/agent.js'), import('./telemetry-loop.js'), o.parts.spool(), import('./mqtt/intake.js'), import('./trust.js'),
    ]);
    const topics = new DeviceTopics(o.broker.deviceId);
    const security = o.security ?? NO_SECURITY;
    const trust = new FleetTrust(security.fleetKey, o.parts.trust());
    const intake = new MessageIntake({ deviceId: o.broker.deviceId, trust, allowUnsigned: security.allowUnsigned, policy: security.policy, now: Date.now, normalize: { stateRoot: o.stateRoot } });
    if (security.allowUnsigned) log('unsigned-deploys-allowed', { warning: 'allowUnsigned is on: anyone who can publish to this device\'s topics can deploy to it; never use it outside development' });
    if (trust.key === undefined && !security.allowUnsigned) log('fleet-key-missing', { warning: 'no fleetKey in agent.yaml: every desired state and command will be refused' });
    else if (trust.key !== undefined) log('fleet-key', { key: trust.key.id, rotated: trust.key !== security.fleetKey });
    const client = connectBroker(o.broker, topics, (delayMs, attempt) => log('broker-reconnect-scheduled', { delayMs, attempt }));
    const loop = new telemetry.TelemetryLoop({ engine, board, host: o.host, stateRoot: o.stateRoot, intervalMs: o.telemetryIntervalMs, emit: (s) => mqtt?.telemetry(s),
      onCondition: ({ kind, ...detail }) => forward(kind, detail),
    });
    const updates = new AgentUpdates({
      context: o.upgrades?.context, upgrader: o.upgrades?.upgrader, version: o.version, settled: () => queue.idle(), signal,
      log: (event, detail) => forward(event, detail), changed: () => mqtt?.stateChanged(),
    });
    mqtt = new MqttAgent({
      client, topics, engine, images, board, records, deployer, queue, spool, intake, trust, version: o.version, updates,
      log: (event, detail) => log(event, detail), setTelemetryInterval: (ms) => loop.setInterval(ms),
    });
    client.on('close', () => log('broker-disconnected', {}));
    // Confirming writes the upgrade's result: `reported` says it once the trial ends here.
    if (o.trial) client.once('connect', () => {
      o.trial?.stage('broker');
      mqtt?.stateChanged();
    });
    loops.push(loop.run(signal));
    signal.addEventListener('abort', () => void mqtt?.stop(), { once: true });
  }

  // After a reboot or a kill -9: finish an interrupted deploy, else make sure the last good one runs.
  const lastGood = records.lastGood();
  if (latest?.status === 'applying') queue.submit(deployer.apps.of(latest.desired), true);
  else if (lastGood) queue.submit(deployer.apps.of(lastGood.desired), true);
  if (o.trial) void queue.idle().then(() => o.trial?.stage('reconciled'));

  signal.addEventListener('abort', () => queue.cancel(), { once: true });
  try {
    await Promise.all(loops);
  } catch (err) {
    stopAll.abort();
    await Promise.allSettled([...loops, mqtt?.stop()]);
    throw err;
  } finally {
    await queue.idle();
  }
}
