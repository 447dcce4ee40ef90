// The small-RAM proof scenario, inside the VM (test/vm/governor.test.ts asserts on the results): a
// Zero 2 W–like budget, the real `berth agent` governing, one critical service and two best-effort hogs.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readLogs } from '../../../src/runtime/logs.js';
import { Berth, berthBin, guestMain, keyed, log, oomKernelLines, readCg, setupImage, sleep, t0 } from './lib.js';

interface Timed {
  readonly t: number;
  readonly [k: string]: unknown;
}

const procStat = (pid: number): { cpuTicks: number; rssKiB: number; hwmKiB: number } => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { cpuTicks: Number(fields[11]) + Number(fields[12]), rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
};

await guestMain(async (results) => {
  const { image } = await setupImage();
  const b = new Berth();
  results.set('board', { profile: b.board.profile, budget: b.board.containerBudgetBytes, defaults: b.board.containerDefaults });

  // The agent, as users run it, with the governor's timings shortened for a test.
  const events: Timed[] = [];
  const agent = spawn(berthBin(), ['agent', '--resume-after', '10s', '--escalate-after', '8s'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let partial = '';
  agent.stdout.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      try {
        const e = JSON.parse(line) as Record<string, unknown>;
        events.push({ t: Date.now() - t0, ...e });
        if (String(e.event).startsWith('governor') || e.event === 'agent-started') log('agent:', line);
      } catch {
        log('agent (not JSON):', line);
      }
    }
  });
  while (!events.some((e) => e.event === 'governor-started' || e.event === 'governor-off')) await sleep(200);

  // One critical service: holds 40 MiB from the start and, after 25 s, needs another 100 MiB.
  await b.run('critical', image, ['sh', '-c', 'hog 40 & sleep 25; exec hog 100 4 100'], { labels: { 'berth.priority': 'critical' }, memory: 200 * 1024 * 1024 });
  // Two best-effort hogs without limits of their own: the profile's memory.high throttles them first.
  await b.run('hog-a', image, ['hog', '150', '2', '100'], { labels: { 'berth.priority': 'best-effort' } });
  await b.run('hog-b', image, ['hog', '150', '2', '100'], { labels: { 'berth.priority': 'best-effort' } });

  const names = ['critical', 'hog-a', 'hog-b'];
  const ids = Object.fromEntries(names.map((n) => [n, b.engine.find(n).id]));
  const timeline: Timed[] = [];
  const agentStart = procStat(agent.pid!);
  const wallStart = Date.now();
  for (let i = 0; i < 70; i++) {
    const row: Record<string, unknown> = { t: Date.now() - t0 };
    for (const n of names) {
      const dir = b.cgroup(n);
      const ev = keyed(readCg(dir, 'memory.events'));
      row[n] = { high: ev.high, oomKill: ev.oom_kill, current: Number(readCg(dir, 'memory.current') ?? 0), frozen: keyed(readCg(dir, 'cgroup.events')).frozen };
    }
    row.parent = { current: Number(readCg('/sys/fs/cgroup/berth', 'memory.current')), pressure: readCg('/sys/fs/cgroup/berth', 'memory.pressure')?.split('\n')[0] };
    timeline.push(row as Timed);
    await sleep(1000);
  }
  const agentEnd = procStat(agent.pid!);
  const wallS = (Date.now() - wallStart) / 1000;
  results.set('agent', {
    alive: agent.exitCode === null,
    rssKiB: agentEnd.rssKiB, hwmKiB: agentEnd.hwmKiB,
    cpuPct: ((agentEnd.cpuTicks - agentStart.cpuTicks) / 100 / wallS) * 100, wallS,
  });
  results.set('events', events);
  results.set('timeline', timeline);
  results.set('final', Object.fromEntries(names.map((n) => {
    const c = b.engine.find(n);
    const logs = readLogs(b.engine.logDir(c.id));
    return [n, { state: b.inspect(n).State, restartCount: c.restartCount, lastLog: logs.slice(-1)[0]?.text }];
  })));
  results.set('kernel', oomKernelLines());
  agent.kill('SIGTERM');
  await sleep(500);
});
