import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BerthError } from '../errors.js';
import { elfDependencies } from './elf.js';
import type { Ext4Install } from './ext4.js';
import { execTool } from './exec.js';

/**
 * The Node of the armv6 bundle (Pi Zero, Zero W, Pi 1: ARM1176, ARMv6KZ + VFPv2, 512 MiB). Node's official
 * builds stop at ARMv7, and only Debian's packages and the npm registry are reachable here, so the route is
 * the Node that Debian bookworm's armel port ships: nodejs 18.x, which Debian builds for ARMv6K with VFPv2
 * (its package requires armv6k-support and vfpv2-support: exactly a BCM2835).
 *
 * An armel Node does not use the board's C library: Raspberry Pi OS's 32-bit userland is armhf (another
 * float ABI) and its /lib/ld-linux.so.3 is a link to the armhf loader. So the bundle carries the armel
 * loader and every library Node needs (the DT_NEEDED closure) in node/lib/, and bin/berth starts Node
 * through that loader (`ld-linux.so.3 --library-path node/lib node/bin/node`): nothing of the board's
 * userland is loaded, and the same bundle runs on Debian armel and on Pi OS armhf.
 *
 * Debian's libnode reads five of its built-in modules (acorn, cjs-module-lexer, undici) from
 * /usr/share/nodejs at start-up, a path compiled in. They are carried in node/share/nodejs/ and flash
 * installs them at that path (src/flash/payload.ts), where Debian's own node-* packages put the same files.
 */

/** The Debian armel packages the Node comes from; libnode-dev brings the headers native addons build against. */
export const ARMEL_NODE_PACKAGES = ['nodejs', 'libnode-dev'] as const;

/** Debian's compiled-in path of the externalized built-ins, and the files under it that libnode reads. */
export const DEBIAN_NODE_SHARE = '/usr/share/nodejs';
export const EXTERNAL_BUILTINS = [
  'cjs-module-lexer/lexer.js', 'cjs-module-lexer/dist/lexer.js', 'undici/undici-fetch.js', 'acorn/dist/acorn.js', 'acorn-walk/dist/walk.js',
] as const;

/** The armel dynamic loader, bundled in node/lib; bin/berth runs Node through it when present. */
export const ARMEL_LOADER = 'ld-linux.so.3';

const MULTIARCH = 'arm-linux-gnueabi';

/**
 * Debian armel's Node, unpacked under `<cache>/node/debian-armel-<version>`: `root/` (the packages as
 * dpkg would install them), `nodedir/include/node` (headers for node-gyp, libuv's beside them), and the
 * version. The packages are resolved by apt as on an empty armel system (the host needs the armel
 * architecture in dpkg, as scripts/setup.sh adds) and only unpacked, never installed. Cached once complete.
 */
export async function fetchDebianArmelNode(cache: string, log: (l: string) => void): Promise<{ root: string; nodedir: string; version: string }> {
  const base = path.join(cache, 'node', 'debian-armel');
  const root = path.join(base, 'root');
  const nodedir = path.join(base, 'nodedir');
  if (!existsSync(path.join(base, '.complete'))) {
    const debs = path.join(cache, 'downloads', 'armel-debs');
    const status = path.join(cache, 'downloads', 'armel-status');
    await fs.mkdir(path.join(debs, 'partial'), { recursive: true });
    await fs.writeFile(status, '');
    // An empty dpkg status and armel as the native architecture: apt resolves the whole closure.
    const apt = ['-qq', '-y', '--no-install-recommends', '-o', 'APT::Architecture=armel', '-o', `Dir::State::status=${status}`, '-o', 'APT::Sandbox::User=root'];
    log(`apt-get: Debian armel ${ARMEL_NODE_PACKAGES.join(' ')} and their libraries`);
    const uris = await execTool('apt-get', ['install', '--print-uris', ...apt, '-o', `Dir::Cache::archives=${path.join(cache, 'downloads', 'armel-none')}`, ...ARMEL_NODE_PACKAGES], { category: 'network' });
    await execTool('apt-get', ['install', '-d', ...apt, '-o', `Dir::Cache::archives=${debs}`, ...ARMEL_NODE_PACKAGES], { category: 'network' });
    const files = uris.stdout.toString().split('\n').map((l) => l.split(' ')[1]).filter((f): f is string => f !== undefined && f.endsWith('.deb'));
    if (files.length === 0) {
      throw new BerthError('host', 'apt found no armel nodejs package', { hint: 'dpkg --add-architecture armel && apt-get update (scripts/setup.sh does this)' });
    }
    await fs.rm(base, { recursive: true, force: true });
    await fs.mkdir(root, { recursive: true });
    for (const f of files) await execTool('dpkg-deb', ['-x', path.join(debs, f), root]);
    // node-gyp wants <nodedir>/include/node; Debian keeps libuv's headers beside node's, not inside.
    await fs.mkdir(path.join(nodedir, 'include'), { recursive: true });
    await fs.cp(path.join(root, 'usr', 'include', 'node'), path.join(nodedir, 'include', 'node'), { recursive: true, dereference: true });
    await fs.cp(path.join(root, 'usr', 'include', 'uv.h'), path.join(nodedir, 'include', 'node', 'uv.h'));
    await fs.cp(path.join(root, 'usr', 'include', 'uv'), path.join(nodedir, 'include', 'node', 'uv'), { recursive: true });
    await fs.writeFile(path.join(base, '.complete'), `${files.join('\n')}\n`);
  }
  const text = await fs.readFile(path.join(nodedir, 'include', 'node', 'node_version.h'), 'utf8');
  const part = (n: string): string => new RegExp(`#define NODE_${n}_VERSION (\\d+)`).exec(text)?.[1] ?? '?';
  return { root, nodedir, version: `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}` };
}

