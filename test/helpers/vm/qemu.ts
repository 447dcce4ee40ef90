import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildInitramfs } from './initramfs.js';
import { findVmKernel, type VmKernel } from './kernel.js';

/**
 * Boots a throwaway Linux VM under qemu's TCG (no KVM needed) that sees this machine's files read-only
 * (or, for another architecture, a root filesystem assembled for it plus the checkout), runs one shell
 * script as root in a pure cgroup v2 world, and powers off. The serial console is written to
 * `<outDir>/console.log` as it arrives.
 */

/** The qemu machine per guest architecture: both under TCG, no KVM needed. */
const MACHINES = {
  amd64: { qemu: 'qemu-system-x86_64', args: ['-machine', 'q35', '-cpu', 'max'], console: 'ttyS0' },
  // cortex-a72, not max: it runs AArch32 code at EL0 (arm/v7 and arm/v6 binaries natively, under the
  // kernel's compat layer), and max's pointer authentication costs TCG dearly.
  arm64: { qemu: 'qemu-system-aarch64', args: ['-machine', 'virt', '-cpu', 'cortex-a72'], console: 'ttyAMA0' },
  // A Raspberry Pi Zero: the BCM2835 with its ARM1176 (ARMv6KZ + VFPv2) and 512 MiB, as on the board (raspi.ts).
  armv6: { qemu: 'qemu-system-arm', args: ['-machine', 'raspi0', '-cpu', 'arm1176'], console: 'ttyAMA0' },
} as const;

export type VmArch = keyof typeof MACHINES;

export interface VmRunOptions {
  /** Default amd64 (the host's own files as the guest's root). */
  readonly arch?: VmArch;
  /** Directory shared read-only as the guest's root (below a tmpfs overlay). Default the host's `/`. */
  readonly rootDir?: string;
  /** With a `rootDir`: the checkout, shared read-only at the same path in the guest. */
  readonly repoDir?: string;
  /** Guest paths bind-mounted over others before the script runs. */
  readonly binds?: ReadonlyArray<{ readonly from: string; readonly to: string }>;
  /** Kernel modules the init loads besides the ones it needs itself (initramfs.ts, InitramfsInput.modules). */
  readonly modules?: readonly string[];
  /** Writable directory shared with the guest at the same path; holds the console log and exit code. */
  readonly outDir: string;
  /** Script (absolute path) the guest runs with `sh`. */
  readonly script: string;
  readonly memoryMiB?: number;
  readonly cpus?: number;
  /** Wall-clock limit for the whole boot-run-poweroff; the VM is killed after it. */
  readonly timeoutMs?: number;
  readonly kernel?: VmKernel;
  /** Called with each console line (e.g. to stream progress). */
  readonly onLine?: (line: string) => void;
}

export interface VmRunResult {
  /** The script's exit code, or undefined when the guest never wrote one (crash, timeout). */
  readonly exitCode: number | undefined;
  readonly timedOut: boolean;
  readonly consoleLog: string;
  readonly wallMs: number;
}

/** The qemu arguments every boot here shares: machine, memory, CPUs, serial console, our kernel and initramfs. */
export function kernelBootArgs(arch: VmArch, o: { kernel: VmKernel; initrd: string; append: string; memoryMiB: number; cpus: number }): string[] {
  return [
    ...MACHINES[arch].args, '-m', String(o.memoryMiB), '-smp', String(o.cpus),
    '-nographic', '-no-reboot', '-kernel', o.kernel.vmlinuz, '-initrd', o.initrd, '-append', o.append,
  ];
}

export interface QemuProcess {
  /** Resolves when qemu has exited and the console log is complete; timedOut when the time limit killed it. */
  readonly exited: Promise<{ readonly timedOut: boolean }>;
  /** SIGTERM: the guest gets no say, as when a board's power is pulled. */
  stop(): void;
}

/** Starts qemu with its serial console (stdout and stderr) teed into `consoleLog` and to `onData`, SIGKILLed after `timeoutMs`. */
export function startQemu(arch: VmArch, args: readonly string[], consoleLog: string, timeoutMs: number, onData?: (chunk: Buffer) => void): QemuProcess {
  const log = fs.createWriteStream(consoleLog);
  const child = spawn(MACHINES[arch].qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const data = (chunk: Buffer): void => {
    log.write(chunk);
    onData?.(chunk);
  };
  child.stdout.on('data', data);
  child.stderr.on('data', data);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', () => resolve());
  }).finally(() => clearTimeout(timer)).then(() => new Promise<{ timedOut: boolean }>((resolve) => log.end(() => resolve({ timedOut }))));
  return { exited, stop: () => void child.kill('SIGTERM') };
}

export async function runVm(opts: VmRunOptions): Promise<VmRunResult> {
  const arch = opts.arch ?? 'amd64';
  const machine = MACHINES[arch];
  const kernel = opts.kernel ?? findVmKernel(arch);
  fs.mkdirSync(opts.outDir, { recursive: true });
  const initrd = path.join(opts.outDir, 'initrd.gz');
  fs.writeFileSync(initrd, buildInitramfs({
    busybox: kernel.busybox, modulesDir: kernel.modulesDir, outDir: opts.outDir, script: opts.script,
    ...(opts.repoDir !== undefined && { repoDir: opts.repoDir }), ...(opts.binds !== undefined && { binds: opts.binds }),
    ...(opts.modules !== undefined && { modules: opts.modules }),
  }));
  const consoleLog = path.join(opts.outDir, 'console.log');
  fs.rmSync(path.join(opts.outDir, 'exit-code'), { force: true });
  const share = (dir: string, tag: string, readonly: boolean): string[] =>
    ['-virtfs', `local,path=${dir},mount_tag=${tag},security_model=none,${readonly ? 'readonly=on,' : ''}multidevs=remap`];
  const args = [
    ...kernelBootArgs(arch, { kernel, initrd, append: `console=${machine.console} quiet panic=-1 mitigations=off`, memoryMiB: opts.memoryMiB ?? 512, cpus: opts.cpus ?? 2 }),
    '-nic', 'none',
    ...share(opts.rootDir ?? '/', 'host', true),
    ...(opts.repoDir !== undefined ? share(opts.repoDir, 'repo', true) : []),
    ...share(opts.outDir, 'out', false),
  ];
  const started = Date.now();
  let partial = '';
  const { timedOut } = await startQemu(arch, args, consoleLog, opts.timeoutMs ?? 300_000, opts.onLine && ((chunk) => {
    const lines = (partial + chunk.toString()).split(/\r?\n/);
    partial = lines.pop() ?? '';
    lines.forEach((l) => opts.onLine?.(l));
  })).exited;
  const codeText = fs.existsSync(path.join(opts.outDir, 'exit-code')) ? fs.readFileSync(path.join(opts.outDir, 'exit-code'), 'utf8').trim() : '';
  return {
    exitCode: /^\d+$/.test(codeText) ? Number(codeText) : undefined,
    timedOut,
    consoleLog: fs.readFileSync(consoleLog, 'utf8'),
    wallMs: Date.now() - started,
  };
}
