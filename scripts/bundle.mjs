#!/usr/bin/env node
// Bundles the compiled CLI (dist/cli/entry.js and everything it imports) into dist/bundle/: one
// entry file plus chunks for what commands import lazily, so `berth` loads a few files instead of
// ~150 modules through Node's ESM loader. Run by `npm run build`, after tsc.
//
// The outputs sit two levels below the package root, as dist/<dir>/<file>.js do, so code that finds
// package files relative to its own module (package.json, board-profiles/, native/build/) still works.
// Native addons stay external: better-sqlite3 and koffi locate their .node files from their own paths.
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { lazyBuiltins, lazyValidators } from './bundle-agent.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

// Chunk names carry a content hash: clear the old ones, or they pile up beside the current build.
await rm(path.join(root, 'dist/bundle'), { recursive: true, force: true });
const common = {
  outdir: path.join(root, 'dist/bundle'),
  outExtension: { '.js': '.mjs' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  // node18: the armv6 bundle runs Debian armel's Node 18 (src/flash/bundle-armv6.ts); every other board has >= 20.
  target: 'node18',
  external: ['better-sqlite3', 'koffi'],
  // Bundled CommonJS (commander, tar-stream) calls require() for Node's builtins: give every file one.
  banner: { js: "import { createRequire as __berthRequire } from 'node:module'; const require = __berthRequire(import.meta.url);" },
  legalComments: 'none',
  // No comments or indentation: V8 keeps every loaded module's source in the heap, and a single
  // non-Latin-1 character in a comment doubles that copy (two-byte string). Names stay for stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
};
await build({ ...common, entryPoints: { berth: path.join(root, 'dist/cli/entry.js') }, splitting: true });
// `berth agent` (bin/berth picks it by the verb): everything the agent can reach in ONE file, its lazy
// imports included (esbuild inlines them without splitting; they still run only when imported). Split,
// an idle agent loaded ~90 chunk files, and resolving their imports made Node's ESM loader hot enough
// for TurboFan to compile it (3.4 MiB of code, BENCHMARKS.md issue 22). Other verbs keep the split build:
// a one-shot command loads only what it runs.
await build({ ...common, entryPoints: { agent: path.join(root, 'dist/cli/agent-entry.js') }, splitting: false, plugins: [lazyBuiltins, lazyValidators(root, common.outdir)] });
// The agent's pull process (`berth agent-pull`, src/agent/pull-child): one file with just the pull path. Its
// node:http is required like the agent's (lazyBuiltins): the undici trap of the agent tests watches it too.
await build({ ...common, entryPoints: { 'agent-pull': path.join(root, 'dist/agent/pull-child/entry.js') }, splitting: false, plugins: [lazyBuiltins] });

// What bin/berth runs for the other verbs: the same CLI as ONE CommonJS file, cli.cjs, started by berth.cjs
// (src/cli/cached-entry.ts), which runs it with V8's code cache (src/cli/code-cache.ts): Node 20 caches
// compiled code for scripts only, not ES modules. import.meta.url becomes the file's own URL (the code finds
// package files relative to it), and import() becomes require(): a vm.Script has no ESM loader behind it.
// The validators go beside it as for the agent: V8 reads and keeps every loaded byte of source.
const cjs = {
  ...common,
  format: 'cjs',
  outExtension: { '.js': '.cjs' },
  splitting: false,
  supported: { 'dynamic-import': false },
  define: { 'import.meta.url': '__berthUrl' },
  // "use strict" first: the ES modules were strict, and a directive after the banner would not count.
  // __berthBuiltin: see shareBuiltinFacades below.
  banner: { js: "'use strict';const __berthUrl = require('node:url').pathToFileURL(__filename).href;const __berthFacades = new Map();function __berthBuiltin(id) { let m = __berthFacades.get(id); if (m === undefined) __berthFacades.set(id, (m = __toESM(require(id), 1))); return m; }" },
};

// esbuild gives every module that imports a Node built-in by default or namespace import its own facade
// object, `__toESM(require("node:fs"), 1)`: a new object with one getter per property (fs has ~100). The CLI
// bundles hold ~150 of them, all made at load: 40–80 ms at load 8 in a micro-benchmark, 1–6 ms for one per
// built-in (BENCHMARKS.md, "Issue 22: run --rm, session 8"). A built-in's facade is the same for every
// importer (getters onto the same module, `default` the module itself), so the bundle shares one each.
const FACADE = /__toESM\(require\("(node:[a-z_/]+)"\),1\)/g;
async function shareBuiltinFacades(file) {
  const source = await readFile(file, 'latin1');
  const shared = source.replace(FACADE, (_, id) => `__berthBuiltin(${JSON.stringify(id)})`);
  // esbuild changed the helper's shape: say so rather than ship a bundle that quietly lost the gain.
  if (shared === source) throw new Error(`${file}: no __toESM(require("node:…"), 1) to share: check scripts/bundle.mjs against esbuild's output`);
  await writeFile(file, shared, 'latin1');
}
// cli-run.cjs: the same for `run` and `create` only (src/cli/run-bundle.ts), a third of the whole CLI's size.
await build({ ...cjs, entryPoints: { cli: path.join(root, 'dist/cli/cjs-main.js'), 'cli-run': path.join(root, 'dist/cli/cjs-run-main.js') }, plugins: [lazyBuiltins, lazyValidators(root, common.outdir)] });
// The code cache reads the files as Latin-1 (faster than UTF-8): esbuild escapes non-ASCII by default; check.
// The cache is keyed by one hash of both, known here, so a start never hashes megabytes.
const cliHash = createHash('sha256');
for (const f of ['cli.cjs', 'cli-run.cjs']) {
  await shareBuiltinFacades(path.join(common.outdir, f));
  const source = await readFile(path.join(common.outdir, f));
  if (source.some((b) => b > 0x7f)) throw new Error(`dist/bundle/${f} is not ASCII: src/cli/code-cache.ts reads it as Latin-1`);
  cliHash.update(source);
}
await build({ ...cjs, entryPoints: { berth: path.join(root, 'dist/cli/cached-entry.js') }, define: { ...cjs.define, BERTH_CLI_HASH: JSON.stringify(cliHash.digest('hex').slice(0, 16)) } });
