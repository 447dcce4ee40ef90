// Every ContainerEngine test double against the conformance suite the real engine passes
// (test/integration/engine-conformance.test.ts): a double that drifts from the contract fails here.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeEngineConformance } from '../helpers/conformance/engine.js';
import { EngineDouble } from '../helpers/engine-double.js';

const IMAGE = 'registry.test/conformance/busybox:v1';

for (const cgroupsEnforced of [true, false]) {
  describeEngineConformance(`EngineDouble (cgroups ${cgroupsEnforced ? 'enforced' : 'not enforced'})`, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-double-'));
    const engine = new EngineDouble({ dir, images: [IMAGE], cgroupsEnforced });
    return {
      engine, image: IMAGE, missingImage: 'registry.test/conformance/absent:v1',
      oom: { options: {}, cmd: ['sh', '-c', "trap 'exit 0' TERM; sleep 600 & wait"], provoke: (id) => engine.oomKill(id) },
      cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  });
}
