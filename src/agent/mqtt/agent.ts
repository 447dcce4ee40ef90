import type { MqttClient } from 'mqtt';
import type { BoardInfo } from '../../board/index.js';
import { BerthError, toBerthError } from '../../errors.js';
import type { ImageService } from '../../image/service.js';
import type { ContainerEngine } from '../../runtime/engine-api.js';
import type { DeploymentRecords } from '../deployments.js';
import { runCommand } from '../commands.js';
import { LogFollows } from '../log-follow.js';
import { isValidCommandId, type DeviceTopics } from '../../protocol/topics.js';
import type { AgentBundleRef, AgentReport, CommandResult, DeployStatus, ErrorInfo, StatusMessage } from '../../protocol/types.js';
import { FleetPublicKey } from '../../protocol/signing.js';
import type { FleetTrust } from '../trust.js';
import type { MessageIntake } from './intake.js';
import type { DeployEvent, Deployer } from '../reconcile/deployer.js';
import { errorInfo } from '../reconcile/deployer.js';
import type { DeployQueue } from '../reconcile/queue.js';
import { buildReported, runningServices } from '../state.js';

/** Where telemetry and events wait while the broker is unreachable (src/agent/spool.ts). */
export interface SpoolSink {
  push(kind: 'telemetry' | 'events', payload: object): void;
  peek(limit: number): Array<{ id: number; kind: string; payload: unknown }>;
  ack(ids: readonly number[]): void;
  dropped(): number;
  forgetDropped(reported: number): void;
}

export interface MqttAgentDeps {
  readonly client: MqttClient;
  readonly topics: DeviceTopics;
  readonly engine: ContainerEngine;
  readonly images: ImageService;
  readonly board: BoardInfo;
  readonly records: DeploymentRecords;
  readonly deployer: Deployer;
  readonly queue: DeployQueue;
  readonly spool: SpoolSink;
  /** Every desired state and command passes here first: signature, replay, schema, deploy policy. */
  readonly intake: MessageIntake;
  /** The fleet key the intake verifies with; rotate-key replaces it. */
  readonly trust: FleetTrust;
  readonly version: string;
  /** Self-update (src/agent/upgrade/updates.ts): `reported.agent`, and a desired state's agent bundle. */
  readonly updates?: { report(): AgentReport; request(bundle: AgentBundleRef): void };
  readonly log: (event: string, detail: Record<string, unknown>) => void;
  readonly setTelemetryInterval: (ms: number) => void;
}

/**
 * The MQTT front end of the agent: desired in, reported/status/progress/events out, commands answered.
 * Every received payload is validated first (protocol/validate.ts; a desired state is also normalized
 * into the app model, src/compose/, once); a bad one is answered (a rejected
 * `reported` or command result, with the reason) and never reaches the reconciler.
 */
export class MqttAgent {
  private replaying = false;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: () => void;
  private readonly follows: LogFollows;

  constructor(private readonly d: MqttAgentDeps) {
    const { client, topics } = d;
    this.follows = new LogFollows(
      (id, message) => client.publish(topics.commandLogs(id), JSON.stringify(message), { qos: 1 }),
      (id, err) => d.log('log-follow-error', { id, error: toBerthError(err).message }),
    );
    // Every container change (start, exit, removal, freeze…) is one `reported` again, whoever made it.
    this.unsubscribe = d.engine.subscribe(() => this.stateChanged());
    client.on('connect', () => void this.onConnect());
    client.on('message', (topic, payload) => {
      try {
        if (topic === topics.topic('desired')) this.onDesired(payload);
        else {
          const id = topics.commandId(topic);
          if (id !== undefined) void this.onCommand(id, payload);
        }
      } catch (err) {
        d.log('message-error', { topic, error: toBerthError(err).message });
      }
    });
    client.on('error', (err) => d.log('broker-error', { error: err.message }));
  }

  private async onConnect(): Promise<void> {
    // A connect that completes while the agent stops must not report: the store may be closed already.
    if (this.stopping) return;
    const { client, topics, log } = this.d;
    log('broker-connected', {});
    // Subscribing again on every connect makes the broker resend the retained desired state.
    await client.subscribeAsync([topics.topic('desired'), topics.commandFilter], { qos: 1 }).catch((err: Error) => log('subscribe-error', { error: err.message }));
    const status: StatusMessage = { online: true, time: new Date().toISOString(), agent: { version: this.d.version, pid: process.pid } };
    this.publish('status', status, { retain: true });
    this.report();
    await this.replaySpool();
  }

