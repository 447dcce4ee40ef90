import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO, requireBuilt } from '../helpers/dist.js';

// Host-wide subnet claims raced by separate processes, as several agents on one host do when a fleet
// deploys one app to all of them at once (a CI run caught two roots both holding 10.89.1.0/24). Runs the
// built module (`npm run build`) in real processes: the race is between processes, not in one.
const MODULE = pathToFileURL(path.join(REPO, 'dist/network/subnet-claims.js')).href;
beforeAll(() => requireBuilt());

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** `n` processes, each its own state root, released together to claim `subnet`; their answers. */
async function race(claims: string, n: number, subnet: string): Promise<boolean[]> {
  const go = path.join(claims, '..', 'go');
  const script = `
    import fs from 'node:fs';
    const { SubnetClaims } = await import(${JSON.stringify(MODULE)});
    const [claims, owner, go, subnet] = process.argv.slice(1);
    fs.writeFileSync(owner, '');
    const sleep = new Int32Array(new SharedArrayBuffer(4));
    process.stdout.write('ready\\n');
    while (!fs.existsSync(go)) Atomics.wait(sleep, 0, 0, 1);
    process.stdout.write(String(new SubnetClaims(claims, owner).claim(subnet, 'net-' + process.pid, 'app_default')) + '\\n');
  `;
  const root = path.dirname(claims);
  const children = Array.from({ length: n }, (_, i) => {
    const owner = path.join(root, `root-${i}.db`);
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, claims, owner, go, subnet], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const ready = new Promise<void>((resolve) => child.stdout.on('data', () => out.includes('ready') && resolve()));
    const done = new Promise<string>((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`claimant ${i} exited ${code}`)))));
    return { ready, done };
  });
  await Promise.all(children.map((c) => c.ready));
  fs.writeFileSync(go, '');
  const outs = await Promise.all(children.map((c) => c.done));
  return outs.map((o) => o.trim().split('\n').at(-1) === 'true');
}

function tmpClaims(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-claims-race-'));
  dirs.push(root);
  return path.join(root, 'subnets');
}

describe('host-wide subnet claims raced by separate processes', () => {
  it('give a free subnet, IPv4 or IPv6, to exactly one of eight claimants, every round', async () => {
    for (let round = 0; round < 6; round++) {
      const subnet = round % 2 === 0 ? '10.89.1.0/24' : 'fd42:1::/64';
      const claims = tmpClaims();
      const won = await race(claims, 8, subnet);
      expect(won.filter(Boolean)).toHaveLength(1);
      // The file names the winner, whole, and nothing else is left in the directory.
      expect(fs.readdirSync(claims)).toEqual([subnet.replace('/', '_')]);
      expect(JSON.parse(fs.readFileSync(path.join(claims, subnet.replace('/', '_')), 'utf8'))).toMatchObject({ name: 'app_default' });
    }
  });

  it('give a stale claim (its root deleted) to exactly one of eight claimants', async () => {
    for (let round = 0; round < 5; round++) {
      const claims = tmpClaims();
      fs.mkdirSync(claims);
      fs.writeFileSync(path.join(claims, '10.89.1.0_24'), JSON.stringify({ owner: path.join(claims, '..', 'deleted.db'), networkId: 'x', name: 'old' }));
      const won = await race(claims, 8, '10.89.1.0/24');
      expect(won.filter(Boolean)).toHaveLength(1);
      expect(fs.readdirSync(claims)).toEqual(['10.89.1.0_24']);
    }
  });
});
