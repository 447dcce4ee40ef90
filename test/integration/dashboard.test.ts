import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DESKTOP, hasHorizontalScroll, pageErrors, PHONE, TestBrowser } from '../helpers/browser.js';
import { runBerth } from '../helpers/berth-cli.js';
import { REPO, requireBuilt } from '../helpers/dist.js';
import { FleetSim } from '../helpers/fleet-sim.js';
import { createToken, startService, type ServiceProcess } from '../helpers/fleet-service.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { testFleetKey } from '../helpers/signing.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

// The dashboard end to end (issue 21): real headless Chromium (Debian's, driven by playwright-core) against a
// real `berth fleet serve` on loopback, a real mosquitto and registry, and simulated devices
// (test/helpers/fleet-sim.ts). Screenshots are kept in test-results/dashboard/ (gitignored).

const fleetKey = testFleetKey();
let broker: MosquittoInstance;
let registry: RegistryInstance;
let sim: FleetSim;
let zero: FleetSim;
let late: FleetSim | undefined;
let dir: string;
let service: ServiceProcess;
let base: string;
let token: string;
let adminToken: string;
let browser: TestBrowser;
let desktop: BrowserContext;
let page: Page;
let errors: string[];
let image: string;
/** The rollout page the deploy test ended on (the phone test visits it again). */
let rolloutHash: string;

beforeAll(async () => {
  requireBuilt();
  if (!fs.existsSync(path.join(REPO, 'dist/web/index.html'))) throw new Error('dist/web/ is missing: run `npm run build` (scripts/bundle-web.mjs)');
  [broker, registry] = await Promise.all([startMosquitto(), startRegistry()]);
  await pushBusyboxImage(registry, 'dash/app', 'v1', { arches: ['amd64'] });
  image = `${registry.host}/dash/app:v1`;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-dashboard-'));
  fleetKey.writePrivate(dir);
  fs.writeFileSync(path.join(dir, 'fleet.yaml'), 'signingKey: fleet-key.key\ndevices:\n  dash-0: {groups: [canary], labels: {site: lab}}\n  dash-1: {labels: {site: roof}}\n');
  // Three boards of one profile, one Pi Zero: the profile filter has something to tell apart.
  sim = await FleetSim.start({ brokerUrl: broker.url, fleetKey: fleetKey.key.publicKey, prefix: 'dash', count: 3, applyMs: 300, telemetryMs: 500 });
  zero = await FleetSim.start({ brokerUrl: broker.url, fleetKey: fleetKey.key.publicKey, prefix: 'zero', count: 1, profile: 'pi-zero-w', telemetryMs: 500 });

  const data = path.join(dir, 'data');
  service = await startService(['--data', data, '--broker', broker.url, '--fleet-file', path.join(dir, 'fleet.yaml')]);
  base = service.url;
  token = await createToken('deploy', data);
  adminToken = await createToken('admin', data);

  browser = await TestBrowser.launch('dashboard');
  desktop = await browser.context(DESKTOP, base);
  page = await desktop.newPage();
  errors = pageErrors(page);
  await watchCsp(page);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await service?.stop();
  await Promise.all([sim?.stop(), zero?.stop(), late?.stop()]);
  await Promise.all([broker?.stop(), registry?.stop()]);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * Records the page's Content-Security-Policy violations in window.__csp (an init script runs through the
 * DevTools protocol, outside the page's CSP): the dashboard must work under the policy with none.
 */
async function watchCsp(p: Page): Promise<void> {
  await p.addInitScript(`window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));`);
}
const cspViolations = (p: Page): Promise<string[]> => p.evaluate('window.__csp') as Promise<string[]>;

/** The ids in the fleet table, in order. */
const tableIds = (p: Page): Promise<string[]> => p.locator('#fleet-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-device') ?? ''));
const row = (p: Page, id: string) => p.locator(`#fleet-table tr[data-device="${id}"]`);

/** Fills the deploy form: a one-service compose file for the three sim-board devices (`sleep` differs per deploy). */
async function fillDeploy(name: string, sleep: string): Promise<void> {
  await page.goto('/#/deploy');
  await page.fill('#compose', `services:\n  web:\n    image: ${image}\n    command: ["sleep", "${sleep}"]\n`);
  await page.fill('#name', name);
  await page.selectOption('#target', 'group');
  await page.fill('#group', 'profile:sim-board');
}