  private onDesired(payload: Buffer): void {
    const { queue, records, log } = this.d;
    if (payload.length === 0) return; // a cleared retained message: nothing to deploy
    // The retained message comes again on every (re)connect: a revision already handled is passed over
    // before its signature is checked (it may be a retired key's), a deploy of it under way goes on.
    const handled = (revision: number): boolean => {
      const known = records.get(revision);
      return known !== undefined && (known.status !== 'applying' || queue.has(revision));
    };
    // Checked, verified and normalized here, once: the queue, the deployer and the reporter get the model.
    const taken = this.d.intake.desired(payload, handled);
    if (taken.kind === 'skip') {
      log('desired-ignored', { revision: taken.revision, reason: `revision already ${records.get(taken.revision)?.status ?? 'handled'}` });
      return;
    }
    if (taken.kind === 'refused') {
      const { revision, authentic } = taken;
      const error = errorInfo(taken.error);
      log('desired-rejected', { revision, error: error.message });
      if (authentic && revision !== undefined && revision > this.newest()) {
        // A revision newer than any the device knows of: recorded and reported rejected. It does not
        // count as seen: only a valid desired state moves what later deploys must be newer than, so
        // one bad message (with revision 2^31 − 1, say) cannot make every later deploy look old.
        records.reject(revision, error, Date.now());
        this.report({ revision, status: 'rejected', error });
      } else {
        // No usable revision, one not newer than what `reported` already says, or a message the fleet's
        // key does not vouch for: reporting it would move the retained `reported` backwards or let anyone
        // write it. Keep it about the real state, say it as an event.
        this.event({ kind: 'desired-rejected', ...(revision !== undefined && { revision }), error });
      }
      return;
    }
    const { app } = taken;
    if (handled(app.revision)) {
      log('desired-ignored', { revision: app.revision, reason: `revision already ${records.get(app.revision)!.status}` });
      return;
    }
    const newest = this.newest();
    if (queue.submit(app, records.get(app.revision)?.status === 'applying')) {
      // Once per accepted revision: the retained message that comes again after a restart is skipped above.
      if (app.source.agent) this.d.updates?.request(app.source.agent);
    } else {
      // Signed by the fleet but older than what the device has: a replay, or a stale retained message.
      const error = errorInfo(new BerthError('auth', `revision ${app.revision} is not newer than revision ${newest}: a replayed or stale desired state`));
      log('desired-rejected', { revision: app.revision, error: error.message });
      this.event({ kind: 'desired-rejected', revision: app.revision, error });
    }
  }

  /** The newest revision the device knows of: received (queued or recorded), valid or not. */
  private newest(): number {
    return Math.max(this.d.queue.newest(), this.d.records.latest()?.revision ?? 0);
  }

  private async onCommand(id: string, payload: Buffer): Promise<void> {
    const { topics, engine, images, client } = this.d;
    if (!isValidCommandId(id)) return; // cannot even name a result topic for it
    let result: CommandResult;
    try {
      const { command, signed } = this.d.intake.command(id, payload);
      const data = command.action === 'rotate-key' ? this.rotateKey(command.key!, signed) : await runCommand(command, {
        engine, images, setTelemetryInterval: this.d.setTelemetryInterval, commandId: id, follows: this.follows,
        serviceContainer: (service) => this.serviceContainer(service),
      });
      result = { id, status: 'ok', result: 200, data, time: new Date().toISOString() };
    } catch (err) {
      const e = toBerthError(err);
      // Refused before it ran (malformed, unsigned, mis-signed, replayed): rejected; failed while running: error.
      const refused = e.category === 'invalid' || e.category === 'usage' || e.category === 'auth';
      if (e.category === 'auth') this.d.log('command-rejected', { id, error: e.message });
      result = { id, status: refused ? 'rejected' : 'error', result: e.resultCode, reason: e.message, time: new Date().toISOString() };
    }
    client.publish(topics.commandResult(id), JSON.stringify(result), { qos: 1 });
  }

  /** rotate-key: from now on only the new key's signatures count (docs/protocol.md#key-rotation). */
  private rotateKey(key: string, signed: boolean): { key: string; previous?: string } {
    if (!signed) throw new BerthError('auth', 'rotate-key must be signed with the key this device trusts now');
    const next = FleetPublicKey.fromBase64(key, 'rotate-key key');
    const previous = this.d.trust.key?.id;
    this.d.trust.rotate(next, Date.now());
    this.d.log('fleet-key-rotated', { key: next.id, previous });
    return { key: next.id, ...(previous !== undefined && { previous }) };
  }

