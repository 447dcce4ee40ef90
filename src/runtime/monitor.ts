import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BerthError, isErrno } from '../errors.js';
import { proxyMonitorArgs, type PortProxy } from '../network/port-proxy.js';
import type { OciRuntime } from './oci-runtime.js';
import type { LogOptions } from './options-security.js';

/** Built by `npm run build` (make -C native). */
export const MONITOR_BIN = fileURLToPath(new URL('../../native/build/berth-monitor', import.meta.url));

export interface MonitorRequest {
  readonly id: string;
  readonly bundle: string;
  readonly stateDir: string;
  readonly runtime: OciRuntime;
  readonly logMaxBytes: number;
  readonly logMaxFiles: number;
  /** Where the log goes; default `<stateDir>/container.log`. `/dev/null` (with logMaxBytes 0) = no log. */
  readonly logPath?: string;
  /** The container's cgroup v2 directory, for OOM accounting. */
  readonly cgroupDir?: string;
  /** A `cgroup.procs` file every runtime process joins before exec (berth's v1 devices cgroup for crun on a hybrid host). */
  readonly joinCgroup?: string;
  /** overlay mount options for `<bundle>/rootfs`, when it is not mounted yet. */
  readonly overlayOptions?: string;
  /** After the exit: `runtime delete` and unmount the root before writing the exit record. */
  readonly cleanup?: boolean;
  /** false: the exit record is not fsynced (a container removed right after its exit). Default true. */
  readonly durableExit?: boolean;
  /** The process has a terminal (`process.terminal`): the monitor takes its master and serves it (terminal.ts). */
  readonly tty?: boolean;
  /** A process.json to `runtime exec` in the running container `id` instead of running the bundle. */
  readonly execProcess?: string;
  /** With `tty`: after the exit, wait up to this long for a first client before closing the terminal. */
  readonly attachWaitMs?: number;
  /** Published ports the monitor forwards itself while the container runs (src/network/port-proxy.ts). */
  readonly proxies?: readonly PortProxy[];
}

/** What the monitor writes when the container's init has exited. */
export interface ExitRecord {
  readonly exitCode: number;
  readonly signal: number | null;
  readonly oomKilled: boolean;
  readonly oomSource: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  /** The monitor deleted the runtime's state and unmounted the root (absent from older monitors). */
  readonly cleaned?: boolean;
}

export const LOG_FILE = 'container.log';

/**
 * The monitor's log settings for a container's `--log-driver`/`--log-opt`: max-size/max-file where given,
 * else the board's storage budget. `none` sends the output to /dev/null with no cap, so the monitor never
 * rotates (renames) the path: it still drains the pipes, so the container never blocks on output.
 */
export function monitorLogOptions(log: LogOptions | undefined, budget: { logMaxBytes: number; logMaxFiles: number }): Pick<MonitorRequest, 'logMaxBytes' | 'logMaxFiles' | 'logPath'> {
  if (log?.driver === 'none') return { logMaxBytes: 0, logMaxFiles: 1, logPath: '/dev/null' };
  return { logMaxBytes: log?.maxSize ?? budget.logMaxBytes, logMaxFiles: log?.maxFile ?? budget.logMaxFiles };
}

/**
 * Starts a container under its own berth-monitor and waits for the monitor's report on the sync pipe.
 * The monitor detaches (its own session), so the container outlives this process.
 */
export async function startMonitor(req: MonitorRequest, timeoutMs = 70_000): Promise<{ pid: number }> {
  if (!fs.existsSync(MONITOR_BIN)) throw new BerthError('host', `berth-monitor is not built (${MONITOR_BIN})`, { hint: 'run npm run build' });
  const errLog = fs.openSync(path.join(req.stateDir, 'monitor.err'), 'a', 0o640);
  const args = [
    '--id', req.id, '--bundle', req.bundle, '--state-dir', req.stateDir, '--runtime', req.runtime.path,
    ...req.runtime.globalArgs.map((a) => `--runtime-arg=${a}`), ...req.runtime.monitorFlags,
    '--log-max-bytes', String(req.logMaxBytes), '--log-max-files', String(req.logMaxFiles), '--sync-fd', '3',
    ...(req.logPath !== undefined ? ['--log-path', req.logPath] : []),
    ...(req.cgroupDir ? ['--cgroup-dir', req.cgroupDir] : []),
    ...(req.joinCgroup ? ['--join-cgroup', req.joinCgroup] : []),
    ...(req.overlayOptions ? ['--mount-overlay', req.overlayOptions] : []),
    ...(req.cleanup ? ['--cleanup'] : []),
    ...(req.durableExit === false ? ['--no-fsync-exit'] : []),
    ...(req.tty ? ['--tty'] : []),
    ...(req.execProcess !== undefined ? ['--exec-process', req.execProcess] : []),
    ...(req.attachWaitMs !== undefined ? ['--attach-wait', String(req.attachWaitMs)] : []),
    ...proxyMonitorArgs(req.proxies ?? []),
  ];
  const child = spawn(MONITOR_BIN, args, { stdio: ['ignore', 'ignore', errLog, 'pipe'], detached: true });
  fs.closeSync(errLog);
  const sync = child.stdio[3] as NodeJS.ReadableStream;
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new BerthError('runtime', `berth-monitor did not report within ${timeoutMs / 1000} s`)), timeoutMs);
    sync.on('data', (d: Buffer) => (buf += d.toString()));
    sync.on('end', () => {
      clearTimeout(timer);
      resolve(buf.trim());
    });
    sync.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  child.unref();
  if (line === '') throw new BerthError('runtime', `berth-monitor exited without a report (see ${path.join(req.stateDir, 'monitor.err')})`);
  const report = JSON.parse(line) as { pid?: number; error?: string };
  if (report.error !== undefined) throw new BerthError('runtime', report.error);
  return { pid: report.pid! };
}

export function readExit(stateDir: string): ExitRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(stateDir, 'exit'), 'utf8')) as ExitRecord;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** Field 22 of /proc/PID/stat: the start time that tells a live process from a reused pid. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** True while the monitor that wrote `monitor.pid` is still that same process. */
export function monitorAlive(stateDir: string): boolean {
  try {
    const { pid, startTime } = JSON.parse(fs.readFileSync(path.join(stateDir, 'monitor.pid'), 'utf8')) as { pid: number; startTime: number };
    return processStartTime(pid) === startTime;
  } catch {
    return false;
  }
}

export function readContainerPid(stateDir: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(stateDir, 'container.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