/**
 * Fills `<bundle>/node`: bin/node (Debian's, unchanged), lib/ (the loader and the DT_NEEDED closure of node,
 * resolved in the unpacked root as the loader would: /lib/<multiarch> then /usr/lib/<multiarch>) and
 * share/nodejs/ (the externalized built-ins).
 */
export async function assembleArmelNode(root: string, nodeOut: string): Promise<void> {
  const libDirs = [path.join(root, 'lib', MULTIARCH), path.join(root, 'usr', 'lib', MULTIARCH)];
  await fs.mkdir(path.join(nodeOut, 'bin'), { recursive: true });
  await fs.mkdir(path.join(nodeOut, 'lib'), { recursive: true });
  await fs.copyFile(path.join(root, 'usr', 'bin', 'node'), path.join(nodeOut, 'bin', 'node'));
  await fs.chmod(path.join(nodeOut, 'bin', 'node'), 0o755);
  await fs.copyFile(path.join(libDirs[0]!, ARMEL_LOADER), path.join(nodeOut, 'lib', ARMEL_LOADER));
  await fs.chmod(path.join(nodeOut, 'lib', ARMEL_LOADER), 0o755);
  const queue = [path.join(root, 'usr', 'bin', 'node')];
  const copied = new Set<string>([ARMEL_LOADER]);
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const lib of (await neededOf(file)) ?? []) {
      if (copied.has(lib)) continue;
      const from = libDirs.map((d) => path.join(d, lib)).find((p) => existsSync(p));
      if (!from) throw new BerthError('host', `Debian armel's node needs ${lib}, which none of its packages in ${root} holds`);
      await fs.copyFile(from, path.join(nodeOut, 'lib', lib));
      copied.add(lib);
      queue.push(from);
    }
  }
  for (const f of EXTERNAL_BUILTINS) {
    const to = path.join(nodeOut, 'share', 'nodejs', f);
    await fs.mkdir(path.dirname(to), { recursive: true });
    await fs.copyFile(path.join(root, DEBIAN_NODE_SHARE, f), to);
  }
}

async function neededOf(file: string): Promise<readonly string[] | undefined> {
  const fh = await fs.open(file, 'r');
  try {
    return (await elfDependencies(async (offset, len) => {
      const buf = Buffer.alloc(len);
      const { bytesRead } = await fh.read(buf, 0, len, offset);
      return buf.subarray(0, bytesRead);
    }))?.needed;
  } finally {
    await fh.close();
  }
}

/** Where the bundle's externalized built-ins go on the board: links at Debian's path into the bundle (empty for other bundles). */
export function sharedBuiltinEntries(bundleDir: string, installDir: string): Ext4Install[] {
  if (!existsSync(path.join(bundleDir, 'node', 'share', 'nodejs'))) return [];
  return EXTERNAL_BUILTINS.map((f) => ({ kind: 'symlink', path: path.posix.join(DEBIAN_NODE_SHARE, f), target: path.posix.join(installDir, 'node', 'share', 'nodejs', f) }));
}

