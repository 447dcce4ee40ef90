// Reads the service's long-task trace (BERTH_FLEET_TRACE, src/fleet/service/slice-trace.ts) into the fleet-10k
// bench's phases: per phase the event loop's delay, where its synchronous time went, and its worst stalls with
// the slices that ran in them (what a slow API call waited behind).
import fs from 'node:fs';

const STALLS_SHOWN = 8;
const LABELS_SHOWN = 8;

/** `phases`: the bench's, in order, each with startedAt (epoch ms) and wallS. */
export function readTrace(file, phases) {
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
  const phaseOf = (at) => phases.find((p) => at >= p.startedAt && at < p.startedAt + p.wallS * 1000)?.name;
  const out = new Map(phases.map((p) => [p.name, { name: p.name, startedAt: p.startedAt, loopMax: 0, loopP99Max: 0, busy: {}, stalls: [] }]));
  for (const l of lines) {
    const p = out.get(phaseOf(l.at));
    if (!p) continue;
    if (l.type === 'loop') {
      p.loopMax = Math.max(p.loopMax, l.max);
      p.loopP99Max = Math.max(p.loopP99Max, l.p99);
      for (const [label, ms] of Object.entries(l.busy ?? {})) p.busy[label] = (p.busy[label] ?? 0) + ms;
    } else if (l.type === 'stall') p.stalls.push(l);
  }
  for (const p of out.values()) p.stalls.sort((a, b) => b.ms - a.ms);
  return { phases: [...out.values()], totals: lines.find((l) => l.type === 'totals')?.totals ?? [] };
}

const ms = (x) => `${Math.round(x)} ms`;

export function traceMarkdown(trace) {
  const rows = ['Service event loop (slice trace): per phase, stalls ≥ 40 ms, the longest, and the synchronous time of the busiest slices\n', '| phase | stalls | longest | loop p99 (worst second) | busiest synchronous slices (total) |', '| --- | --- | --- | --- | --- |'];
  for (const p of trace.phases) {
    const busy = Object.entries(p.busy).sort((a, b) => b[1] - a[1]).slice(0, LABELS_SHOWN).map(([l, t]) => `${l}: ${ms(t)}`).join('; ');
    rows.push(`| ${p.name} | ${p.stalls.length} | ${p.stalls[0] ? ms(p.stalls[0].ms) : '–'} | ${ms(p.loopP99Max)} | ${busy || '–'} |`);
  }
  const rollout = trace.phases.find((p) => p.name === 'service rollout');
  if (rollout && rollout.stalls.length > 0) {
    rows.push('', `Worst stalls of the service rollout: the synchronous slices in each, summed per kind (nested ones count in each), and the longest async slices overlapping it (their time includes waits):`, '');
    for (const s of rollout.stalls.slice(0, STALLS_SHOWN)) {
      const sync = s.sync.map((x) => `${x.label} ${x.n > 1 ? `${x.n}× ` : ''}${ms(x.ms)}`).join('; ') || 'nothing marked';
      rows.push(`- ${ms(s.ms)} at +${ms(s.at - rollout.startedAt)}: ${sync} (unmarked ${ms(s.ms - s.sync.reduce((n, x) => n + x.ms, 0))}); async: ${s.async.map((x) => `${x.label} ${ms(x.ms)}`).join('; ')}`);
    }
  }
  return rows.join('\n');
}
