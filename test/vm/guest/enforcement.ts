// The enforcement suite, run inside the cgroup v2 VM (test/vm/enforcement.test.ts asserts on the results).
import { readLogs } from '../../../src/runtime/logs.js';
import { Berth, berth, guestMain, keyed, log, oomKernelLines, parseJson, readCg, setupImage, sleep } from './lib.js';

const MiB = 1024 * 1024;

await guestMain(async (results) => {
  results.set('doctor', parseJson(berth('doctor', '--json').stdout));
  const { image } = await setupImage();
  const b = new Berth();
  results.set('board', b.board);

  // A neighbour that must outlive everything below.
  await b.run('neighbour', image, ['hog', '8']);
  const neighbour = b.inspect('neighbour');
  results.set('parent', {
    memoryMax: readCg('/sys/fs/cgroup/berth', 'memory.max'),
    subtreeControl: readCg('/sys/fs/cgroup/berth', 'cgroup.subtree_control'),
    neighbourSwapMax: readCg(b.cgroup('neighbour'), 'memory.swap.max'),
    neighbourOomScoreAdj: readCg(`/proc/${neighbour.State.Pid}`, 'oom_score_adj'),
  });

  // --memory through the CLI: `berth run` exits 137, `berth inspect` says OOMKilled; the neighbour lives.
  // --network none: the guest has no netavark, and networking is beside the point here.
  const oomRun = berth('run', '--name', 'oom', '--network', 'none', '--memory', '32m', image, 'hog', '200', '8');
  const oom = parseJson(berth('inspect', 'oom').stdout);
  results.set('oom', { runExit: oomRun.code, state: oom?.State, cgroupFiles: oom?.Limits?.CgroupFiles, neighbour: b.inspect('neighbour').State.Status });

  // memory.high from the profile (no --memory): a hog between high and max is throttled, not killed.
  const d = b.board.containerDefaults;
  const highMiB = Math.round((d.memoryHighBytes + d.memoryMaxBytes) / 2 / MiB);
  await b.run('high', image, ['hog', String(highMiB), '4', '20']);
  await sleep(12_000);
  const highDir = b.cgroup('high');
  results.set('high', {
    targetMiB: highMiB,
    files: { high: readCg(highDir, 'memory.high'), max: readCg(highDir, 'memory.max') },
    events: keyed(readCg(highDir, 'memory.events')),
    current: Number(readCg(highDir, 'memory.current')),
    pressure: readCg(highDir, 'memory.pressure'),
    state: b.inspect('high').State,
  });
  await b.engine.remove('high', true);

  // --cpus 0.25: a busy loop gets about a quarter of a core, measured from cpu.stat.
  await b.run('busy', image, ['sh', '-c', 'while :; do :; done'], { cpus: 0.25 });
  const busyDir = b.cgroup('busy');
  await sleep(1000);
  const u0 = keyed(readCg(busyDir, 'cpu.stat')).usage_usec ?? 0;
  const w0 = process.hrtime.bigint();
  await sleep(6000);
  const stat = keyed(readCg(busyDir, 'cpu.stat'));
  const wallUs = Number(process.hrtime.bigint() - w0) / 1000;
  results.set('cpu', { cpuMax: readCg(busyDir, 'cpu.max'), share: ((stat.usage_usec ?? 0) - u0) / wallUs, throttled: stat.nr_throttled });
  await b.engine.remove('busy', true);

  // --pids-limit: fork fails inside.
  const forks = Array.from({ length: 20 }, () => 'sleep 30 &').join(' ');
  const forky = await b.run('forky', image, ['sh', '-c', `${forks} echo started`], { pidsLimit: 8 });
  await b.engine.waitExit(forky.id, 30_000);
  results.set('pids', { pidsMax: b.inspect('forky').Limits.CgroupFiles['pids.max'], state: b.inspect('forky').State, output: JSON.stringify(readLogs(b.engine.logDir(forky.id))) });

  // The parent cgroup caps all containers together: two hogs, each within its own limit, together over
  // the budget. The kernel OOM-kills inside berth/ only, and picks the best-effort one.
  const budget = b.board.containerBudgetBytes;
  const each = Math.floor((budget * 0.65) / MiB);
  const limit = Math.floor(budget * 0.8);
  await b.run('steady', image, ['hog', String(each), '8', '50'], { memory: limit });
  await sleep(2000);
  await b.run('greedy', image, ['hog', String(each), '8', '50'], { memory: limit, labels: { 'berth.priority': 'best-effort' } });
  const greedy = b.engine.find('greedy');
  await b.engine.waitExit(greedy.id, 30_000);
  results.set('parentCap', {
    budget, eachMiB: each, limit,
    parentEvents: keyed(readCg('/sys/fs/cgroup/berth', 'memory.events')),
    steady: b.inspect('steady').State, greedy: b.inspect('greedy').State,
    neighbour: b.inspect('neighbour').State.Status,
    kernel: oomKernelLines(),
  });
  log('done');
});
