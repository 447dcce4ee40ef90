// Broker security as shipped: a real mosquitto configured from scripts/mosquitto/berth.conf and the
// shipped scripts/mosquitto/acl, with credentials made by the shipped scripts/provision/*.sh. Proves
// each device is confined to berth/v1/<its id>/# (password and mTLS), anonymous and wrong
// credentials are refused, the operator user reaches every device, and retained state survives a
// restart. Everything on loopback; every script runs into a private temp dir.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, ErrorWithReasonCode, type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isValidDeviceId } from '../../src/protocol/topics.js';
import { REPO } from '../helpers/dist.js';
import { startMosquitto, type MosquittoInstance, type MosquittoOptions } from '../helpers/services/mosquitto.js';

const PROVISION = join(REPO, 'scripts/provision');
const BERTH_CONF = join(REPO, 'scripts/mosquitto/berth.conf');
const ACL = join(REPO, 'scripts/mosquitto/acl');
const OPERATOR = 'berth-fleet';
const A = 'pi-a';
const B = 'pi-b.lab';
const topic = (device: string, t: string): string => `berth/v1/${device}/${t}`;
/** How long "nothing arrived" is watched after the control message did (bounded, not a timing claim). */
const GRACE_MS = 300;
const WAIT_MS = 15_000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a shipped provisioning script; never throws on a non-zero exit. */
function script(name: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(join(PROVISION, name), args, { cwd }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function provision(name: string, args: string[], cwd: string): Promise<string> {
  const r = await script(name, args, cwd);
  if (r.code !== 0) throw new Error(`${name} ${args.join(' ')} exited ${r.code}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

// --- berth.conf as the test broker's config -------------------------------------------------------

/** Directives of berth.conf; `commented` holds the "#name value" lines (the documented mTLS option). */
async function readBerthConf(): Promise<{ active: Map<string, string[]>; commented: Map<string, string> }> {
  const active = new Map<string, string[]>();
  const commented = new Map<string, string>();
  for (const raw of (await readFile(BERTH_CONF, 'utf8')).split('\n')) {
    const line = raw.trim();
    const off = /^#([a-z_]+) (\S+)$/.exec(line);
    if (off?.[1] && off[2]) commented.set(off[1], off[2]);
    if (!line || line.startsWith('#')) continue;
    const [name = '', ...rest] = line.split(/\s+/);
    active.set(name, [...(active.get(name) ?? []), rest.join(' ')]);
  }
  return { active, commented };
}

/**
 * Options the test helper writes itself (with temp paths, a loopback port, stderr logging, running
 * as the test's user); berth.conf's values for them are checked below. Everything else in berth.conf
 * is passed through verbatim.
 */
const HELPER_OWNED = new Set([
  'listener', 'cafile', 'certfile', 'keyfile', 'require_certificate', 'use_identity_as_username',
  'allow_anonymous', 'password_file', 'acl_file', 'persistence', 'persistence_location',
  'user', 'pid_file', 'log_dest', 'log_type', 'connection_messages',
]);

interface Paths {
  dir: string;
  ca: string;
  brokerCrt: string;
  brokerKey: string;
  passwd: string;
  password: (user: string) => Promise<string>;
  cert: (user: string) => Promise<{ cert: Buffer; key: Buffer }>;
  rogueCert: (user: string) => Promise<{ cert: Buffer; key: Buffer }>;
}

async function startBerthBroker(paths: Paths, mode: 'password' | 'mtls', persistenceDir: string): Promise<MosquittoInstance> {
  const { active, commented } = await readBerthConf();
  const one = (name: string): string => {
    const v = active.get(name);
    if (v?.length !== 1 || v[0] === undefined) throw new Error(`berth.conf: expected one "${name}", found ${JSON.stringify(v)}`);
    return v[0];
  };
  // The helper re-creates these; hold berth.conf to what the test assumes it says.
  expect(one('listener')).toBe('8883');
  expect(one('allow_anonymous')).toBe('false');
  expect(one('acl_file')).toBe('/etc/mosquitto/berth/acl');
  expect(one('password_file')).toBe('/etc/mosquitto/berth/passwd');
  expect([one('cafile'), one('certfile'), one('keyfile')]).toEqual(['ca.crt', 'broker.crt', 'broker.key'].map((f) => `/etc/mosquitto/berth/${f}`));
  expect(one('persistence')).toBe('true');
  expect(active.has('use_identity_as_username')).toBe(false);
  // Option A is active; option B (mTLS) is the two commented lines.
  const requireCertificate = mode === 'mtls' ? commented.get('require_certificate') : one('require_certificate');
  const useIdentity = mode === 'mtls' ? commented.get('use_identity_as_username') : 'false';
  expect([requireCertificate, useIdentity]).toEqual(mode === 'mtls' ? ['true', 'true'] : ['false', 'false']);

  const extraConfig = [...active].filter(([name]) => !HELPER_OWNED.has(name)).flatMap(([name, values]) => values.map((v) => `${name} ${v}`));
  const opts: MosquittoOptions = {
    allowAnonymous: one('allow_anonymous') === 'true',
    passwordFile: paths.passwd,
    aclFile: ACL,
    tls: {
      cafile: paths.ca,
      certfile: paths.brokerCrt,
      keyfile: paths.brokerKey,
      requireCertificate: requireCertificate === 'true',
      useIdentityAsUsername: useIdentity === 'true',
    },
    persistenceDir,
    extraConfig,
  };
  return startMosquitto(opts);
}

async function provisionAll(): Promise<Paths> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-broker-sec-'));
  await provision('fleet-ca.sh', ['--ca', 'ca'], dir);
  await provision('broker-cert.sh', ['--ca', 'ca', '--out', 'broker', '127.0.0.1', '::1', 'localhost'], dir);
  await provision('device-credentials.sh', ['--password', '--out', 'pw', '--operator', A, B], dir);
  await provision('device-credentials.sh', ['--cert', '--ca', 'ca', '--out', 'certs', '--operator', A, B], dir);
  // An attacker's own CA, issuing a certificate that claims to be device B.
  await provision('fleet-ca.sh', ['--ca', 'rogue-ca', '--name', 'not the fleet'], dir);
  await provision('device-credentials.sh', ['--cert', '--ca', 'rogue-ca', '--out', 'rogue', B], dir);
  const certOf = (sub: string) => async (user: string) => ({
    cert: await readFile(join(dir, sub, `${user}.crt`)),
    key: await readFile(join(dir, sub, `${user}.key`)),
  });
  return {
    dir,
    ca: join(dir, 'ca/ca.crt'),
    brokerCrt: join(dir, 'broker/broker.crt'),
    brokerKey: join(dir, 'broker/broker.key'),
    passwd: join(dir, 'pw/passwd'),
    password: async (user) => (await readFile(join(dir, 'pw', `${user}.password`), 'utf8')).trim(),
    cert: certOf('certs'),
    rogueCert: certOf('rogue'),
  };
}

// --- MQTT 5 clients -------------------------------------------------------------------------------

interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

interface Session {
  client: MqttClient;
  connack: IConnackPacket;
  /** Every message received, in order. */
  messages: Received[];
  closed: Promise<void>;
}

const sessions: MqttClient[] = [];
let seq = 0;

/** Connects and resolves on CONNACK; rejects on a refusal, a TLS failure or a close before CONNACK. */
function open(url: string, opts: IClientOptions): Promise<Session> {
  return new Promise((resolve, reject) => {
    const client = connect(url, {
      protocolVersion: 5,
      clientId: `berth-sec-${process.pid}-${++seq}`,
      reconnectPeriod: 0,
      connectTimeout: WAIT_MS,
      ...opts,
    });
    sessions.push(client);
    const messages: Received[] = [];
    client.on('message', (t, payload, packet) => messages.push({ topic: t, payload: payload.toString(), retain: packet.retain }));
    const closed = new Promise<void>((r) => client.once('close', () => r()));
    let connected = false;
    // Errors after CONNACK (a dropped connection) surface as 'close'; an unheard 'error' would throw.
    client.on('error', (err) => {
      if (connected) return;
      client.end(true);
      reject(err);
    });
    void closed.then(() => {
      if (!connected) reject(new Error(`connection to ${url} closed before CONNACK`));
    });
    client.once('connect', (connack) => {
      connected = true;
      resolve({ client, connack, messages, closed });
    });
  });
}

async function waitFor(s: Session, what: string, pred: (m: Received) => boolean, logs: () => string): Promise<Received> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const hit = s.messages.find(pred);
    if (hit) return hit;
    if (Date.now() > deadline) {
      throw new Error(`no ${what} within ${WAIT_MS} ms; got ${JSON.stringify(s.messages)}\n--- broker ---\n${logs()}`);
    }
    await sleep(20);
  }
}

/** Publishes QoS 1; 'refused' when the broker answered with an error reason code (MQTT 5 PUBACK). */
async function tryPublish(s: Session, t: string, payload: string, retain: boolean): Promise<'accepted' | 'refused'> {
  try {
    await s.client.publishAsync(t, payload, { qos: 1, retain });
    return 'accepted';
  } catch (err) {
    if (err instanceof ErrorWithReasonCode) return 'refused';
    throw err;
  }
}

async function trySubscribe(s: Session, filters: string[]): Promise<void> {
  try {
    await s.client.subscribeAsync(filters, { qos: 1 });
  } catch (err) {
    // A refused subscription is as good as a granted one that delivers nothing.
    if (!(err instanceof ErrorWithReasonCode)) throw err;
  }
}

function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message} (code ${String((err as { code?: unknown }).code)})` : String(err);
}

/** Tries each connect; fails the test if one is accepted, else returns [what, error] per attempt. */
async function refusals(url: string, attempts: Record<string, IClientOptions>): Promise<Array<[string, Error]>> {
  const out: Array<[string, Error]> = [];
  for (const [what, opts] of Object.entries(attempts)) {
    const s = await open(url, opts).catch((err: unknown) => err);
    if (!(s instanceof Error)) throw new Error(`${what}: the broker accepted the connection`);
    out.push([what, s]);
  }
  return out;
}

// --- The shared scenarios (password and mTLS) -----------------------------------------------------

interface World {
  broker: () => MosquittoInstance;
  /** Connects as the operator / as a device with that mode's credentials. */
  as: (user: string) => Promise<Session>;
}

/** The current retained value of `t`, read by a fresh operator session. */
async function retained(w: World, t: string): Promise<string> {
  const op = await w.as(OPERATOR);
  try {
    await op.client.subscribeAsync(t, { qos: 1 });
    return (await waitFor(op, `retained message on ${t}`, (m) => m.topic === t && m.retain, () => w.broker().logs())).payload;
  } finally {
    await op.client.endAsync(true);
  }
}

/**
 * Proves `observer` received nothing under berth/v1/<victim>/: the operator publishes a control
 * message on the observer's own command topic after everything else, and once it has arrived
 * (delivery is in order from one publisher, and retained messages go out right after SUBACK) plus
 * a grace period, nothing of the victim's may be among the messages.
 */
async function expectNothingOf(w: World, observer: Session, observerId: string, victim: string): Promise<void> {
  const control = topic(observerId, `cmd/control-${randomUUID()}`);
  const op = await w.as(OPERATOR);
  try {
    await op.client.publishAsync(control, 'control', { qos: 1 });
  } finally {
    await op.client.endAsync(true);
  }
  await waitFor(observer, `control message on ${control}`, (m) => m.topic === control, () => w.broker().logs());
  await sleep(GRACE_MS);
  expect(observer.messages.filter((m) => m.topic.startsWith(`berth/v1/${victim}/`))).toEqual([]);
}

function deviceConfinementTests(w: World): void {
  it('lets a device read its own retained desired and write its own reported', async () => {
    const desired = JSON.stringify({ revision: 1, services: { web: { image: 'nginx:alpine' } } });
    const op = await w.as(OPERATOR);
    await op.client.publishAsync(topic(A, 'desired'), desired, { qos: 1, retain: true });

    const a = await w.as(A);
    await a.client.subscribeAsync(topic(A, 'desired'), { qos: 1 });
    const got = await waitFor(a, "A's desired", (m) => m.topic === topic(A, 'desired'), () => w.broker().logs());
    expect(got).toEqual({ topic: topic(A, 'desired'), payload: desired, retain: true });

    const reported = JSON.stringify({ revision: 1, status: 'applied', from: A });
    expect(await tryPublish(a, topic(A, 'reported'), reported, true)).toBe('accepted');
    expect(await retained(w, topic(A, 'reported'))).toBe(reported);
  });

  it("never delivers another device's retained desired or live messages, whatever it subscribes to", async () => {
    const bDesired = JSON.stringify({ revision: 7, services: {}, secret: `only for ${B}` });
    const op = await w.as(OPERATOR);
    await op.client.publishAsync(topic(B, 'desired'), bDesired, { qos: 1, retain: true });
    // B's retained desired is really there (read by the operator), so silence below means something.
    expect(await retained(w, topic(B, 'desired'))).toBe(bDesired);

    const a = await w.as(A);
    await trySubscribe(a, [topic(B, 'desired'), `berth/v1/${B}/#`, 'berth/v1/+/desired', 'berth/v1/#', '#']);
    // And a live message for B while A listens everywhere it could.
    await op.client.publishAsync(topic(B, 'cmd/live-1'), 'for B only', { qos: 1 });
    await expectNothingOf(w, a, A, B);
  });

  it("cannot write another device's reported or desired", async () => {
    const bReported = JSON.stringify({ revision: 7, status: 'applied', from: B });
    const b = await w.as(B);
    expect(await tryPublish(b, topic(B, 'reported'), bReported, true)).toBe('accepted');
    const bDesired = await retained(w, topic(B, 'desired'));
    await b.client.subscribeAsync(`berth/v1/${B}/#`, { qos: 1 });
    await waitFor(b, "B's own retained desired", (m) => m.topic === topic(B, 'desired'), () => w.broker().logs());

    const a = await w.as(A);
    // Refused (MQTT 5 PUBACK "not authorized") or dropped: either way neither stored nor delivered.
    const outcomes = [
      await tryPublish(a, topic(B, 'reported'), JSON.stringify({ revision: 666, status: 'applied', from: A }), true),
      await tryPublish(a, topic(B, 'desired'), JSON.stringify({ revision: 666, services: { evil: { image: 'x' } } }), true),
      await tryPublish(a, topic(B, 'cmd/evil'), JSON.stringify({ type: 'restart' }), false),
    ];
    expect(outcomes.every((o) => o === 'accepted' || o === 'refused')).toBe(true);

    expect(await retained(w, topic(B, 'reported'))).toBe(bReported);
    expect(await retained(w, topic(B, 'desired'))).toBe(bDesired);
    // B's live view saw none of A's attempts (its own retained desired and reported only).
    await expectNothingOf(w, b, B, A);
    const seen = b.messages.filter((m) => !m.topic.startsWith(topic(B, 'cmd/control-'))).map((m) => [m.topic, m.payload]);
    expect(seen.sort()).toEqual([
      [topic(B, 'desired'), bDesired],
      [topic(B, 'reported'), bReported],
    ]);
  });

  it('is read-only on its own desired and cmd/<id>: a device credential cannot deploy to its own device (issue 18)', async () => {
    const op = await w.as(OPERATOR);
    const aDesired = JSON.stringify({ revision: 9, services: {}, set: 'by the operator' });
    await op.client.publishAsync(topic(A, 'desired'), aDesired, { qos: 1, retain: true });
    expect(await retained(w, topic(A, 'desired'))).toBe(aDesired);
    // Another session of A listens to its own subtree: nothing A publishes there may arrive.
    const listener = await w.as(A);
    await listener.client.subscribeAsync(`berth/v1/${A}/#`, { qos: 1 });
    await waitFor(listener, "A's own retained desired", (m) => m.topic === topic(A, 'desired'), () => w.broker().logs());

    const a = await w.as(A);
    const outcomes = [
      await tryPublish(a, topic(A, 'desired'), JSON.stringify({ revision: 10, services: { root: { image: 'x', volumes: ['/:/host'] } } }), true),
      await tryPublish(a, topic(A, 'desired'), '', true), // clearing the retained one is writing too
      await tryPublish(a, topic(A, 'cmd/self-1'), JSON.stringify({ action: 'prune' }), false),
    ];
    expect(outcomes.every((o) => o === 'accepted' || o === 'refused')).toBe(true);
    expect(await retained(w, topic(A, 'desired'))).toBe(aDesired);
    // What the agent does publish still goes through, and arrives after A's refused attempts would have.
    const result = JSON.stringify({ id: 'self-1', status: 'ok', result: 200 });
    expect(await tryPublish(a, topic(A, 'cmd/self-1/result'), result, false)).toBe('accepted');
    await waitFor(listener, "A's command result", (m) => m.topic === topic(A, 'cmd/self-1/result'), () => w.broker().logs());
    await sleep(GRACE_MS);
    // (A's retained reported from an earlier test arrives too; what matters is desired and cmd/.)
    const fleetSide = listener.messages.filter((m) => m.topic === topic(A, 'desired') || m.topic.startsWith(topic(A, 'cmd/')));
    expect(fleetSide.map((m) => [m.topic, m.payload])).toEqual([[topic(A, 'desired'), aDesired], [topic(A, 'cmd/self-1/result'), result]]);
  });

  it('publishes nothing the fleet reads except under its own id (device → fleet messages are unsigned: SECURITY.md)', async () => {
    // The operator's view, as berth fleet subscribes: everything under berth/v1/.
    const op = await w.as(OPERATOR);
    await op.client.subscribeAsync('berth/v1/#', { qos: 1 });
    const nonce = randomUUID();
    const forged = JSON.stringify({ from: A, nonce });
    const a = await w.as(A);
    const targets = [
      ...['reported', 'status', 'progress', 'events', 'telemetry', 'cmd/op-1/result'].map((k) => topic(B, k)),
      topic(`${A}x`, 'reported'), // a lookalike id
      'berth/v1/_fleet/sync/berth-fleet', 'berth/v1/reported', topic(A, 'unknown-kind'),
    ];
    for (const t of targets) expect(await tryPublish(a, t, forged, false), t).toMatch(/^(accepted|refused)$/);
    // A's own status goes through after them (one publisher's messages arrive in order): the session was live.
    const own = JSON.stringify({ online: true, nonce });
    expect(await tryPublish(a, topic(A, 'status'), own, false)).toBe('accepted');
    await waitFor(op, "A's own status", (m) => m.topic === topic(A, 'status') && m.payload === own, () => w.broker().logs());
    await sleep(GRACE_MS);
    expect(op.messages.filter((m) => m.payload.includes(nonce)).map((m) => m.topic)).toEqual([topic(A, 'status')]);
  });

  it('lets the operator user read and write every device', async () => {
    const op = await w.as(OPERATOR);
    await op.client.subscribeAsync('berth/v1/+/reported', { qos: 1 });
    const a = await waitFor(op, "A's reported", (m) => m.topic === topic(A, 'reported'), () => w.broker().logs());
    const b = await waitFor(op, "B's reported", (m) => m.topic === topic(B, 'reported'), () => w.broker().logs());
    expect([JSON.parse(a.payload).from, JSON.parse(b.payload).from]).toEqual([A, B]);
    for (const d of [A, B]) {
      const desired = JSON.stringify({ revision: 8, services: {}, to: d });
      expect(await tryPublish(op, topic(d, 'desired'), desired, true)).toBe('accepted');
      expect(await retained(w, topic(d, 'desired'))).toBe(desired);
    }
  });
}

/**
 * Registers the hooks of one describe: provisions into a temp dir, starts the broker in `mode`
 * (persistence in the temp dir), and tears everything down. Values are read after beforeAll ran.
 */
function berthBrokerSuite(mode: 'password' | 'mtls') {
  const st = {} as { paths: Paths; ca: Buffer; persist: string; broker: MosquittoInstance };
  const as = async (user: string): Promise<Session> =>
    open(st.broker.url, mode === 'mtls' ? { ca: st.ca, ...(await st.paths.cert(user)) } : { ca: st.ca, username: user, password: await st.paths.password(user) });
  const world: World = { broker: () => st.broker, as };
  beforeAll(async () => {
    st.paths = await provisionAll();
    st.ca = await readFile(st.paths.ca);
    st.persist = join(st.paths.dir, 'persist');
    await mkdir(st.persist);
    st.broker = await startBerthBroker(st.paths, mode, st.persist);
  });
  afterAll(async () => {
    await Promise.all(sessions.splice(0).map((c) => c.endAsync(true)));
    await st.broker?.stop();
    if (st.paths) await rm(st.paths.dir, { recursive: true, force: true });
  });
  return {
    st,
    as,
    world,
    /** Stops the broker (mosquitto saves its database) and starts a new one on the same persistence dir. */
    async restart(): Promise<void> {
      await Promise.all(sessions.splice(0).map((c) => c.endAsync(true)));
      await st.broker.stop();
      st.broker = await startBerthBroker(st.paths, mode, st.persist);
    },
  };
}

// --- Password over TLS (berth.conf as shipped) ----------------------------------------------------

describe('broker security: passwords over TLS (berth.conf option A)', () => {
  const { st, as, world, restart } = berthBrokerSuite('password');

  it('serves MQTT 5 over TLS with a server certificate from broker-cert.sh and announces the packet limit', async () => {
    expect(st.broker.url).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    const a = await as(A);
    // The client verified the broker's certificate (ca.crt, SAN 127.0.0.1): rejectUnauthorized is on.
    expect(a.connack.reasonCode).toBe(0);
    const { active } = await readBerthConf();
    expect(a.connack.properties?.maximumPacketSize).toBe(Number(active.get('max_packet_size')?.[0]));
    expect(a.connack.properties?.maximumPacketSize).toBe(256 * 1024);
  });

  deviceConfinementTests(world);

  it('refuses anonymous clients, wrong passwords, one device posing as another, and plain MQTT', async () => {
    const { ca, paths } = st;
    const attempts: Record<string, IClientOptions> = {
      anonymous: { ca },
      'wrong password': { ca, username: A, password: 'not-the-password' },
      "B's password as A": { ca, username: A, password: await paths.password(B) },
      'unknown user': { ca, username: 'pi-z', password: await paths.password(A) },
    };
    for (const [what, err] of await refusals(st.broker.url, attempts)) {
      // 134 bad user name or password / 135 not authorized, in the CONNACK.
      expect(err, what).toBeInstanceOf(ErrorWithReasonCode);
      expect([134, 135], `${what}: ${describeError(err)}`).toContain((err as ErrorWithReasonCode).code);
    }
    // No plain-text MQTT on the TLS listener.
    const [plain] = (await refusals(st.broker.url.replace('mqtts:', 'mqtt:'), { plain: { username: A, password: await paths.password(A) } })).map(([, e]) => e);
    expect(describeError(plain)).toMatch(/closed before CONNACK|ECONNRESET|EPIPE/);
  });

  it('disconnects a client that sends a packet above max_packet_size, which is not stored', async () => {
    const before = await retained(world, topic(A, 'reported'));
    const a = await as(A);
    const big = 'x'.repeat(300 * 1024);
    a.client.publishAsync(topic(A, 'reported'), big, { qos: 1, retain: true }).catch(() => undefined);
    await a.closed;
    expect(await retained(world, topic(A, 'reported'))).toBe(before);
  });

  it('keeps retained desired and reported across a broker restart (persistence)', async () => {
    const desiredA = await retained(world, topic(A, 'desired'));
    const reportedB = await retained(world, topic(B, 'reported'));
    await restart();
    expect(await readdir(st.persist)).toContain('mosquitto.db');

    const a = await as(A);
    await a.client.subscribeAsync(topic(A, 'desired'), { qos: 1 });
    expect((await waitFor(a, "A's desired after restart", (m) => m.topic === topic(A, 'desired'), () => st.broker.logs())).payload).toBe(desiredA);
    expect(await retained(world, topic(B, 'reported'))).toBe(reportedB);
  });
});

// --- mTLS (berth.conf option B) -------------------------------------------------------------------

describe('broker security: mTLS, client certificate CN = device id (berth.conf option B)', () => {
  const { st, world } = berthBrokerSuite('mtls');

  deviceConfinementTests(world);

  it("uses the certificate's CN, not the user name a client claims", async () => {
    expect(await retained(world, topic(B, 'desired'))).toContain('revision');
    // A's certificate, claiming to be the operator in CONNECT: still only A.
    const a = await open(st.broker.url, { ca: st.ca, ...(await st.paths.cert(A)), username: OPERATOR, password: 'whatever' });
    await trySubscribe(a, [topic(B, 'desired'), '#']);
    await expectNothingOf(world, a, A, B);
  });

  it('refuses clients without a certificate, with a certificate from another CA, and password users', async () => {
    const { ca, paths } = st;
    const attempts: Record<string, IClientOptions> = {
      'no certificate': { ca },
      "a rogue CA's certificate for B": { ca, ...(await paths.rogueCert(B)) },
      'a password user': { ca, username: A, password: await paths.password(A) },
    };
    for (const [what, err] of await refusals(st.broker.url, attempts)) {
      // Refused during the TLS handshake, not because nothing was listening.
      expect(describeError(err), what).not.toMatch(/ECONNREFUSED/);
    }
  });
});

// --- The provisioning scripts themselves ----------------------------------------------------------

describe('provisioning scripts', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-provision-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('accept exactly the device ids isValidDeviceId accepts, and write nothing for an invalid one', async () => {
    const ids = ['a', 'Pi4', 'pi-3.b_c', 'x'.repeat(128), '', '-lead', '.dot', '_u', 'a/b', 'a+b', 'a#', 'a b', 'x'.repeat(129), 'ä', 'a\nb', 'a*'];
    for (const id of ids) {
      const out = `ids-${randomUUID()}`;
      const r = await script('device-credentials.sh', ['--out', out, 'valid-too', '--', id], dir);
      expect(r.code === 0, `${JSON.stringify(id)}: ${r.stderr}`).toBe(isValidDeviceId(id));
      if (r.code !== 0) {
        expect(r.stderr).toMatch(/invalid device id|no device ids/);
        // Validated before anything is written: not even the valid id before it got credentials.
        expect(await readdir(join(dir, out)).catch(() => [])).toEqual([]);
      }
    }
  });

  it("refuse the operator's user name as a device id and ids with ':' for passwords", async () => {
    const op = await script('device-credentials.sh', ['--out', 'ops', OPERATOR], dir);
    expect(op.code).not.toBe(0);
    expect(op.stderr).toMatch(/operator/);
    const colon = await script('device-credentials.sh', ['--out', 'colon', 'pi:1'], dir);
    expect(colon.code).not.toBe(0);
    expect(colon.stderr).toMatch(/--cert/);
    expect(isValidDeviceId('pi:1')).toBe(true);
  });

  it('make the fleet CA once and never overwrite it', async () => {
    await provision('fleet-ca.sh', ['--ca', 'ca'], dir);
    const key = await readFile(join(dir, 'ca/ca.key'));
    const crt = await readFile(join(dir, 'ca/ca.crt'));
    expect((await stat(join(dir, 'ca/ca.key'))).mode & 0o777).toBe(0o600);

    const again = await script('fleet-ca.sh', ['--ca', 'ca', '--name', 'another CA'], dir);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already exists.*not overwriting/);
    expect(await readFile(join(dir, 'ca/ca.key'))).toEqual(key);
    expect(await readFile(join(dir, 'ca/ca.crt'))).toEqual(crt);

    // A half-present CA is refused too, and left as it is.
    await rm(join(dir, 'ca/ca.crt'));
    const partial = await script('fleet-ca.sh', ['--ca', 'ca'], dir);
    expect(partial.code).not.toBe(0);
    expect(partial.stderr).toMatch(/refusing to overwrite/);
    expect(await readFile(join(dir, 'ca/ca.key'))).toEqual(key);
    expect(await readdir(join(dir, 'ca'))).toEqual(['ca.key']);
  });

  it('write 0600 credentials and keep them when run again', async () => {
    await provision('fleet-ca.sh', ['--ca', 'ca2'], dir);
    await provision('device-credentials.sh', ['--out', 'pw', 'dev1'], dir);
    await provision('device-credentials.sh', ['--cert', '--ca', 'ca2', '--out', 'certs', 'dev1'], dir);
    const files = ['pw/dev1.password', 'pw/passwd', 'certs/dev1.key', 'certs/dev1.crt'];
    const before = await Promise.all(files.map((f) => readFile(join(dir, f))));
    for (const f of files) expect((await stat(join(dir, f))).mode & 0o777, f).toBe(0o600);

    await provision('device-credentials.sh', ['--out', 'pw', 'dev1'], dir);
    await provision('device-credentials.sh', ['--cert', '--ca', 'ca2', '--out', 'certs', 'dev1'], dir);
    expect(await Promise.all(files.map((f) => readFile(join(dir, f))))).toEqual(before);
    expect((await readFile(join(dir, 'pw/passwd'), 'utf8')).split('\n').filter((l) => l.startsWith('dev1:'))).toHaveLength(1);
  });
});
