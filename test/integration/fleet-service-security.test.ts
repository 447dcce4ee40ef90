import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBerth } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';
import { FleetSim } from '../helpers/fleet-sim.js';
import { api, createToken, startService, type ServiceProcess } from '../helpers/fleet-service.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { testFleetKey } from '../helpers/signing.js';

// `berth fleet serve`'s security surface (issue 21): the headers on every response, TLS through a private
// CA the test makes (`berth fleet deploy --server-ca`), and token management (API and CLI). Loopback only.

const fleetKey = testFleetKey();
let broker: MosquittoInstance;
/** The plain-HTTP service's own broker: two services on one broker would split the devices' messages (one share group). */
let broker2: MosquittoInstance;
let registry: RegistryInstance;
let sim: FleetSim;
/** A device of the plain-HTTP service (on broker2), for the log follow stream. */
let plainSim: FleetSim;
let dir: string;
/** The HTTPS service's data (the devices' rollouts) and the plain one's (the token API): one SQLite database per service. */
let data: string;
let plainData: string;
let plain: ServiceProcess;
let tls: ServiceProcess;
/** Tokens of the plain service. */
let tokens: { read: string; deploy: string; admin: string };
/** Tokens of the HTTPS service. */
let tlsTokens: { deploy: string; admin: string };
let ca: string;
let otherCa: string;

