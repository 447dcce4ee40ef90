#!/usr/bin/env node
// Networking benchmark (issue 16): what bridge networking adds to `run --rm IMG true`, for berth and
// for podman on the same image. See scripts/bench/README.md.
//
//   node scripts/bench/net.mjs [--runs 10] [--berth bin/berth] [--tools berth,podman] [--default-bridge-opt isolate=false]
//
// --default-bridge-opt K=V creates berth's default `bridge` network with that option before the runs
// (an experiment: isolate=false shows what isolating the default bridge from user networks costs).
// Needs root (network namespaces, netavark) and `npm run build`. Installs podman from Debian when
// missing (only this benchmark uses it). The image is the busybox test image pushed to a private
// docker-registry on 127.0.0.1; berth and podman both pull it from there (no other registry, ever).
// podman runs with its own --root/--runroot/network config under a temp dir and a default subnet of
// its own (10.199.0.0/24), so it never meets berth's (or another test's) 10.88.0.0/16 bridge.
// Prints a table and writes .cache/bench/net-<timestamp>.json (and net-latest.json); BENCHMARKS.md is
// updated by hand.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { log, prepareBench, repoRoot, sh, teardown } from './common.mjs';

const self = fileURLToPath(import.meta.url);
prepareBench(self, { packages: ['podman', 'netavark', 'aardvark-dns', 'runc', 'python3'], rootReason: 'network namespaces and netavark' });

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    berth: { type: 'string', default: path.join(repoRoot, 'bin/berth') },
    tools: { type: 'string', default: 'berth,podman' },
    'default-bridge-opt': { type: 'string' },
  },
});
const runs = Number(opt.runs);
const tools = opt.tools.split(',');

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-net-'));
const cleanup = teardown(() => fs.rmSync(work, { recursive: true, force: true }));
const berthRoot = path.join(work, 'berth');
const podmanConf = path.join(work, 'containers.conf');
// netavark, not the CNI plugins podman falls back to when /etc/cni/net.d has a config: the same
// network stack as berth's, so the comparison is of what each does around it.
fs.writeFileSync(podmanConf, '[network]\nnetwork_backend = "netavark"\ndefault_subnet = "10.199.0.0/24"\n');
// podman sets RLIMIT_NOFILE/NPROC to values a sandboxed root may not set (EPERM even at the hard limit),
// and `--ulimit` cannot drop them; this wrapper removes process.rlimits from the bundle, then runs runc
// (berth's runtime on a hybrid-cgroup host like this one; crun refuses hybrid hosts under podman). Its
// python start-up is paid by podman's none and bridge runs alike, so the added cost is unaffected.
const runcWrapper = path.join(work, 'bin/runc');
fs.mkdirSync(path.dirname(runcWrapper));
fs.writeFileSync(runcWrapper, `#!/usr/bin/python3
import json, os, sys
a = sys.argv[1:]
if 'create' in a and '--bundle' in a:
    p = os.path.join(a[a.index('--bundle') + 1], 'config.json')
    c = json.load(open(p))
    c.get('process', {}).pop('rlimits', None)
    json.dump(c, open(p, 'w'))
os.execv(${JSON.stringify(sh('sh', ['-c', 'command -v runc']))}, ['runc'] + a)
`, { mode: 0o755 });
const podmanGlobal = ['--root', path.join(work, 'podman'), '--runroot', path.join(work, 'podman-run'), '--network-config-dir', path.join(work, 'podman-net'), '--runtime', runcWrapper, '--events-backend', 'none', '--cgroup-manager', 'cgroupfs'];
const env = { ...process.env, CONTAINERS_CONF: podmanConf };

const cmd = {
  berth: (network, img) => [opt.berth, ['--root', berthRoot, 'run', '--rm', '--network', network, img, 'true']],
  podman: (network, img) => ['podman', [...podmanGlobal, 'run', '--rm', '--network', network, img, 'true']],
};

