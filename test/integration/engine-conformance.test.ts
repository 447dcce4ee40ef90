// The ContainerEngine conformance suite against the real engine: LocalEngine over this host's crun or
// runc and berth-monitor, with a busybox image pulled from a private registry on loopback. The same
// cases run against the test doubles in test/unit/engine-doubles.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { detectBoard } from '../../src/board/index.js';
import { hostPaths } from '../../src/host/paths.js';
import { BerthRoot } from '../../src/root.js';
import { berthSync } from '../helpers/berth-cli.js';
import { describeEngineConformance } from '../helpers/conformance/engine.js';
import { requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startRegistry } from '../helpers/services/registry.js';
import { netTestEnv } from '../helpers/net/test-env.js';

describeEngineConformance('LocalEngine (real runtime)', async () => {
  requireBuilt();
  const registry = await startRegistry();
  const image = `${registry.host}/conformance/busybox:v1`;
  await pushBusyboxImage(registry, 'conformance/busybox', 'v1');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-conformance-'));
  expect(berthSync(['--root', root, 'pull', '-q', image], { BERTH_HOST_ROOT: '', BERTH_RUNTIME: '' }).code).toBe(0);
  const host = hostPaths('/');
  const parts = new BerthRoot({ root, host, env: { PATH: process.env.PATH, ...netTestEnv() }, version: 'test', board: detectBoard(host) });
  const engine = await parts.engine();
  return {
    engine, image, missingImage: `${registry.host}/conformance/absent:v1`,
    // A kernel OOM kill needs an enforced memory limit: only where the runtime enforces cgroups.
    ...(engine.runtime.cgroupsEnforced && { oom: { options: { memory: 16 * 1024 * 1024, memorySwap: 16 * 1024 * 1024 }, cmd: ['sh', '-c', 'x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done'] } }),
    cleanup: async () => {
      parts.close();
      fs.rmSync(root, { recursive: true, force: true });
      await registry.stop();
    },
  };
});
