import mqtt, { type MqttClient } from 'mqtt';
import { DeviceTopics } from '../../src/protocol/topics.js';
import type { DesiredState, ReportedState, ServiceReport, StatusMessage } from '../../src/protocol/types.js';
import { MessageIntake } from '../../src/agent/mqtt/intake.js';
import { DEFAULT_DEPLOY_POLICY } from '../../src/agent/policy.js';
import { FleetTrust } from '../../src/agent/trust.js';
import { BerthError, toBerthError } from '../../src/errors.js';
import type { FleetPublicKey } from '../../src/protocol/signing.js';
import { memoryTrustStore } from './signing.js';

/**
 * Simulated devices for fleet tests and the fleet benchmark: each is its own MQTT 5 connection that
 * speaks protocol v1 as `berth agent` does (docs/protocol.md), without containers: the same client id,
 * persistent session and last will; on connect it subscribes to `desired` and `cmd/+` and publishes
 * retained `status` and `reported`; every desired state and command passes the agent's own message
 * intake (signature, replay, schema, deploy policy: src/agent/mqtt/intake.ts), a newer desired state is reported `applying`, walked through progress phases and, after `applyMs`, reported
 * `applied` (or `rolled-back` with the previous services, when `fails` says so, or `rejected` when
 * invalid). Commands `ping` and `logs` are answered; telemetry is sent when an interval is set.
 */
export interface SimOptions {
  readonly brokerUrl: string;
  /** The fleet key the devices trust (their agent.yaml fleetKey). */
  readonly fleetKey: FleetPublicKey;
  /** Device ids: `${prefix}-${i}` for i in [0, count). */
  readonly prefix: string;
  readonly count: number;
  /** How long a deploy takes on a device (pull → applied). Default 200 ms. */
  readonly applyMs?: number;
  /** Whether this device's deploy of `desired` fails (and is rolled back). Default: images containing "missing". */
  readonly fails?: (device: string, desired: DesiredState) => boolean;
  /** Telemetry interval; 0 (default) sends none. */
  readonly telemetryMs?: number;
  /** Connections opened at once while starting. Default 100. */
  readonly connectConcurrency?: number;
  readonly profile?: string;
  /**
   * Answers `logs` as agents from before log follow did: a command with `follow` is rejected as an
   * unknown key. Default false: `follow` streams a line every 300 ms to cmd/<id>/logs until logs-stop or its lease.
   */
  readonly legacyLogs?: boolean;
}

export interface SimDevice {
  readonly id: string;
  readonly client: MqttClient;
  revision: number;
  status: ReportedState['status'];
  /** Revisions this device received, in order (for assertions). */
  readonly received: number[];
}

const now = (): string => new Date().toISOString();

export class FleetSim {
  readonly devices: SimDevice[] = [];
  private timers = new Set<NodeJS.Timeout>();

  private constructor(private readonly opts: SimOptions) {}

  /** Log follows running per device (command id → timers), for assertions: a viewer must hold at most one. */
  readonly follows = new Map<string, Map<string, { tick: NodeJS.Timeout; lease: NodeJS.Timeout }>>();

  private follow(dev: SimDevice, cmdId: string, service: string, seconds: number): { until: string } {
    const topic = new DeviceTopics(dev.id).commandLogs(cmdId);
    let n = 0;
    const tick = setInterval(() => dev.client.publish(topic, JSON.stringify({ lines: [{ time: now(), stream: 'stdout', text: `${dev.id} ${service} follow line ${++n}` }] }), { qos: 1 }), 300);
    const lease = setTimeout(() => this.stopFollow(dev, cmdId, 'expired'), seconds * 1000);
    let mine = this.follows.get(dev.id);
    if (!mine) this.follows.set(dev.id, (mine = new Map()));
    mine.set(cmdId, { tick, lease });
    return { until: new Date(Date.now() + seconds * 1000).toISOString() };
  }