/** Wall time of one command, ms; a failure stops the benchmark (a fast failure is no measurement). */
function timed(bin, args) {
  const t0 = performance.now();
  const r = spawnSync(bin, args, { encoding: 'utf8', env });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

try {
  const { startRegistry } = await import('../../test/helpers/services/registry.ts');
  const { pushBusyboxImage } = await import('../../test/helpers/images/build.ts');
  const { hostTestArch } = await import('../../test/helpers/bundle.ts');
  const registry = await startRegistry();
  cleanup.steps.push(() => registry.stop());
  await pushBusyboxImage(registry, 'bench/net', 'v1', { arches: [hostTestArch()] });
  const img = `${registry.host}/bench/net:v1`;
  const pull = {
    berth: () => timed(opt.berth, ['--root', berthRoot, 'pull', '-q', img]),
    podman: () => timed('podman', [...podmanGlobal, 'pull', '-q', '--tls-verify=false', img]),
  };
  for (const t of tools) pull[t]();
  if (opt['default-bridge-opt'] !== undefined) timed(opt.berth, ['--root', berthRoot, 'network', 'create', '-o', opt['default-bridge-opt'], 'bridge']);
  cleanup.steps.push(() => spawnSync('podman', [...podmanGlobal, 'rm', '-af'], { env }));

  // One warm-up of each (first bridge use creates the default network and loads kernel modules), then
  // the four cases interleaved run by run, so drift on this shared machine hits them alike.
  const cases = tools.flatMap((t) => ['none', 'bridge'].map((n) => ({ tool: t, network: n, ms: [] })));
  for (const c of cases) timed(...cmd[c.tool](c.network, img));
  for (let i = 0; i < runs; i++) {
    for (const c of cases) c.ms.push(timed(...cmd[c.tool](c.network, img)));
    log(`run ${i + 1}/${runs}`);
  }

  const row = (t) => {
    const none = median(cases.find((c) => c.tool === t && c.network === 'none').ms);
    const bridge = median(cases.find((c) => c.tool === t && c.network === 'bridge').ms);
    return { tool: t, noneMs: Math.round(none), bridgeMs: Math.round(bridge), addedMs: Math.round(bridge - none), ratio: +(bridge / none).toFixed(2) };
  };
  const rows = tools.map(row);
  const facts = {
    date: new Date().toISOString(), cpus: os.cpus().length, kernel: os.release(), runs,
    podman: sh('podman', ['--version']), netavark: sh('/usr/lib/podman/netavark', ['--version']), runc: sh('runc', ['--version'])?.split('\n')[0],
    berthCommand: `${opt.berth} run --rm --network bridge|none IMG true`,
    ...(opt['default-bridge-opt'] !== undefined && { defaultBridgeOpt: opt['default-bridge-opt'] }),
    loadAverage: os.loadavg(),
    podmanCommand: `podman ${podmanGlobal.join(' ')} run --rm --network bridge|none IMG true`,
  };
  console.log(`${runs} runs each, medians (ms), ${facts.cpus} CPUs, ${facts.podman}, ${facts.netavark}, load average ${facts.loadAverage.map((l) => l.toFixed(1)).join(' ')}`);
  console.log('tool     none   bridge  added  bridge/none');
  for (const r of rows) console.log(`${r.tool.padEnd(7)} ${String(r.noneMs).padStart(5)}  ${String(r.bridgeMs).padStart(6)}  ${String(r.addedMs).padStart(5)}  ${r.ratio}`);
  const b = rows.find((r) => r.tool === 'berth');
  const p = rows.find((r) => r.tool === 'podman');
  if (b && p) console.log(`berth's added cost / podman's: ${(b.addedMs / p.addedMs).toFixed(2)}`);
  const out = path.join(repoRoot, '.cache/bench');
  fs.mkdirSync(out, { recursive: true });
  const json = JSON.stringify({ facts, rows, samples: cases }, null, 2);
  fs.writeFileSync(path.join(out, `net-${Date.now()}.json`), json);
  fs.writeFileSync(path.join(out, 'net-latest.json'), json);
} finally {
  await cleanup.run();
}
