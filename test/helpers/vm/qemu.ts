import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildInitramfs } from './initramfs.js';
import { findVmKernel, type VmKernel } from './kernel.js';

/**
 * Boots a throwaway Linux VM under qemu's TCG (no KVM needed) that sees this machine's files read-only,
 * runs one shell script as root in a pure cgroup v2 world, and powers off. The serial console is
 * written to `<outDir>/console.log` as it arrives.
 */

export interface VmRunOptions {
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

export async function runVm(opts: VmRunOptions): Promise<VmRunResult> {
  const kernel = opts.kernel ?? findVmKernel();
  fs.mkdirSync(opts.outDir, { recursive: true });
  const initrd = path.join(opts.outDir, 'initrd.gz');
  fs.writeFileSync(initrd, buildInitramfs({ busybox: kernel.busybox, modulesDir: kernel.modulesDir, outDir: opts.outDir, script: opts.script }));
  const consoleLog = path.join(opts.outDir, 'console.log');
  fs.rmSync(path.join(opts.outDir, 'exit-code'), { force: true });
  const args = [
    '-machine', 'q35', '-cpu', 'max', '-m', String(opts.memoryMiB ?? 512), '-smp', String(opts.cpus ?? 2),
    '-nographic', '-no-reboot', '-nic', 'none', '-kernel', kernel.vmlinuz, '-initrd', initrd,
    '-append', 'console=ttyS0 quiet panic=-1 mitigations=off',
    '-virtfs', 'local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap',
    '-virtfs', `local,path=${opts.outDir},mount_tag=out,security_model=none,multidevs=remap`,
  ];
  const started = Date.now();
  const log = fs.createWriteStream(consoleLog);
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let partial = '';
  const onData = (chunk: Buffer): void => {
    log.write(chunk);
    if (!opts.onLine) return;
    const lines = (partial + chunk.toString()).split(/\r?\n/);
    partial = lines.pop() ?? '';
    lines.forEach((l) => opts.onLine?.(l));
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 300_000);
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', () => resolve());
  });
  clearTimeout(timer);
  await new Promise<void>((resolve) => log.end(resolve));
  const codeText = fs.existsSync(path.join(opts.outDir, 'exit-code')) ? fs.readFileSync(path.join(opts.outDir, 'exit-code'), 'utf8').trim() : '';
  return {
    exitCode: /^\d+$/.test(codeText) ? Number(codeText) : undefined,
    timedOut,
    consoleLog: fs.readFileSync(consoleLog, 'utf8'),
    wallMs: Date.now() - started,
  };
}
