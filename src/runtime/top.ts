import fs from 'node:fs';
import { Cgroup } from '../cgroup/v2.js';

/**
 * The host pids of a container's processes: its cgroup's `cgroup.procs` (exec'd processes included),
 * or, where the runtime does not place it in a cgroup v2 berth can read (a hybrid host), every process
 * in the pid namespace of its init. Ascending.
 */
export function containerPids(cgroupDir: string, initPid: number, proc = '/proc'): number[] {
  const procs = new Cgroup(cgroupDir).read('cgroup.procs');
  if (procs !== undefined) return procs.split('\n').filter(Boolean).map(Number).sort((a, b) => a - b);
  const ns = (pid: string | number): string | undefined => {
    try {
      return fs.readlinkSync(`${proc}/${pid}/ns/pid`);
    } catch {
      return undefined;
    }
  };
  const mine = ns(initPid);
  if (mine === undefined) return [];
  return fs.readdirSync(proc).filter((d) => /^\d+$/.test(d) && ns(d) === mine).map(Number).sort((a, b) => a - b);
}

/**
 * docker top's table: `ps` output over the whole host, with the rows whose PID column is one of `pids`.
 * `psOutput` is the output of `ps ARGS` (header first); a header without PID is refused as docker does.
 */
export function filterPsOutput(psOutput: string, pids: readonly number[]): { titles: string[]; rows: string[][] } {
  const lines = psOutput.split('\n').filter((l) => l.trim() !== '');
  const titles = (lines[0] ?? '').trim().split(/\s+/);
  const pidCol = titles.indexOf('PID');
  if (pidCol < 0) throw new Error('ps output has no PID column');
  const want = new Set(pids);
  const rows: string[][] = [];
  for (const line of lines.slice(1)) {
    // The last column (the command) may hold spaces: split into as many fields as there are titles.
    const fields = line.trim().split(/\s+/);
    const row = [...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')];
    if (want.has(Number(row[pidCol]))) rows.push(row);
  }
  return { titles, rows };
}
