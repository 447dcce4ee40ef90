#!/usr/bin/env node
// The pressure governor's own cost and reaction time, measured in the VM proof scenario
// (test/vm/governor.test.ts, guest test/vm/guest/governor.ts): runs it unless --no-run, then summarises
// .cache/vm/runs/governor/results.json. TCG runs the guest several times slower than real hardware,
// so the reaction time is reported as a share of PSI's own 10 s averaging window, not in seconds alone.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
if (!process.argv.includes('--no-run')) {
  const r = spawnSync('npx', ['vitest', 'run', '--project', 'vm', 'test/vm/governor.test.ts'], { cwd: repo, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const results = JSON.parse(fs.readFileSync(path.join(repo, '.cache/vm/runs/governor/results.json'), 'utf8'));
const gov = results.events.filter((e) => /^governor-(freeze|stop|thaw|restart)$/.test(e.event));
const reactions = gov.filter((e) => typeof e.msSinceStallOnset === 'number').map((e) => e.msSinceStallOnset);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = {
  agent: { rssMiB: +(results.agent.rssKiB / 1024).toFixed(1), peakRssMiB: +(results.agent.hwmKiB / 1024).toFixed(1), cpuPctOfOneCore: +results.agent.cpuPct.toFixed(1), overSeconds: results.agent.wallS },
  actions: gov.map((e) => `${(e.t / 1000).toFixed(1)}s ${e.event.replace('governor-', '')} ${e.container} (pressure ${e.pressurePct}%, avg10 ${e.avg10})`),
  reactionMs: { samples: reactions, median: median(reactions), max: Math.max(...reactions) },
  reactionShareOfPsiAvg10Window: reactions.length ? +(median(reactions) / 10_000).toFixed(2) : null,
  kernelOomKills: results.kernel.filter((l) => /Killed process/.test(l)).length,
};
console.log(JSON.stringify(summary, null, 2));
