import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO, requireBuilt } from '../dist.js';
import { busyboxBinary, TEST_ARCHES } from '../images/build.js';
import { prepareGuest } from './guest.js';
import { runVm } from './qemu.js';
import { collectGuestRun, type GuestSuiteRun } from './suite.js';

/**
 * The arm64 VM (`npm run test:arm`): Debian's arm64 kernel under qemu-system-aarch64 (TCG), a root
 * filesystem of Debian arm64 packages plus the official Node builds (scripts/setup.sh assembles it), the
 * checkout shared at its own path, and berth's native parts cross-built with Debian's toolchains and
 * bind-mounted over the checkout's x86 ones inside the guest. The builds are cached in .cache/vm/arm-native.
 */

const checkout = REPO.replace(/\/$/, '');
export const ARM_ROOTFS = path.join(checkout, '.cache', 'vm', 'arm64-rootfs');
const NATIVE_CACHE = path.join(checkout, '.cache', 'vm', 'arm-native');

/** A userland the VM runs: the cross toolchain's triple, node-gyp's arch, and its Node under the root filesystem. */
interface ArmUserland {
  readonly name: 'arm64' | 'armhf';
  readonly triple: string;
  readonly gypArch: string;
  readonly nodeDir: string;
}

export const ARM64: ArmUserland = { name: 'arm64', triple: 'aarch64-linux-gnu', gypArch: 'arm64', nodeDir: 'usr/local' };
/** The 32-bit userland: Node's last official armv7l build on npm (20.11), hard-float. */
export const ARMHF: ArmUserland = { name: 'armhf', triple: 'arm-linux-gnueabihf', gypArch: 'arm', nodeDir: 'opt/node-armv7l' };

/** Runs a build tool asynchronously (the vitest worker stays responsive); throws with its output on failure. */
function run(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${out.slice(-4000)}`))));
  });
}

function nodeVersion(u: ArmUserland): string {
  const header = path.join(ARM_ROOTFS, u.nodeDir, 'include', 'node', 'node_version.h');
  const text = fs.readFileSync(header, 'utf8');
  const part = (n: string): string => new RegExp(`#define NODE_${n}_VERSION (\\d+)`).exec(text)?.[1] ?? '?';
  return `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
}

/** npm's own node-gyp (npm runs it for every native install), next to the node running the tests. */
function nodeGyp(): string {
  const gyp = path.join(path.dirname(fs.realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (!fs.existsSync(gyp)) throw new Error(`node-gyp not found at ${gyp} (it ships with npm)`);
  return gyp;
}

/**
 * better-sqlite3's addon cross-compiled for `u` against that userland's Node headers; returns the
 * `build` directory to put in place of node_modules/better-sqlite3/build. Cached per package and Node version.
 */
export async function crossBuildSqlite(u: ArmUserland): Promise<string> {
  const src = path.join(checkout, 'node_modules', 'better-sqlite3');
  const version = (JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8')) as { version: string }).version;
  const dir = path.join(NATIVE_CACHE, `better-sqlite3-${version}-node${nodeVersion(u)}-${u.name}`);
  const addon = path.join(dir, 'build', 'Release', 'better_sqlite3.node');
  if (fs.existsSync(addon)) return path.join(dir, 'build');
  const tmp = `${dir}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  for (const f of ['package.json', 'binding.gyp', 'deps', 'src']) fs.cpSync(path.join(src, f), path.join(tmp, f), { recursive: true });
  const tool = (t: string): string => `${u.triple}-${t}`;
  await run(process.execPath, [nodeGyp(), 'rebuild', '--release', `--arch=${u.gypArch}`, `--nodedir=${path.join(ARM_ROOTFS, u.nodeDir)}`], {
    cwd: tmp,
    env: { ...process.env, CC: tool('gcc'), CXX: tool('g++'), AR: tool('ar'), LINK: tool('g++'), npm_config_nodedir: path.join(ARM_ROOTFS, u.nodeDir) },
  });
  fs.rmSync(path.join(tmp, 'build', 'Release', 'obj.target'), { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  return path.join(dir, 'build');
}

/** berth-monitor for arm64 (native/Makefile, cross compiler), into its own directory: the host build stays. */
export async function crossBuildMonitor(): Promise<string> {
  const out = path.join(NATIVE_CACHE, 'monitor-arm64');
  await run('make', ['-s', '-C', path.join(checkout, 'native'), `CC=${ARM64.triple}-gcc`, `BUILD=${out}`]);
  return out;
}

export interface ArmSuiteOptions {
  readonly memoryMiB?: number;
  readonly timeoutMs?: number;
}

/**
 * Boots the arm64 VM running `test/arm/guest/<name>.ts` under the arm64 Node, with berth's dist/ from the
 * checkout and its native parts built for arm64; the armhf better-sqlite3 build is handed to the guest
 * (ARM32_SQLITE_BUILD) for the 32-bit userland it sets up itself.
 */
export async function runArmSuite(name: string, opts: ArmSuiteOptions = {}): Promise<GuestSuiteRun> {
  requireBuilt();
  if (!fs.existsSync(path.join(ARM_ROOTFS, '.berth-key'))) {
    throw new Error(`no arm64 root filesystem in ${ARM_ROOTFS}: run scripts/setup.sh (as root), it assembles it`);
  }
  const [sqlite64, sqlite32, monitor] = await Promise.all([crossBuildSqlite(ARM64), crossBuildSqlite(ARMHF), crossBuildMonitor(), ...TEST_ARCHES.map(busyboxBinary)]);
  const outDir = path.join(checkout, '.cache', 'vm', 'runs', name);
  const guest = await prepareGuest(name, outDir, {
    ARM32_NODE: path.join('/', ARMHF.nodeDir, 'bin', 'node'),
    ARM32_SQLITE_BUILD: sqlite32,
  }, { sourceDir: path.join(checkout, 'test', 'arm', 'guest'), cc: `${ARM64.triple}-gcc` });
  const vm = await runVm({
    arch: 'arm64', rootDir: ARM_ROOTFS, repoDir: checkout, outDir, script: guest.script,
    binds: [
      { from: sqlite64, to: path.join(checkout, 'node_modules', 'better-sqlite3', 'build') },
      { from: monitor, to: path.join(checkout, 'native', 'build') },
    ],
    memoryMiB: opts.memoryMiB ?? 1024, cpus: 2, timeoutMs: opts.timeoutMs ?? 900_000,
  });
  const run = collectGuestRun(vm, outDir);
  const agentLog = path.join(outDir, 'agent.log');
  if (run.results.completed !== true && fs.existsSync(agentLog)) console.error(`agent log (${agentLog}):\n${fs.readFileSync(agentLog, 'utf8').slice(-4000)}`);
  return run;
}