  private stopFollow(dev: SimDevice, cmdId: string, end: 'stopped' | 'expired' = 'stopped'): boolean {
    const f = this.follows.get(dev.id)?.get(cmdId);
    if (!f) return false;
    clearInterval(f.tick);
    clearTimeout(f.lease);
    this.follows.get(dev.id)!.delete(cmdId);
    dev.client.publish(new DeviceTopics(dev.id).commandLogs(cmdId), JSON.stringify({ lines: [], end }), { qos: 1 });
    return true;
  }

  /** Connects every device and waits until each has published its status and reported. */
  static async start(opts: SimOptions): Promise<FleetSim> {
    const sim = new FleetSim(opts);
    const ids = Array.from({ length: opts.count }, (_, i) => `${opts.prefix}-${i}`);
    const width = opts.connectConcurrency ?? 100;
    for (let i = 0; i < ids.length; i += width) await Promise.all(ids.slice(i, i + width).map((id) => sim.connect(id)));
    return sim;
  }

  device(id: string): SimDevice {
    const d = this.devices.find((x) => x.id === id);
    if (!d) throw new Error(`no simulated device ${id}`);
    return d;
  }

  private async connect(id: string): Promise<void> {
    const topics = new DeviceTopics(id);
    const client = mqtt.connect(this.opts.brokerUrl, {
      protocolVersion: 5,
      clientId: `berth-${id}`,
      clean: false,
      properties: { sessionExpiryInterval: 7 * 24 * 3600 },
      keepalive: 30,
      connectTimeout: 30_000,
      reconnectPeriod: 1000,
      will: { topic: topics.topic('status'), payload: Buffer.from(JSON.stringify({ online: false })), qos: 1, retain: true },
    });
    const dev: SimDevice = { id, client, revision: 0, status: 'applied', received: [] };
    const intake = new MessageIntake({ deviceId: id, trust: new FleetTrust(this.opts.fleetKey, memoryTrustStore()), allowUnsigned: false, policy: DEFAULT_DEPLOY_POLICY, now: Date.now });
    let good: DesiredState | undefined;
    let services: Record<string, ServiceReport> = {};
    const publish = (t: 'status' | 'reported' | 'progress' | 'events' | 'telemetry', body: object, retain = false, qos: 0 | 1 = 1): void => {
      client.publish(topics.topic(t), JSON.stringify(body), { qos, retain });
    };
    const report = (error?: { code: string; result: number; message: string }): void => {
      const r: ReportedState = {
        revision: dev.revision, status: dev.status, ...(error && { error }), services,
        agent: { version: 'sim' }, board: { profile: this.opts.profile ?? 'sim-board', model: 'Simulated Board' }, time: now(),
      };
      publish('reported', r, true);
    };
    const servicesOf = (d: DesiredState | undefined): Record<string, ServiceReport> =>
      Object.fromEntries(Object.entries(d?.services ?? {}).map(([name, s]) => [name, { state: 'running', image: s.image, restarts: 0, oomKilled: false, health: 'none' } satisfies ServiceReport]));

    const onDesired = (payload: Buffer): void => {
      if (payload.length === 0) return;
      const taken = intake.desired(payload, () => false);
      if (taken.kind !== 'app') {
        const r = taken.kind === 'refused' && taken.authentic ? taken.revision : undefined;
        if (r !== undefined && r > dev.revision) {
          dev.revision = r;
          dev.status = 'rejected';
          const e = toBerthError((taken as { error: unknown }).error);
          report({ code: e.category, result: e.resultCode, message: e.message });
        }
        return;
      }
      const desired = taken.app.source;
      if (desired.revision <= dev.revision) return; // older or equal: ignored, as the agent does
      dev.received.push(desired.revision);
      dev.revision = desired.revision;
      dev.status = 'applying';
      report();
      const revision = desired.revision;
      for (const name of Object.keys(desired.services)) publish('progress', { revision, phase: 'pull', service: name, image: desired.services[name]!.image, time: now() }, false, 0);
      publish('progress', { revision, phase: 'await-healthy', time: now() }, false, 0);
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (dev.revision !== revision) return; // superseded
        const fails = this.opts.fails ? this.opts.fails(id, desired) : Object.values(desired.services).some((s) => s.image.includes('missing'));
        if (fails) {
          publish('progress', { revision, phase: 'rollback', time: now() }, false, 0);
          dev.status = 'rolled-back';
          services = servicesOf(good);
          const error = { code: 'notFound', result: 404, message: 'simulated: image not found' };
          report(error);
          publish('events', { kind: 'deploy-failed', revision, status: 'rolled-back', error, time: now() });
        } else {
          good = desired;
          services = servicesOf(desired);
          dev.status = 'applied';
          report();
        }
      }, this.opts.applyMs ?? 200);
      this.timers.add(timer);
    };

    client.on('message', (topic, payload) => {
      if (topic === topics.topic('desired')) return onDesired(payload);
      const cmdId = topics.commandId(topic);
      if (cmdId === undefined) return;
      let body: { action?: string; service?: string; follow?: number; session?: string } = {};
      let refused: ReturnType<typeof toBerthError> | undefined;
      try {
        body = intake.command(cmdId, payload).command;
        if (this.opts.legacyLogs && body.follow !== undefined) throw new BerthError('invalid', 'command is invalid: follow: unknown key');
      } catch (err) {
        refused = toBerthError(err);
      }
      let ok: object | undefined = refused ? undefined : body.action === 'ping' ? { pong: true } : body.action === 'logs' && body.service && services[body.service] ? { lines: [{ time: now(), stream: 'stdout', text: `${id} ${body.service} log line` }] } : undefined;
      if (ok && body.action === 'logs' && body.follow !== undefined) ok = { ...ok, follow: this.follow(dev, cmdId, body.service!, body.follow) };
      if (body.action === 'logs-stop' && !refused) ok = this.stopFollow(dev, body.session!) ? { stopped: body.session } : undefined;
      const result = ok
        ? { id: cmdId, status: 'ok', result: 200, data: ok, time: now() }
        : refused
          ? { id: cmdId, status: 'rejected', result: refused.resultCode, reason: refused.message, time: now() }
          : { id: cmdId, status: 'error', result: 404, reason: `no service "${body.service}" in the running deployment`, time: now() };
      client.publish(topics.commandResult(cmdId), JSON.stringify(result), { qos: 1 });
    });
    this.devices.push(dev);
    await new Promise<void>((resolve, reject) => {
      client.once('error', reject);
      client.on('connect', () => {
        client.off('error', reject);
        void (async () => {
          await client.subscribeAsync([topics.topic('desired'), topics.commandFilter], { qos: 1 });
          const status: StatusMessage = { online: true, time: now(), agent: { version: 'sim', pid: process.pid } };
          publish('status', status, true);
          report();
          resolve();
        })().catch(reject);
      });
    });
    if (this.opts.telemetryMs) {
      const t = setInterval(() => {
        if (client.connected) publish('telemetry', { time: now(), host: { cpu: { percent: 5 }, memory: { totalBytes: 512 << 20, availableBytes: 400 << 20, usedBytes: 112 << 20 }, temperatureC: 45.5 }, services: {}, sampleCpuUs: 1 }, false, 0);
      }, this.opts.telemetryMs);
      this.timers.add(t as unknown as NodeJS.Timeout);
    }
  }

  /** Drops a device's connection without a DISCONNECT: the broker publishes its will (offline). */
  async cut(id: string): Promise<void> {
    const d = this.device(id);
    d.client.options.reconnectPeriod = 0;
    d.client.stream.destroy();
    await d.client.endAsync(true);
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const f of [...this.follows.values()].flatMap((m) => [...m.values()])) {
      clearInterval(f.tick);
      clearTimeout(f.lease);
    }
    this.follows.clear();
    await Promise.all(this.devices.map(async (d) => {
      if (d.client.connected) await d.client.publishAsync(new DeviceTopics(d.id).topic('status'), JSON.stringify({ online: false, time: now() }), { qos: 1, retain: true }).catch(() => undefined);
      await d.client.endAsync(true).catch(() => undefined);
    }));
  }
}
