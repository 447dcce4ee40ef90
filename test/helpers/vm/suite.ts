import fs from 'node:fs';
import path from 'node:path';
import { REPO, requireBuilt } from '../dist.js';
import { prepareGuest } from './guest.js';
import { writeVmProfile } from './profile.js';
import { runVm, type VmRunResult } from './qemu.js';

export interface GuestSuiteRun {
  readonly vm: VmRunResult;
  /** What the guest recorded in results.json ({} when it wrote nothing). */
  readonly results: Record<string, any>;
  readonly outDir: string;
}

/**
 * Boots a VM that runs `test/vm/guest/<name>.ts` with a Zero 2 W–like board profile and returns what it
 * recorded. A failed run prints the end of the serial console: the only witness of what went wrong inside.
 */
export async function runGuestSuite(name: string, opts: { memoryMiB?: number; timeoutMs?: number } = {}): Promise<GuestSuiteRun> {
  requireBuilt();
  const outDir = path.join(REPO, '.cache', 'vm', 'runs', name);
  const profiles = writeVmProfile(path.join(outDir, '..', `${name}-profiles`));
  const guest = await prepareGuest(name, outDir, { BERTH_PROFILES_DIR: profiles });
  const vm = await runVm({ outDir, script: guest.script, memoryMiB: opts.memoryMiB ?? 512, cpus: 2, timeoutMs: opts.timeoutMs ?? 240_000 });
  return collectGuestRun(vm, outDir);
}

/** What a finished VM run recorded; prints the end of the console when the run failed. */
export function collectGuestRun(vm: VmRunResult, outDir: string): GuestSuiteRun {
  const file = path.join(outDir, 'results.json');
  const results = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>) : {};
  if (vm.exitCode !== 0 || results.completed !== true) {
    console.error(`VM run failed (exit ${String(vm.exitCode)}, timed out: ${vm.timedOut}); console (${path.join(outDir, 'console.log')}):\n${vm.consoleLog.slice(-8000)}`);
  }
  return { vm, results, outDir };
}
