// Runs inside the arm64 VM under the arm64 Node (bundled by test/helpers/vm/guest.ts): bridge networking
// on an arm64 board — a two-service compose app deployed by `berth deploy` on its default bridge, the
// client reaching the server by service name, the server's published port reached from the board's own
// 127.0.0.1 — and aardvark-dns's memory with one and with three networks. Records what it saw in
// results.json; test/arm/network.test.ts asserts on it. Every address here is the VM's own.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRegistry } from '../../helpers/services/registry.js';
import { pushBusyboxImage } from '../../helpers/images/build.js';
import { followLogs } from '../../../src/runtime/logs.js';
import { Berth, berth, berthWithin, guestMain, log, sleep, type Results } from '../../vm/guest/lib.js';

/** The published host port: the VM is ours alone, nothing else listens there. */
const HOST_PORT = 8080;

/**
 * Writes the app's compose file and deploys it with the CLI, as a user would (one app per board: a later
 * deploy of the same file's next revision changes only what changed). Deploys pull, make networks and start
 * containers under TCG: minutes on a loaded host.
 */
function deploy(file: string, yaml: string): { code: number | null; stderr: string; ms: number } {
  fs.writeFileSync(file, yaml);
  const r = berthWithin(420_000, 'deploy', file);
  return { code: r.code, stderr: r.stderr, ms: r.ms };
}

/**
 * The client's command: what it sees, printed to its log, then it idles. The server by name over HTTP
 * (retried: under TCG the server may start well after the client), the name looked up, a name no service
 * has, its resolv.conf; each section with its exit code. Not through `berth exec`: this VM's init chroots
 * into the guest root instead of pivoting, so crun falls back to chroot for containers and its exec lands
 * in the initramfs' root, not the container's (a board boots into its real root and has no such gap).
 */
const CLIENT_PROBE = `
probe() { name=$1; shift; echo "=== $name"; "$@" 2>&1; echo "=== $name exit $?"; }
get() { for i in $(seq 60); do timeout 3 wget -qO- http://server/ && return 0; sleep 1; done; return 1; }
probe byName get
probe lookup nslookup server
probe unknownName nslookup no-such-service
probe resolvConf cat /etc/resolv.conf
echo "=== end"
exec sleep 100000
`;

/** The client's log up to the probe's end marker, read as the monitor writes it (followLogs). */
async function clientReport(logPath: string): Promise<string> {
  const lines: string[] = [];
  for await (const rec of followLogs(path.dirname(logPath), () => false, AbortSignal.timeout(300_000), true)) {
    lines.push(rec.text);
    if (rec.text === '=== end') break;
  }
  return lines.join('\n') + '\n';
}

/** The probe's sections: `{ name: { code, out } }`. */
function sections(stdout: string): Record<string, { code: number; out: string }> {
  const out: Record<string, { code: number; out: string }> = {};
  for (const m of stdout.matchAll(/^=== (\w+)\n([\s\S]*?)^=== \1 exit (\d+)$/gm)) out[m[1]!] = { code: Number(m[3]), out: m[2]! };
  return out;
}

/** GET http://127.0.0.1:PORT/ from the board itself, tried `attempts` times (httpd may not listen yet). */
async function fromLoopback(port: number, attempts: number): Promise<{ body?: string; error?: string }> {
  let error = '';
  for (let i = 0; i < attempts; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) });
      return { body: await r.text() };
    } catch (err) {
      error = String((err as Error).cause ?? err);
      await sleep(250);
    }
  }
  return { error };
}

/** Every aardvark-dns process, with its memory (KiB): RSS from status, PSS and private from smaps_rollup. */
function aardvarkMemory(): Array<Record<string, number>> {
  const out: Array<Record<string, number>> = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let comm = '';
    try {
      comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm !== 'aardvark-dns') continue;
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (text: string, f: string): number => Number(new RegExp(`^${f}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
    out.push({
      pid: Number(pid), VmRSS: field(status, 'VmRSS'), RssAnon: field(status, 'RssAnon'), RssFile: field(status, 'RssFile'),
      Pss: field(rollup, 'Pss'), Private: field(rollup, 'Private_Clean') + field(rollup, 'Private_Dirty'),
    });
  }
  return out;
}

/** Once the app is up, aardvark-dns has settled on its records: measured after a short quiet spell. */
async function settledAardvark(): Promise<Array<Record<string, number>>> {
  await sleep(3000);
  return aardvarkMemory();
}

await guestMain(async (results: Results) => {
  const registry = await startRegistry();
  await pushBusyboxImage(registry, 'net/busybox', 'v1', { arches: ['arm64'] });
  const image = `${registry.host}/net/busybox:v1`;
  log('image pushed');

  // The server answers on 80 and publishes it on the board's HOST_PORT; the client probes it by name
  // (CLIENT_PROBE) and reports each step's exit code in its log.
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'netapp-')), 'compose.yaml');
  const services = `name: netapp
services:
  server:
    image: ${image}
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-server > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["${HOST_PORT}:80"]
    stop_grace_period: 1s
  client:
    image: ${image}
    command: ["sh", "-c", ${JSON.stringify(CLIENT_PROBE.replace(/\$/g, '$$$$'))}]
    stop_grace_period: 1s
`;
  const update = 'x-berth:\n  update: {health_window: 1s}\n';
  const app = deploy(file, services + update);
  results.set('deploy', app);
  // Listing and inspecting in this process: the same store the CLI wrote, without more CLI starts.
  const b = new Berth();
  const names = Object.fromEntries(b.engine.list().map((c) => [c.name.split('.')[0]!, c.name]));
  results.set('containers', names);
  const server = b.inspect(names.server ?? 'server');
  results.set('server', { networks: server.NetworkSettings?.Networks, ports: server.NetworkSettings?.Ports, state: server.State?.Status });
  const report = await clientReport(b.inspect(names.client ?? 'client').LogPath);
  results.set('probe', sections(report));
  results.set('loopback', await fromLoopback(HOST_PORT, 20));
  // Nothing is published on the next port: a refused connection there shows the answer above is the server's.
  results.set('unpublished', await fromLoopback(HOST_PORT + 1, 1));
  results.set('aardvark1', await settledAardvark());

  // Revision 2 adds two networks, each with an idle container (server and client stay as they are): one
  // aardvark-dns serves all three.
  const idle = (network: string): string => `    image: ${image}\n    command: ["sleep", "100000"]\n    networks: [${network}]\n    stop_grace_period: 1s\n`;
  const more = deploy(file, `${services}  a:\n${idle('one')}  b:\n${idle('two')}networks:\n  one: {}\n  two: {}\n${update}`);
  results.set('deployMore', more);
  // The networks the containers are on, by container (from this process, as above).
  results.set('networks', Object.fromEntries(b.engine.list().map((c) => [c.name.split('.')[0]!, Object.keys(b.inspect(c.name).NetworkSettings?.Networks ?? {})])));
  results.set('aardvark3', await settledAardvark());
  await registry.stop();
  log('done');
});
