// esbuild plugins for the agent's one-file bundle (scripts/bundle.mjs, dist/bundle/agent.mjs). Without
// splitting, everything the agent can reach is in one file and runs or loads at start unless kept out:
// these keep out what an idle agent never uses (BENCHMARKS.md, issue 22).

// esbuild hoists every `import … from 'node:x'` of the whole file to its top, so the agent would load tls,
// https and zlib at start for code that runs only on a pull or an upgrade. Those three are required instead
// where their importer runs: in a lazy module (a dynamic import), when it is first imported. Only those:
// each such import copies the module's exports (esbuild's __toESM), and doing that for fs or path in ~200
// modules made the copy loop itself TurboFan-hot at start.
const LAZY_BUILTINS = new Set(['tls', 'https', 'zlib']);

/** Node built-ins in LAZY_BUILTINS required where used, not imported at the top of the bundle. */
export const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: /^(node:)?(tls|https|zlib)$/ }, (args) => {
      const name = args.path.replace(/^node:/, '');
      return args.kind === 'import-statement' && LAZY_BUILTINS.has(name) ? { path: name, namespace: 'lazy-builtin' } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(`node:${args.path}`)});`, loader: 'js' }));
  },
};
