import { describe, expect, it } from 'vitest';
import { ALL_VERBS } from '../../src/cli/all-verbs.js';
import { buildProgram } from '../../src/cli/program.js';
import { RUN_BUNDLE_VERBS } from '../../src/cli/run-bundle.js';
import { registerRun } from '../../src/cli/run.js';

const names = (verbs: Parameters<typeof buildProgram>[0]): string[] => buildProgram(verbs).commands.map((c) => c.name());

// bin/berth sends the verbs in RUN_BUNDLE_VERBS to cli-run.cjs, which registers registerRun only
// (src/cli/cjs-run-main.ts): a verb listed there but not registered would fail as unknown, and one
// registered but not listed would never be run from the slim bundle.
describe('the slim run bundle (src/cli/run-bundle.ts)', () => {
  it('lists exactly the verbs that registerRun adds', () => {
    expect([...RUN_BUNDLE_VERBS].sort()).toEqual(names([registerRun]).sort());
  });

  it('has every one of them defined as in the whole CLI, options and help included', () => {
    const whole = buildProgram(ALL_VERBS);
    const slim = buildProgram([registerRun]);
    for (const verb of RUN_BUNDLE_VERBS) {
      const a = whole.commands.find((c) => c.name() === verb);
      const b = slim.commands.find((c) => c.name() === verb);
      expect(a, verb).toBeDefined();
      expect(b!.helpInformation()).toBe(a!.helpInformation());
    }
  });
});