/** A CA and a server certificate it signs for 127.0.0.1 (openssl, as an operator would make them). */
function makeCa(name: string): { caCert: string; cert: string; key: string } {
  const f = (n: string): string => path.join(dir, `${name}-${n}`);
  const ossl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
  ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', `/CN=${name} test CA`);
  ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(f('ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  ossl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '1', '-extfile', f('ext'));
  return { caCert: f('ca.crt'), cert: f('server.crt'), key: f('server.key') };
}

beforeAll(async () => {
  requireBuilt();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fleet-sec-'));
  data = path.join(dir, 'data');
  plainData = path.join(dir, 'data-plain');
  fleetKey.writePrivate(dir);
  fs.writeFileSync(path.join(dir, 'fleet.yaml'), 'signingKey: fleet-key.key\n');
  [broker, broker2, registry] = await Promise.all([startMosquitto(), startMosquitto(), startRegistry()]);
  await pushBusyboxImage(registry, 'sec/web', 'v1', { arches: ['amd64'] });
  [sim, plainSim] = await Promise.all([
    FleetSim.start({ brokerUrl: broker.url, fleetKey: fleetKey.key.publicKey, prefix: 'sec', count: 1, applyMs: 100 }),
    FleetSim.start({ brokerUrl: broker2.url, fleetKey: fleetKey.key.publicKey, prefix: 'psec', count: 1, applyMs: 100 }),
  ]);
  const pki = makeCa('fleet');
  ca = pki.caCert;
  otherCa = makeCa('other').caCert;
  const fleetFile = ['--fleet-file', path.join(dir, 'fleet.yaml')];
  [plain, tls] = await Promise.all([
    startService(['--data', plainData, '--broker', broker2.url, ...fleetFile]),
    startService(['--data', data, '--broker', broker.url, ...fleetFile, '--tls-cert', pki.cert, '--tls-key', pki.key]),
  ]);
  tokens = { read: await createToken('read', plainData), deploy: await createToken('deploy', plainData), admin: await createToken('admin', plainData) };
  tlsTokens = { deploy: await createToken('deploy', data), admin: await createToken('admin', data) };
}, 120_000);

afterAll(async () => {
  await Promise.all([plain?.stop(), tls?.stop()]);
  await Promise.all([sim?.stop(), plainSim?.stop()]);
  await Promise.all([broker?.stop(), broker2?.stop(), registry?.stop()]);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('fleet service security', () => {
  it('sends a strict CSP and the other security headers on every response; HSTS only under TLS', async () => {
    const answers = await Promise.all([
      api(plain.url, 'GET', '/'), api(plain.url, 'GET', '/app.js'), api(plain.url, 'GET', '/missing.js'),
      api(plain.url, 'GET', '/api/v1/devices'), api(plain.url, 'GET', '/api/v1/devices', { token: tokens.read }),
      api(plain.url, 'GET', '/metrics', { token: tokens.read }), api(plain.url, 'POST', '/api/v1/login', { body: { token: 'berth_wrong' } }),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 404, 401, 200, 200, 401]);
    for (const { headers } of answers) {
      const csp = headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
      expect(headers.get('x-content-type-options')).toBe('nosniff');
      expect(headers.get('referrer-policy')).toBe('no-referrer');
      expect(headers.get('x-frame-options')).toBe('DENY');
      expect(headers.get('strict-transport-security')).toBeNull();
    }
    // The dashboard's page has no inline script for the CSP to block: only the bundled /app.js.
    const index = answers[0]!.body as string;
    expect(index).toMatch(/<script type="module" src="\/app\.js"><\/script>/);
    expect(index).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(index).not.toMatch(/\son[a-z]+=/i);

    const secure = await new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
      import('node:https').then(({ get }) => get(`${tls.url}/`, { ca: fs.readFileSync(ca) }, (res) => {
        res.resume();
        resolve(res.headers);
      }).on('error', reject), reject);
    });
    expect(secure['strict-transport-security']).toBe('max-age=31536000');
    expect(secure['content-security-policy']).toContain("frame-ancestors 'none'");
  });

  it('berth fleet deploy --server-ca trusts a private CA; without it, or with another CA, the TLS failure is named', async () => {
    const file = path.join(dir, 'compose.yaml');
    fs.writeFileSync(file, `services:\n  web:\n    image: ${registry.host}/sec/web:v1\n    command: ["sleep", "3600"]\n`);
    const deploy = (...extra: string[]) => runBerth(['fleet', 'deploy', file, '--server', tls.url, '--device', 'sec-0', '--json', ...extra], { BERTH_FLEET_TOKEN: tlsTokens.deploy });

    const untrusted = await deploy();
    expect(untrusted.code).toBe(7);
    expect(untrusted.stderr).toContain(`TLS to the fleet service ${tls.url} failed`);
    expect(untrusted.stderr).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    expect(untrusted.stderr).toContain('--server-ca');

    const wrongCa = await deploy('--server-ca', otherCa);
    expect(wrongCa.code).toBe(7);
    expect(wrongCa.stderr).toContain(`TLS to the fleet service ${tls.url} failed`);
    expect(wrongCa.stderr).toContain(otherCa);

    const notPem = path.join(dir, 'not-a-ca.pem');
    fs.writeFileSync(notPem, 'hello\n');
    const bad = await deploy('--server-ca', notPem);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain(`--server-ca ${notPem}: no PEM certificate`);
    const missing = await deploy('--server-ca', path.join(dir, 'nope.pem'));
    expect(missing.stderr).toContain('cannot read --server-ca');
    const plainWithCa = await runBerth(['fleet', 'deploy', file, '--server', plain.url, '--server-ca', ca, '--device', 'sec-0'], { BERTH_FLEET_TOKEN: tokens.deploy });
    expect(plainWithCa.code).toBe(2);
    expect(plainWithCa.stderr).toContain('--server-ca is for an https:// service');

    const ok = await deploy('--server-ca', ca);
    expect(ok.code, ok.stderr).toBe(0);
    const rollout = JSON.parse(ok.stdout);
    expect(rollout.images.web).toMatch(/@sha256:[0-9a-f]{64}$/);
    await expect.poll(() => sim.device('sec-0').received, { timeout: 30_000 }).toEqual([1]);
  });

  it('lists, creates and revokes tokens for admins only, never showing a secret', async () => {
    const list = await api(plain.url, 'GET', '/api/v1/tokens', { token: tokens.admin });
    expect(list.status).toBe(200);
    expect(list.body.tokens.map((t: any) => t.scope)).toEqual(['read', 'deploy', 'admin']);
    for (const t of list.body.tokens) expect(Object.keys(t).sort()).toEqual(['createdAt', 'id', 'lastUsedAt', 'name', 'scope']);
    expect(JSON.stringify(list.body)).not.toContain('berth_');
    // The read token was used (the headers test); a use is recorded, the deploy token's is not.
    expect(list.body.tokens.find((t: any) => t.scope === 'read').lastUsedAt).not.toBeNull();
    expect(list.body.tokens.find((t: any) => t.scope === 'deploy').lastUsedAt).toBeNull();

    for (const t of [tokens.read, tokens.deploy]) {
      expect((await api(plain.url, 'GET', '/api/v1/tokens', { token: t })).status).toBe(403);
      expect((await api(plain.url, 'POST', '/api/v1/tokens', { token: t, body: { scope: 'admin' } })).status).toBe(403);
    }
    const badScope = await api(plain.url, 'POST', '/api/v1/tokens', { token: tokens.admin, body: { scope: 'root' } });
    expect(badScope.status).toBe(400);
    expect(badScope.body.error.message).toContain('"scope" takes read, deploy, admin');

    const made = await api(plain.url, 'POST', '/api/v1/tokens', { token: tokens.admin, body: { scope: 'read', name: 'grafana' } });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ scope: 'read', name: 'grafana', lastUsedAt: null });
    expect(made.body.token).toMatch(/^berth_/);
    expect((await api(plain.url, 'GET', '/api/v1/devices', { token: made.body.token })).status).toBe(200);
    // A dashboard session of the token ends with it.
    const login = await api(plain.url, 'POST', '/api/v1/login', { body: { token: made.body.token } });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    expect((await api(plain.url, 'GET', '/api/v1/session', { headers: { cookie } })).status).toBe(200);

    // The CLI on the database: ls, then revoke.
    const ls = await runBerth(['fleet', 'token', 'ls', '--data', plainData]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(new RegExp(`^${made.body.id}\\s+read\\s+grafana\\s+\\S+\\s+20\\d\\d-\\S+$`, 'm'));
    expect(ls.stdout).not.toContain('berth_');
    const revoked = await runBerth(['fleet', 'token', 'revoke', made.body.id, '--data', plainData]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await api(plain.url, 'GET', '/api/v1/devices', { token: made.body.token })).status).toBe(401);
    expect((await api(plain.url, 'GET', '/api/v1/session', { headers: { cookie } })).status).toBe(401);
    const again = await runBerth(['fleet', 'token', 'revoke', made.body.id, '--data', plainData]);
    expect(again.code).toBe(4);
    expect(again.stderr).toContain(`no token ${made.body.id}`);
    const both = await runBerth(['fleet', 'token', 'ls', '--data', plainData, '--server', plain.url]);
    expect(both.code).toBe(2);
  });

  it('follows logs as one session per caller: deploy scope, CSRF for cookies, logs-stop when the caller leaves', async () => {
    const created = await api(plain.url, 'POST', '/api/v1/rollouts', { token: tokens.deploy, body: { compose: `services:\n  web:\n    image: ${registry.host}/sec/web:v1\n`, devices: ['psec-0'] } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    await expect.poll(() => plainSim.device('psec-0').received, { timeout: 30_000 }).toEqual([1]);
    await expect.poll(() => plainSim.device('psec-0').status, { timeout: 10_000 }).toBe('applied');
    const follow = '/api/v1/devices/psec-0/logs/follow';
    expect((await api(plain.url, 'POST', follow, { token: tokens.read, body: { service: 'web' } })).status).toBe(403);
    expect((await api(plain.url, 'POST', follow, { token: tokens.deploy, body: {} })).body.error.message).toContain('"service" is required');
    expect((await api(plain.url, 'POST', '/api/v1/devices/nope/logs/follow', { token: tokens.deploy, body: { service: 'web' } })).status).toBe(404);
    const login = await api(plain.url, 'POST', '/api/v1/login', { body: { token: tokens.deploy } });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    expect((await api(plain.url, 'POST', follow, { headers: { cookie }, body: { service: 'web' } })).status).toBe(403);

    const ac = new AbortController();
    const res = await fetch(`${plain.url}${follow}`, { method: 'POST', signal: ac.signal, headers: { cookie, 'x-csrf-token': login.body.csrfToken, 'content-type': 'application/json' }, body: JSON.stringify({ service: 'web', tail: 10 }) });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    while ((text.match(/follow line/g) ?? []).length < 3) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    expect(text, text).toMatch(/^event: mode\ndata: \{"mode":"follow"\}$/m);
    expect(text).toContain('psec-0 web log line');
    // One device follow for this caller, ended on the device once the caller goes.
    expect(plainSim.follows.get('psec-0')?.size).toBe(1);
    ac.abort();
    await expect.poll(() => plainSim.follows.get('psec-0')?.size ?? 0, { timeout: 10_000 }).toBe(0);
  });

  it('berth fleet token ls and revoke through the API over TLS, with an admin token only', async () => {
    const ls = (token: string) => runBerth(['fleet', 'token', 'ls', '--server', tls.url, '--server-ca', ca, '--json'], { BERTH_FLEET_TOKEN: token });
    const before = await ls(tlsTokens.admin);
    expect(before.code, before.stderr).toBe(0);
    const listed = JSON.parse(before.stdout) as Array<{ id: string; scope: string; lastUsedAt: string | null }>;
    expect(listed.map((t) => t.scope)).toEqual(['deploy', 'admin']);
    const deployId = listed[0]!.id;
    const denied = await ls(tlsTokens.deploy);
    expect(denied.code).toBe(11);
    expect(denied.stderr).toContain('scope admin');
    const revoke = (token: string) => runBerth(['fleet', 'token', 'revoke', deployId, '--server', tls.url, '--server-ca', ca], { BERTH_FLEET_TOKEN: token });
    expect((await revoke(tlsTokens.deploy)).code).toBe(11);
    const r = await revoke(tlsTokens.admin);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(deployId);
    const after = JSON.parse((await ls(tlsTokens.admin)).stdout) as Array<{ id: string }>;
    expect(after.map((t) => t.id)).not.toContain(deployId);
    expect((await ls(tlsTokens.deploy)).stderr).toContain('not valid');
  });
});
