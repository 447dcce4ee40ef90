// esbuild plugins for the agent's one-file bundle (scripts/bundle.mjs, dist/bundle/agent.mjs). Without
// splitting, everything the agent can reach is in one file and runs or loads at start unless kept out:
// these keep out what an idle agent never uses (BENCHMARKS.md, issue 22).
import path from 'node:path';
import { build } from 'esbuild';

// esbuild hoists every `import … from 'node:x'` of the whole file to its top, so the agent would load tls,
// https and zlib at start for code that runs only on a pull or an upgrade. Those three are required instead
// where their importer runs: in a lazy module (a dynamic import), when it is first imported. Only those:
// each such import copies the module's exports (esbuild's __toESM), and doing that for fs or path in ~200
// modules made the copy loop itself TurboFan-hot at start.
// `http` is here for another reason: Node ≥ 22's `http` has lazy getters (WebSocket, CloseEvent, MessageEvent)
// that load undici, and an ESM `import` of a built-in reads every export to build its facade. undici compiles
// its HTTP parser to WebAssembly at load, which V8's lite mode (bin/berth, `berth agent`) does not have: the
// agent crashed at start on Node 22. `require` builds no facade, so nothing reads those getters.
const LAZY_BUILTINS = new Set(['tls', 'https', 'zlib', 'http']);

/** Node built-ins in LAZY_BUILTINS required where used, not imported at the top of the bundle. */
export const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(node:)?(${[...LAZY_BUILTINS].join('|')})$`) }, (args) => {
      const name = args.path.replace(/^node:/, '');
      return args.kind === 'import-statement' && LAZY_BUILTINS.has(name) ? { path: name, namespace: 'lazy-builtin' } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(`node:${args.path}`)});`, loader: 'js' }));
  },
};

// Precompiled validators (src/generated, ajv standalone: pure functions) that an idle agent never runs: a
// desired state's, a signed envelope's, a command's, and the OCI documents' of a pull. V8 keeps a loaded
// file's whole source in the heap, 340 KB for these (desired.validate alone 270 KB). Each is bundled as its
// own CommonJS file beside agent.mjs and required on its first call, synchronously, as the callers expect.
// Not the board-profile and agent-config validators: every agent start runs those.
const LAZY_VALIDATORS = ['desired', 'signed', 'command', 'oci-manifest', 'oci-config', 'oci-index'];

/**
 * Replaces imports of the LAZY_VALIDATORS in the agent bundle with a stand-in that requires the real one
 * from `<outdir>/validate-<name>.cjs` on its first call, and writes those files.
 */
export function lazyValidators(root, outdir) {
  const files = new Map(LAZY_VALIDATORS.map((n) => [path.join(root, `dist/generated/${n}.validate.js`), n]));
  return {
    name: 'lazy-validators',
    setup(b) {
      b.onStart(async () => {
        await build({
          entryPoints: Object.fromEntries(LAZY_VALIDATORS.map((n) => [`validate-${n}`, path.join(root, `dist/generated/${n}.validate.js`)])),
          outdir, outExtension: { '.js': '.cjs' }, bundle: true, format: 'cjs', platform: 'node', target: b.initialOptions.target,
          minifyWhitespace: true, minifySyntax: true, legalComments: 'none', logLevel: 'warning',
        });
      });
      b.onResolve({ filter: /^\.\/validate-[a-z-]+\.cjs$/ }, (args) => ({ path: args.path, external: true }));
      b.onResolve({ filter: /\.validate\.js$/ }, (args) => {
        const name = files.get(path.resolve(args.resolveDir, args.path));
        return name === undefined ? undefined : { path: name, namespace: 'lazy-validator' };
      });
      // ajv's validators leave their errors on themselves (src/config/schema.ts): the stand-in copies them.
      b.onLoad({ filter: /.*/, namespace: 'lazy-validator' }, (args) => ({
        contents: `let real;
export default function validate(...args) {
  real ??= require(${JSON.stringify(`./validate-${args.path}.cjs`)}).default;
  const ok = real(...args);
  validate.errors = real.errors;
  return ok;
}
export { validate };`,
        loader: 'js',
      }));
    },
  };
}
