import { defineConfig } from 'vitest/config';
import { SummaryReporter } from './test/helpers/summary-reporter.js';

// Two tiers: `unit` is pure and fast (fixture trees stand in for /proc and /sys); `integration` needs
// root and starts real services (mosquitto, docker-registry, OCI runtimes) itself.
export default defineConfig({
  test: {
    reporters: ['default', new SummaryReporter()],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 10_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // No lookup or packet of a test leaves the host (test/helpers/net/isolation-setup.ts).
          globalSetup: ['test/helpers/net/isolation-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Real services and real processes: one fork runs the files one after another on a 2-core machine.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
      {
        test: {
          // Boots qemu VMs (test/helpers/vm): run by `npm run test:vm`, one file at a time.
          name: 'vm',
          include: ['test/vm/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 300_000,
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
      {
        test: {
          // berth in an emulated arm64 VM (test/helpers/vm/arm.ts): run by `npm run test:arm`.
          name: 'arm',
          include: ['test/arm/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 1_200_000,
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