  /** The container of a service as `reported` shows it. */
  private serviceContainer(service: string): string | undefined {
    return runningServices(this.d.engine, this.d.records, this.d.deployer.apps).find((s) => s.name === service)?.container?.id;
  }

  /** Deploy progress and outcomes from the reconciler. */
  onDeployEvent(e: DeployEvent): void {
    if (e.type === 'progress') this.publish('progress', { ...e, type: undefined, time: new Date().toISOString() }, { qos: 0 });
    else if (e.type === 'status') {
      // A superseded revision is reported too, so whoever follows it sees it end; the newer one's
      // `applying` comes right after.
      this.report({ revision: e.revision, status: e.status, ...(e.error && { error: e.error }) });
      if (e.status === 'failed' || e.status === 'rolled-back') this.event({ kind: 'deploy-failed', revision: e.revision, status: e.status, error: e.error });
    } else if (e.type === 'warning') this.event({ kind: 'deploy-warning', revision: e.revision, message: e.message });
    else this.report();
  }

  /**
   * A container changed state (an engine event) or a service's health did: `reported` again, once for a
   * burst of changes, so the retained state never lags the board by more than a moment.
   */
  stateChanged(): void {
    // Once stopping, no more: the store closes right after (an upgrade's restart reports a change then).
    if (this.reportTimer !== undefined || this.stopping) return;
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined;
      if (this.d.client.connected && !this.stopping) this.report();
    }, 250);
    this.reportTimer.unref();
  }

  report(override?: { revision: number; status: DeployStatus; error?: ErrorInfo }): void {
    const { engine, records, board, version, deployer, updates } = this.d;
    this.publish('reported', buildReported(engine, records, deployer.apps, board, updates?.report() ?? version, deployer.health, override), { retain: true });
  }

  /** An event (OOM kill, crash loop, governor action …): published, or spooled while offline. */
  event(payload: Record<string, unknown>): void {
    const msg = { ...payload, time: new Date().toISOString() };
    if (this.d.client.connected && !this.replaying) this.publish('events', msg, { qos: 1 });
    else this.d.spool.push('events', msg);
  }

  /** A telemetry sample: live at QoS 0, or spooled while offline and replayed at QoS 1. */
  telemetry(sample: object): void {
    if (this.d.client.connected && !this.replaying) this.publish('telemetry', sample, { qos: 0 });
    else this.d.spool.push('telemetry', sample);
  }

  /** Replays the spool in order, oldest first, acknowledging each batch only after the broker did. */
  private async replaySpool(): Promise<void> {
    const { spool, client, topics, log } = this.d;
    if (this.replaying) return;
    this.replaying = true;
    try {
      const dropped = spool.dropped();
      if (dropped > 0) {
        await client.publishAsync(topics.topic('events'), JSON.stringify({ kind: 'spool-dropped', dropped, time: new Date().toISOString() }), { qos: 1 });
        spool.forgetDropped(dropped);
      }
      let replayed = 0;
      for (;;) {
        const batch = spool.peek(50);
        if (batch.length === 0 || !client.connected) break;
        for (const row of batch) {
          await client.publishAsync(topics.topic(row.kind === 'events' ? 'events' : 'telemetry'), JSON.stringify({ ...(row.payload as object), replayed: true }), { qos: 1 });
        }
        spool.ack(batch.map((r) => r.id));
        replayed += batch.length;
      }
      if (replayed > 0) log('spool-replayed', { messages: replayed, dropped });
    } catch (err) {
      log('spool-replay-error', { error: (err as Error).message });
    } finally {
      this.replaying = false;
    }
  }

  private publish(t: 'status' | 'reported' | 'progress' | 'events' | 'telemetry', payload: object, opts: { retain?: boolean; qos?: 0 | 1 } = {}): void {
    const { client, topics, log } = this.d;
    client.publish(topics.topic(t), JSON.stringify(payload), { qos: opts.qos ?? 1, retain: opts.retain ?? false }, (err) => {
      if (err) log('publish-error', { topic: t, error: err.message });
    });
  }

  /** Idempotent: the abort signal and a failing loop may both stop the agent. */
  stop(): Promise<void> {
    this.stopped ??= this.stopOnce();
    return this.stopped;
  }

  private async stopOnce(): Promise<void> {
    this.stopping = true;
    this.unsubscribe();
    this.follows.stopAll();
    clearTimeout(this.reportTimer);
    const status: StatusMessage = { online: false, time: new Date().toISOString() };
    await this.d.client.publishAsync(this.d.topics.topic('status'), JSON.stringify(status), { qos: 1, retain: true }).catch(() => undefined);
    await this.d.client.endAsync().catch(() => undefined);
  }
}
