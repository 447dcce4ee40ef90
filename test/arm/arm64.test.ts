import { beforeAll, describe, expect, it } from 'vitest';
import { runArmSuite } from '../helpers/vm/arm.js';

// berth itself on emulated ARM: one boot of Debian's arm64 kernel under qemu-system-aarch64 (TCG), with a
// root filesystem of Debian arm64 packages, the official arm64 Node and berth's native parts built for
// arm64 (test/helpers/vm/arm.ts). test/arm/guest/arm64.ts drives the agent, the 32-bit variants and a
// 32-bit userland there; a failed run prints the VM's console.

const MiB = 1024 * 1024;
let r: Record<string, any> = {};

/** ELF class and machine from `od -An -tx1` of an executable's first 20 bytes. */
function elfOf(odOutput: string): { class32: boolean; machine: number } {
  const bytes = odOutput.trim().split(/\s+/).slice(0, 20).map((b) => parseInt(b, 16));
  return { class32: bytes[4] === 1, machine: (bytes[18] ?? 0) | ((bytes[19] ?? 0) << 8) };
}

beforeAll(async () => {
  ({ results: r } = await runArmSuite('arm64'));
  // For BENCHMARKS.md (the agent's idle footprint on arm64): printed, not asserted.
  if (r.footprint) console.log(`arm64 footprint, KiB: agent ${JSON.stringify(r.footprint.agent)}, bare node ${JSON.stringify(r.footprint.bareNode)}`);
}, 1_200_000);

describe('berth on an emulated arm64 board', () => {
  it('boots the arm64 guest with cgroup v2 and completes the guest suite under the arm64 Node', () => {
    expect(r.error).toBeUndefined();
    expect(r.completed).toBe(true);
    expect(r.node.arch).toBe('arm64');
    expect(r.node.version).toMatch(/^v22\./);
    expect(r.node.machine).toBe('aarch64');
  });

  it('berth board --json: the generic arm64 profile, a 64-bit userland, arm64 first', () => {
    expect(r.board.profile).toBe('generic-arm64');
    expect(r.board.matchedBy).toBe('fallback');
    expect(r.board.userland).toMatchObject({ arch: 'arm64', bits: 64 });
    expect(r.board.platforms).toEqual(['linux/arm64', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
  });

  it('the agent applies a desired state: the linux/arm64 variant, under crun, reported applied', () => {
    expect(r.reported.status).toBe('applied');
    expect(r.reported.services.web).toMatchObject({ state: 'running', image: r.image.ref });
    const arm64 = r.image.digests['linux/arm64'];
    expect(arm64).toMatch(/^sha256:/);
    expect(r.reported.services.web.imageDigest).toBe(arm64);
    expect(r.containers.web.ImageDigest).toBe(arm64);
    expect(r.containers.web.Runtime).toBe('crun');
    expect(r.containers.web.Limits.Enforced).toBe(true);
    expect(r.progress.some((p: any) => p.phase === 'pull')).toBe(true);
  });

  it('berth exec runs a command inside the running service (the VM boots by switch_root, not chroot)', () => {
    expect(r.exec, 'no web container to exec into').toBeDefined();
    expect(r.exec.code, r.exec.stderr).toBe(0);
    expect(r.exec.stdout).toBe('exec-ok\nhog\n');
  });

  it('enforces the memory limit: memory.max set, the greedy service OOM-killed, web still running', () => {
    expect(r.webCgroup.memoryMax).toBe(String(48 * MiB));
    expect(r.webCgroup.controllers).toMatch(/memory/);
    expect(r.containers.greedy.Limits.CgroupFiles['memory.max']).toBe(String(32 * MiB));
    expect(r.containers.greedy.State).toMatchObject({ Status: 'exited', OOMKilled: true, ExitCode: 137 });
    expect(r.containers.web.State.Status).toBe('running');
  });

  it('telemetry flows from the arm64 board', () => {
    expect(r.telemetry.count).toBeGreaterThan(1);
    expect(r.telemetry.last.host.memory.totalBytes).toBeGreaterThan(0);
    expect(r.telemetry.last.services.web).toMatchObject({ state: 'running', measured: true });
    expect(r.telemetry.last.services.web.memoryCurrentBytes).toBeGreaterThan(8 * MiB);
  });

  it('the arm/v7 and arm/v6 variants run: 32-bit ARM executables from the matching manifests', () => {
    for (const [key, platform] of [['v7', 'linux/arm/v7'], ['v6', 'linux/arm/v6']] as const) {
      const run = r[key];
      expect(run.code, `${key}: ${run.stderr}`).toBe(0);
      expect(elfOf(run.stdout)).toEqual({ class32: true, machine: 40 }); // ELFCLASS32, EM_ARM
      expect(run.inspect.ImageDigest).toBe(r.image.digests[platform]);
    }
  });

  it('a 32-bit userland (armv7l Node) sees arm and picks arm/v7 before arm/v6', () => {
    const u = r.userland32;
    expect(u.board.userland).toMatchObject({ arch: 'arm', bits: 32 });
    expect(u.board.platforms).toEqual(['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
    expect(u.pull.code, u.pull.stderr).toBe(0);
    expect(u.pull.stdout).toContain(r.image.digests['linux/arm/v7']);
    expect(u.images).toEqual([expect.objectContaining({ platform: 'linux/arm/v7', manifestDigest: r.image.digests['linux/arm/v7'] })]);
  });
});
