import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { checkExecSpec, planExec, type ExecSpec } from './exec.js';
import { startMonitor } from './monitor.js';
import type { OciRuntime } from './oci-runtime.js';
import type { OciProcess } from './spec/types.js';
import { connectTerminal, waitMonitorExit, type TerminalSession, type TerminalSize } from './terminal.js';

export interface ExecTerminalRequest {
  readonly runtime: OciRuntime;
  /** The container's id, its bundle (the container's directory) and its init's pid. */
  readonly id: string;
  readonly bundle: string;
  readonly pid: number;
  /** The container's own process (config.json), which the exec's is made from. */
  readonly base: OciProcess;
  readonly spec: ExecSpec;
  readonly size?: TerminalSize;
}

const ATTACH_WAIT_MS = 10_000;

/** Exec sessions' state dirs, under the container's directory: removed with the container at the latest. */
export const EXEC_SESSIONS_DIR = 'exec';

/**
 * docker exec -t: the process runs on a new pty whose master a berth-monitor of its own holds (conmon's
 * exec sessions), so the shell outlives the CLI like the container's own terminal. Its output is not
 * logged (docker logs show the container's, not an exec's). The session dir goes once the exit is read.
 */
export async function startExecTerminal(req: ExecTerminalRequest): Promise<TerminalSession | { readonly code: number; readonly message: string }> {
  checkExecSpec({ ...req.spec, tty: false });
  const plan = planExec(req.pid, req.base, req.spec);
  if (!('proc' in plan)) return plan;
  const dir = path.join(req.bundle, EXEC_SESSIONS_DIR, crypto.randomBytes(6).toString('hex'));
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'process.json');
  const proc: OciProcess = { ...plan.proc, terminal: true, ...(req.size && { consoleSize: { height: req.size.rows, width: req.size.cols } }) };
  fs.writeFileSync(file, JSON.stringify(proc), { mode: 0o600 });
  try {
    await startMonitor({
      id: req.id, bundle: req.bundle, stateDir: dir, runtime: req.runtime, logMaxBytes: 0, logMaxFiles: 1, logPath: '/dev/null',
      // The caller attaches right after this returns; a command that ends first keeps its output for it.
      tty: true, execProcess: file, ...(!req.spec.detach && { attachWaitMs: ATTACH_WAIT_MS }),
    });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    connect: () => connectTerminal(dir),
    exit: async (signal) => {
      const code = await waitMonitorExit(dir, signal);
      fs.rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}