describe('the fleet dashboard in Chromium', () => {
  it('asks for a login first; a wrong token is refused, a right one opens the fleet', async () => {
    const anonymous = await fetch(`${base}/api/v1/devices`);
    expect(anonymous.status).toBe(401);
    await page.goto('/');
    await page.locator('#login').waitFor();
    expect(await page.locator('#fleet-table').count()).toBe(0);
    await page.fill('#token', 'not-a-token');
    await page.click('#login button[type=submit]');
    await page.locator('#login-error').waitFor();
    await browser.screenshot(page, 'login-refused');
    await page.fill('#token', token);
    await page.click('#login button[type=submit]');
    await page.locator('#fleet-table').waitFor();
    // The session is an HttpOnly cookie: the page's script cannot read it.
    const cookies = await desktop.cookies();
    expect(cookies.find((c) => c.name === 'berth_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(await page.evaluate('document.cookie')).not.toContain('berth_session');
    // A deploy session has no Tokens page in its menu.
    expect(await page.locator('header nav a', { hasText: 'Tokens' }).count()).toBe(0);
  });

  it('runs under a strict Content-Security-Policy with no violation, and the policy does block inline script', async () => {
    const res = await page.goto('/');
    const csp = (await res!.allHeaders())['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    await page.locator('#fleet-table').waitFor();
    expect(await cspViolations(page)).toEqual([]);
    // The watch can fail: an injected inline script is refused and reported.
    await page.evaluate(`(() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.body.append(s); })()`);
    await expect.poll(() => cspViolations(page)).toEqual([expect.stringMatching(/^script-src\S* inline$/)]);
    expect(await page.evaluate('window.__inline')).toBeUndefined();
    // Chromium logs the refusal as a console error too: this one was the test's own doing.
    await expect.poll(() => errors.length).toBeGreaterThan(0);
    errors.splice(0, errors.length, ...errors.filter((e) => !e.includes('Content Security Policy')));
    await page.reload();
    await page.locator('#fleet-table').waitFor();
  });

  it('lists the simulated devices and follows them live, without reloading', async () => {
    await page.locator('#live.on').waitFor();
    await expect.poll(() => tableIds(page), { timeout: 15_000 }).toEqual(['dash-0', 'dash-1', 'dash-2', 'zero-0']);
    await expect.poll(() => row(page, 'dash-0').locator('.online').getAttribute('data-online')).toBe('true');
    // Telemetry reached the table (the simulated boards report 5 % CPU, 45.5 °C).
    await expect.poll(() => row(page, 'dash-1').textContent(), { timeout: 10_000 }).toContain('45.5 °C');
    await page.evaluate('window.__notReloaded = true');

    // Another board profile: the deploy below goes to profile:sim-board, and this one is cut (offline) next.
    late = await FleetSim.start({ brokerUrl: broker.url, fleetKey: fleetKey.key.publicKey, prefix: 'late', count: 1, profile: 'late-board' });
    await expect.poll(() => tableIds(page), { timeout: 15_000 }).toContain('late-0');
    await late.cut('late-0');
    await expect.poll(() => row(page, 'late-0').locator('.online').getAttribute('data-online'), { timeout: 15_000 }).toBe('false');
    expect(await page.evaluate('window.__notReloaded')).toBe(true);
    await browser.screenshot(page, 'fleet-table');
  });

  it('filters by board profile, group and label through the menus', async () => {
    await page.selectOption('#f-profile', 'pi-zero-w');
    await expect.poll(() => tableIds(page)).toEqual(['zero-0']);
    expect(page.url()).toContain('profile=pi-zero-w');
    await browser.screenshot(page, 'fleet-filtered');
    await page.selectOption('#f-profile', '');
    await page.selectOption('#f-group', 'canary');
    await expect.poll(() => tableIds(page)).toEqual(['dash-0']);
    await page.selectOption('#f-group', '');
    await page.selectOption('#f-label', 'site=roof');
    await expect.poll(() => tableIds(page)).toEqual(['dash-1']);
    await page.selectOption('#f-label', '');
    await expect.poll(() => tableIds(page)).toHaveLength(5);
  });

  it('pages the fleet table through the API instead of loading the whole list', async () => {
    const asked: string[] = [];
    const onRequest = (r: { url(): string }): void => {
      const u = new URL(r.url());
      if (u.pathname === '/api/v1/devices') asked.push(u.search);
    };
    page.on('request', onRequest);
    await page.goto('/#/?limit=2');
    await expect.poll(() => tableIds(page)).toEqual(['dash-0', 'dash-1']);
    expect(await page.locator('#fleet-first').count()).toBe(0);
    await page.click('#fleet-next');
    await expect.poll(() => tableIds(page)).toEqual(['dash-2', 'late-0']);
    expect(page.url()).toContain('after=dash-1');
    await page.click('#fleet-next');
    await expect.poll(() => tableIds(page)).toEqual(['zero-0']);
    expect(await page.locator('#fleet-next').count()).toBe(0);
    // The fleet's size comes from the filters endpoint, not from the page.
    await expect.poll(() => page.locator('#fleet-count').textContent(), { timeout: 10_000 }).toContain('the fleet: 5, 4 online');
    // A filter starts again at the first page, filtered by the service.
    await page.selectOption('#f-group', 'canary');
    await expect.poll(() => tableIds(page)).toEqual(['dash-0']);
    expect(page.url()).not.toContain('after=');
    expect(await page.locator('#fleet-first').count()).toBe(0);
    page.off('request', onRequest);
    // Every list read asked for a page: none loaded the whole fleet.
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.every((q) => new URLSearchParams(q).get('limit') === '2'), asked.join(' ')).toBe(true);
    await page.goto('/');
    await expect.poll(() => tableIds(page)).toHaveLength(5);
  });

  it('shows a device with telemetry charts that have data points', async () => {
    await row(page, 'dash-0').locator('a').click();
    await page.locator('h1', { hasText: 'dash-0' }).waitFor();
    const cpu = page.locator('.chart[data-chart="CPU"]');
    await expect.poll(async () => Number(await cpu.getAttribute('data-points')), { timeout: 15_000 }).toBeGreaterThan(1);
    // uPlot drew it: a canvas with the chart's size.
    const box = await cpu.locator('canvas').boundingBox();
    expect(box!.width).toBeGreaterThan(150);
    expect(box!.height).toBeGreaterThan(100);
    await browser.screenshot(page, 'device');
  });

  it('deploys a compose file from the page; the rollout page follows it to the end', async () => {
    await fillDeploy('ui-deploy', '3600');
    await browser.screenshot(page, 'deploy-form');
    await page.click('#deploy-form button[type=submit]');
    await page.waitForURL(/#\/rollouts\/[^/]+$/);
    rolloutHash = new URL(page.url()).hash;
    const progress = page.locator('#rollout-progress');
    await expect.poll(() => progress.getAttribute('data-state'), { timeout: 30_000 }).toBe('completed');
    expect(await progress.getAttribute('data-done')).toBe('100');
    expect(await page.locator('#rollout-devices tr[data-outcome="applied"]').count()).toBe(3);
    // The tag was resolved once: the page shows the pinned digest the devices were sent.
    expect(await page.locator('dl.facts').textContent()).toMatch(new RegExp(`${registry.host}/dash/app(:v1)?@sha256:[0-9a-f]{64}`));
    for (const d of ['dash-0', 'dash-1', 'dash-2']) expect(sim.device(d).received).toEqual([1]);
    expect(zero.device('zero-0').received).toEqual([]);
    await browser.screenshot(page, 'rollout-done');
  });

  it('pauses, resumes and cancels a paced rollout from its page', async () => {
    await fillDeploy('paced', '7200');
    // One device a minute: the first goes at once, the other two wait long enough to act on.
    await page.fill('#rate', '1/min');
    await page.click('#deploy-form button[type=submit]');
    await page.waitForURL(/#\/rollouts\/[^/]+$/);
    const progress = page.locator('#rollout-progress');
    await expect.poll(() => progress.locator('#rollout-counts').textContent(), { timeout: 15_000 }).toContain('1 applied');
    await progress.locator('button:has-text("pause")').click();
    await expect.poll(() => progress.getAttribute('data-state')).toBe('paused');
    await progress.locator('button:has-text("resume")').click();
    await expect.poll(() => progress.getAttribute('data-state')).toBe('running');
    await progress.locator('button:has-text("cancel")').click();
    await expect.poll(() => progress.getAttribute('data-state')).toBe('cancelled');
    await expect.poll(() => page.locator('#rollout-devices tr[data-outcome="not-sent"]').count()).toBe(2);
    expect(await progress.locator('button').count()).toBe(0);
    await browser.screenshot(page, 'rollout-cancelled');
  });

  it('sends a command and follows a service\'s logs from the device page', async () => {
    await page.goto('/#/devices/dash-0');
    await page.locator('#commands select option[value="web"]').waitFor({ state: 'attached' });
    await page.click('#commands button:has-text("ping")');
    await expect.poll(() => page.locator('#command-result').textContent(), { timeout: 15_000 }).toBe('ping: ok');
    await page.check('#logs input[type=checkbox]');
    // One follow session: the service sent one `logs` command with follow and relays the lines the device
    // streams (the simulated device: one every 300 ms), appended as they come; no command is repeated.
    const lines = async (): Promise<string[]> => ((await page.locator('#logs pre').textContent()) ?? '').split('\n').filter(Boolean);
    await expect.poll(async () => (await lines()).length, { timeout: 15_000 }).toBeGreaterThan(4);
    expect(sim.follows.get('dash-0')?.size).toBe(1);
    const got = await lines();
    expect(got[0]).toMatch(/dash-0 web log line$/);
    const numbers = got.slice(1).map((l) => Number(/follow line (\d+)$/.exec(l)?.[1]));
    expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i));
    await page.uncheck('#logs input[type=checkbox]');
    // Unchecking ends the session on the device (logs-stop).
    await expect.poll(() => sim.follows.get('dash-0')?.size ?? 0, { timeout: 10_000 }).toBe(0);
    await browser.screenshot(page, 'device-commands-logs');
  });

  it('lets an admin list, create and revoke tokens; the secret is shown once', async () => {
    const admin = await browser.context(DESKTOP, base);
    try {
      const p = await admin.newPage();
      const adminErrors = pageErrors(p);
      await watchCsp(p);
      await p.goto('/');
      await p.fill('#token', adminToken);
      await p.click('#login button[type=submit]');
      await p.click('header nav a:has-text("Tokens")');
      await p.waitForURL(/#\/tokens$/);
      const rows = p.locator('#tokens tbody tr');
      await expect.poll(() => rows.count(), { timeout: 10_000, message: 'the token table' }).toBe(2);
      const listed = (await p.locator('#tokens').textContent()) ?? '';
      expect(listed).toContain('deploy');
      expect(listed).toContain('admin');
      expect(listed).not.toContain('berth_');
      await p.selectOption('#token-scope', 'read');
      await p.fill('#token-name', 'wall-screen');
      await p.click('#token-form button[type=submit]');
      const secret = await p.locator('#token-secret').inputValue();
      expect(secret).toMatch(/^berth_/);
      await expect.poll(() => rows.count()).toBe(3);
      const row = p.locator('#tokens tbody tr', { hasText: 'wall-screen' });
      expect(await row.textContent()).toContain('never');
      expect((await fetch(`${base}/api/v1/devices`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(200);
      await browser.screenshot(p, 'tokens');
      p.once('dialog', (d) => void d.accept());
      await row.locator('button:has-text("revoke")').click();
      await expect.poll(() => rows.count()).toBe(2);
      expect(await p.locator('#token-made').count()).toBe(0);
      expect((await fetch(`${base}/api/v1/devices`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(401);
      expect(await cspViolations(p)).toEqual([]);
      expect(adminErrors).toEqual([]);
    } finally {
      await admin.close();
    }
    // A deploy session asking for the page directly is told it needs admin, and the API refuses it.
    await page.goto('/#/tokens');
    await page.locator('main', { hasText: 'needs an admin session' }).waitFor();
  });

  it('falls back to asking again when the agent predates log follow', async () => {
    const old = await FleetSim.start({ brokerUrl: broker.url, fleetKey: fleetKey.key.publicKey, prefix: 'old', count: 1, legacyLogs: true });
    try {
      const r = await fetch(`${base}/api/v1/rollouts`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ compose: `services:\n  web:\n    image: ${image}\n`, devices: ['old-0'] }) });
      expect(r.status).toBe(201);
      await page.goto('/#/devices/old-0');
      await page.locator('#logs select option[value="web"]').waitFor({ state: 'attached', timeout: 20_000 });
      await page.check('#logs input[type=checkbox]');
      await expect.poll(() => page.locator('#logs-note').textContent(), { timeout: 15_000 }).toContain('asking again every 3 s');
      await expect.poll(async () => ((await page.locator('#logs pre').textContent()) ?? '').split('\n').filter(Boolean).length, { timeout: 15_000 }).toBeGreaterThan(0);
      await page.uncheck('#logs input[type=checkbox]');
    } finally {
      await old.stop();
    }
  });

  it('pages a rollout of more devices than one page and filters it by outcome', async () => {
    // 120 more boards (ids between old-0 and zero-0, so the fleet's first page is unchanged), every tenth rolled back.
    const wide = await FleetSim.start({ brokerUrl: broker.url, fleetKey: fleetKey.key.publicKey, prefix: 'wide', count: 120, profile: 'wide-board', applyMs: 50, fails: (d) => Number(d.slice(5)) % 10 === 0 });
    try {
      const file = path.join(dir, 'wide.yaml');
      fs.writeFileSync(file, `services:\n  web:\n    image: ${image}\n    command: ["sleep", "60"]\n`);
      await expect.poll(async () => (await (await fetch(`${base}/api/v1/device-filters`, { headers: { authorization: `Bearer ${token}` } })).json() as { groups: string[] }).groups, { timeout: 20_000 })
        .toContain('profile:wide-board');
      // Created through `berth fleet deploy --server`: the service answers with one page (100) and `next`;
      // --json still prints every device, reading the further pages.
      const made = await runBerth(['fleet', 'deploy', file, '--server', base, '--group', 'profile:wide-board', '--json'], { BERTH_FLEET_TOKEN: token });
      expect(made.code, made.stderr).toBe(0);
      const rollout = JSON.parse(made.stdout) as { id: string; devices: Array<{ device: string; seq: number }>; next?: unknown };
      expect(rollout.devices.map((d) => d.seq)).toEqual(Array.from({ length: 120 }, (_, i) => i));
      expect(rollout.next).toBeUndefined();
      await page.goto(`/#/rollouts/${rollout.id}`);
      const progress = page.locator('#rollout-progress');
      await expect.poll(() => progress.getAttribute('data-state'), { timeout: 60_000 }).toBe('completed');
      const rows = page.locator('#rollout-devices tbody tr');
      const shown = (): Promise<string[]> => rows.evaluateAll((trs) => trs.map((r) => r.getAttribute('data-device') ?? ''));
      await expect.poll(() => rows.count()).toBe(100);
      const first = await shown();
      await page.click('#rollout-next');
      await expect.poll(() => rows.count()).toBe(20);
      const second = await shown();
      expect(new Set([...first, ...second]).size).toBe(120);
      expect(await page.locator('#rollout-next').count()).toBe(0);
      await browser.screenshot(page, 'rollout-page-2');
      await page.click('#rollout-prev');
      await expect.poll(shown).toEqual(first);
      // By outcome: the twelve rolled back, on one page, then the applied ones from the first page again.
      await page.selectOption('#rollout-outcome', 'rolled-back');
      await expect.poll(() => rows.count()).toBe(12);
      expect(await rows.evaluateAll((trs) => trs.every((r) => r.getAttribute('data-outcome') === 'rolled-back'))).toBe(true);
      expect((await shown()).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `wide-${i * 10}`).sort());
      expect(await page.locator('#rollout-next').count()).toBe(0);
      await browser.screenshot(page, 'rollout-rolled-back');
      await page.selectOption('#rollout-outcome', 'applied');
      await expect.poll(() => rows.count()).toBe(100);
      expect(await rows.evaluateAll((trs) => trs.every((r) => r.getAttribute('data-outcome') === 'applied'))).toBe(true);
      await page.click('#rollout-next');
      await expect.poll(() => rows.count()).toBe(8);
      await page.selectOption('#rollout-outcome', '');
      await expect.poll(() => rows.count()).toBe(100);
      expect(await page.locator('#rollout-prev').count()).toBe(0);
      // A rollout created with no `limit` answers with the first page and `next` (after the first ended: a newer rollout would supersede it).
      const again = await fetch(`${base}/api/v1/rollouts`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ compose: `services:\n  web:\n    image: ${image}\n    command: ["sleep", "61"]\n`, group: 'profile:wide-board', rate: '1/min' }) });
      const answer = await again.json() as { id: string; counts: { total: number }; devices: unknown[]; next: number | null };
      expect(again.status).toBe(201);
      expect(answer.counts.total).toBe(120);
      expect(answer.devices).toHaveLength(100);
      expect(answer.next).toBe(99);
      const cancelled = await fetch(`${base}/api/v1/rollouts/${answer.id}/cancel?limit=1`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      expect(((await cancelled.json()) as { devices: unknown[] }).devices).toHaveLength(1);
    } finally {
      await wide.stop();
    }
  }, 120_000);

  it('fits a phone screen: no page scrolls sideways', async () => {
    const phone = await browser.context(PHONE, base);
    try {
      await phone.addCookies((await desktop.cookies()).filter((c) => c.name === 'berth_session'));
      const p = await phone.newPage();
      for (const [name, hash, ready] of [
        ['phone-fleet', '#/', '#fleet-table tr[data-device="dash-0"]'],
        ['phone-device', '#/devices/dash-0', '.chart canvas'],
        ['phone-rollout', rolloutHash, '#rollout-progress'],
        ['phone-deploy', '#/deploy', '#deploy-form'],
      ] as const) {
        await p.goto(`/${hash}`);
        await p.locator(ready).first().waitFor();
        await browser.screenshot(p, name);
        expect(await hasHorizontalScroll(p), `${name} scrolls sideways`).toBe(false);
      }
    } finally {
      await phone.close();
    }
    expect(errors).toEqual([]);
    expect(await cspViolations(page)).toEqual([]);
  });
});