/**
 * koffi has no prebuilt armel (soft-float) addon: it is built from the sources its package ships, with
 * Debian's arm-linux-gnueabi cross compiler, against the Node-API headers it vendors (Node-API: one build
 * serves any Node). koffi looks for it as build/koffi/linux_armsf (its name for soft-float ARM).
 * Returns the directory holding koffi.node; cached by koffi version.
 */
export async function crossBuildKoffiArmel(packageRoot: string, cache: string, log: (l: string) => void): Promise<string> {
  const src = path.join(packageRoot, 'node_modules', 'koffi');
  const version = (JSON.parse(await fs.readFile(path.join(src, 'package.json'), 'utf8')) as { version: string }).version;
  const dir = path.join(cache, `koffi-${version}-armel`);
  if (existsSync(path.join(dir, 'koffi.node'))) return dir;
  log(`cross-compiling koffi ${version} for ${MULTIARCH} (a few minutes)`);
  const work = `${dir}.tmp`;
  await fs.rm(work, { recursive: true, force: true });
  // Its CMakeLists reaches ../../lib, ../../vendor and ../../package.json: they are copied with their layout, and patched.
  for (const d of ['src/koffi', 'lib', 'vendor', 'package.json']) await fs.cp(path.join(src, d), path.join(work, 'koffi', d), { recursive: true });
  const asm = path.join(work, 'koffi', 'src', 'koffi', 'src', 'abi_arm32_asm.S');
  await fs.writeFile(asm, armv6Trampolines(await fs.readFile(asm, 'utf8')));
  const toolchain = path.join(work, 'toolchain.cmake');
  await fs.writeFile(toolchain, ['Linux', 'arm'].map((v, i) => `set(${i === 0 ? 'CMAKE_SYSTEM_NAME' : 'CMAKE_SYSTEM_PROCESSOR'} ${v})`)
    .concat(['ASM', 'C'].map((l) => `set(CMAKE_${l}_COMPILER ${MULTIARCH}-gcc)`), `set(CMAKE_CXX_COMPILER ${MULTIARCH}-g++)`).join('\n'));
  const build = path.join(work, 'build');
  await execTool('cmake', ['-S', path.join(work, 'koffi', 'src', 'koffi'), '-B', build, '-DCMAKE_BUILD_TYPE=Release', `-DCMAKE_TOOLCHAIN_FILE=${toolchain}`,
    `-DCMAKE_MODULE_PATH=${path.join(src, 'src', 'cnoke', 'assets')}`, `-DNODE_JS_INCLUDE_DIRS=${path.join(src, 'vendor', 'node-api-headers', 'include')}`,
    // The relay saves and restores d0-d7 (VFPv2, which every ARMv6 Pi has, as Debian's armel Node requires).
    '-DCMAKE_ASM_FLAGS=-march=armv6 -mfpu=vfp',
    // What cnoke passes: the build runs a script of koffi's (its trampolines) with this Node.
    `-DNODE_JS_EXECPATH=${process.execPath}`]);
  await execTool('cmake', ['--build', build, '-j2']);
  await fs.mkdir(dir, { recursive: true });
  await fs.copyFile(path.join(build, 'koffi.node'), path.join(dir, 'koffi.node'));
  await fs.rm(work, { recursive: true, force: true });
  return dir;
}

/**
 * koffi's 32-bit ARM trampolines load their index with one `mov r12, #id`, ids up to 8191: an immediate
 * only ARMv6T2+ (movw) encodes. For ARMv6 each loads it in two encodable halves; every trampoline stays
 * the same size (koffi finds one by its index times the stride). Throws when the source no longer matches.
 */
export function armv6Trampolines(source: string): string {
  const one = '    mov r12, \\id\n';
  if (!source.includes(one)) throw new BerthError('host', "koffi's abi_arm32_asm.S changed: its trampoline macro no longer loads the index with `mov r12, \\id`");
  return source.replace(one, '    mov r12, #(\\id & 0xff)\n    orr r12, r12, #(\\id & 0xff00)\n');
}
