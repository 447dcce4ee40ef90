#!/usr/bin/env node
// berth flash time per device against the floor of copying the same image.
//
//   node scripts/bench/flash.mjs [--runs 5] [--root-mb 2048] [--filler-mb 1200] [--batch 4]
//
// Needs root (setup.sh) and `npm run build`. Builds a Raspberry Pi OS–shaped image (test/helpers/pi-image.ts:
// MBR, FAT32 bootfs at sector 16384, ext4 rootfs with --filler-mb of incompressible data in a --root-mb
// partition: this machine's /usr as a tar stream, about a Raspberry Pi OS Lite image's bulk) and the arm64
// agent bundle, then times, each --runs times, on the same disk, every output fsynced (berth flash fsyncs
// before its rename; the floors run `sync FILE`), so the page cache does not hide the writes:
//   floor:   cp --sparse=always IMAGE OUT; sync OUT       (what any flashing tool must at least do)
//   single:  bin/berth flash IMAGE --id D --out OUT       (copy + bundle + config + e2fsck)
//   batch:   bin/berth flash IMAGE --ids CSV --out-dir D  (--batch devices; reported per device)
//            vs --batch times cp + sync (the floor for as many images)
//   xz:      xz -dc IMAGE.xz > OUT; sync OUT vs berth flash IMAGE.xz (the usual download format)
// Prints a Markdown table of medians. It never writes BENCHMARKS.md.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { log, prepareBench, repoRoot } from './common.mjs';

const self = fileURLToPath(import.meta.url);
prepareBench(self, { packages: [], rootReason: 'scripts/setup.sh installs mtools, e2fsprogs and the cross compilers' });

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    'root-mb': { type: 'string', default: '2048' },
    'filler-mb': { type: 'string', default: '1500' },
    batch: { type: 'string', default: '4' },
  },
});
const RUNS = Number(opt.runs);
const BATCH = Number(opt.batch);

const { buildPiImage } = await import(path.join(repoRoot, 'test/helpers/pi-image.ts'));
const { buildBundle } = await import(path.join(repoRoot, 'src/flash/bundle.ts'));

const work = fs.mkdtempSync(path.join(repoRoot, '.cache', 'bench-flash-'));
const bin = path.join(repoRoot, 'bin/berth');
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: work, ...opts });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = (fn) => {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
};
const clear = (dir) => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir);
  sh('sync', []);
};

try {
  log('building the image and the arm64 bundle');
  const image = await buildPiImage(path.join(work, 'raspios.img'), { rootMiB: Number(opt['root-mb']), fillerMiB: Number(opt['filler-mb']) });
  const bundle = await buildBundle({ arch: 'arm64', packageRoot: repoRoot, log });
  sh(path.join(repoRoot, 'scripts/provision/fleet-ca.sh'), []);
  const ids = Array.from({ length: BATCH }, (_, i) => `pi-${String(i + 1).padStart(3, '0')}`);
  sh(path.join(repoRoot, 'scripts/provision/device-credentials.sh'), ids);
  fs.writeFileSync(path.join(work, 'fleet.yaml'), 'broker: mqtts://broker.example:8883\ncredentials: devices\n');
  fs.writeFileSync(path.join(work, 'ids.csv'), `${ids.join('\n')}\n`);
  sh('xz', ['-k', '-T2', '-1', image]);
  const out = path.join(work, 'out');
  const flash = (img, target) => sh(bin, ['flash', img, '--fleet', 'fleet.yaml', '--bundle', bundle, ...target], { stdio: ['ignore', 'ignore', 'ignore'] });
  const rows = { floor: [], single: [], batchFloor: [], batch: [], xzFloor: [], xz: [] };
  for (let r = 0; r < RUNS; r++) {
    clear(out);
    rows.floor.push(time(() => sh('sh', ['-c', `cp --sparse=always '${image}' '${out}/x.img' && sync '${out}/x.img'`])));
    clear(out);
    rows.single.push(time(() => flash(image, ['--id', ids[0], '--out', path.join(out, 'x.img')])));
    clear(out);
    rows.batchFloor.push(time(() => ids.forEach((id) => sh('sh', ['-c', `cp --sparse=always '${image}' '${out}/${id}.img' && sync '${out}/${id}.img'`]))) / BATCH);
    clear(out);
    rows.batch.push(time(() => flash(image, ['--ids', 'ids.csv', '--out-dir', out])) / BATCH);
    clear(out);
    rows.xzFloor.push(time(() => sh('sh', ['-c', `xz -dc '${image}.xz' > '${out}/x.img' && sync '${out}/x.img'`])));
    clear(out);
    rows.xz.push(time(() => flash(`${image}.xz`, ['--id', ids[0], '--out', path.join(out, 'x.img')])));
    log(`run ${r + 1}/${RUNS}: ${Object.entries(rows).map(([k, v]) => `${k} ${v.at(-1).toFixed(2)} s`).join(', ')}`);
  }
  const m = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)]));
  const size = fs.statSync(image).size / 2 ** 20;
  const xzSize = fs.statSync(`${image}.xz`).size / 2 ** 20;
  console.log(`\nimage ${size.toFixed(0)} MiB (${opt['filler-mb']} MiB of /usr; .xz ${xzSize.toFixed(0)} MiB), bundle ${sh('du', ['-sm', bundle]).toString().split('\t')[0]} MiB, ${RUNS} runs, ${os.cpus().length} cpus\n`);
  console.log('| case | berth flash | floor | ratio |\n| --- | --- | --- | --- |');
  console.log(`| one device, .img | ${m.single.toFixed(2)} s | cp ${m.floor.toFixed(2)} s | **${(m.single / m.floor).toFixed(2)}×** |`);
  console.log(`| batch of ${BATCH}, per device | ${m.batch.toFixed(2)} s | ${BATCH} × cp, per image ${m.batchFloor.toFixed(2)} s | **${(m.batch / m.batchFloor).toFixed(2)}×** |`);
  console.log(`| one device, .img.xz | ${m.xz.toFixed(2)} s | xz -dc ${m.xzFloor.toFixed(2)} s | **${(m.xz / m.xzFloor).toFixed(2)}×** |`);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
