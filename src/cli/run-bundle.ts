// Which verbs bin/berth runs from the slim run bundle, dist/bundle/cli-run.cjs (cjs-run-main.ts), instead of
// the whole CLI, cli.cjs (cjs-main.ts). `berth run` is the start-up that counts (issue 22: run --rm against
// podman), and the whole CLI is 3× the code it needs: yaml, mqtt, ws, pg, the fleet service and the agent.
// Every byte of a loaded bundle is read and kept as source, and every module's top level runs, whether
// the verb uses it or not (BENCHMARKS.md, "Issue 22: run --rm, session 8").
//
// No imports: cached-entry.ts (its own small bundle, berth.cjs) reads this list before either CLI bundle
// loads. test/unit/run-bundle.test.ts checks it against what cjs-run-main.ts registers.

/** The verbs that cjs-run-main.ts registers (registerRun, run.ts): exactly these, no more, no fewer. */
export const RUN_BUNDLE_VERBS: readonly string[] = ['run', 'create'];
