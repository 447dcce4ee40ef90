import type { Command } from 'commander';
import { DEFAULT_GOVERNOR } from '../agent/governor/policy.js';
import { DEFAULT_BACKOFF } from '../agent/restart-policy.js';
import { Supervisor, type SupervisorEvent } from '../agent/supervisor.js';
import { BerthError } from '../errors.js';
import type { CliContext } from './context.js';
import { withEngine } from './engine.js';

function parseMs(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (!m) throw new BerthError('usage', `${flag} takes a duration like 500ms, 10s or 5m, not "${text}"`);
  return Math.round(Number(m[1]) * (m[2] === 'm' ? 60_000 : m[2] === 's' || m[2] === undefined ? 1000 : 1));
}

function parsePercent(text: string, flag: string): number {
  const n = Number(text);
  if (!(n > 0 && n <= 100)) throw new BerthError('usage', `${flag} takes a percentage in (0, 100], not "${text}"`);
  return n;
}

interface AgentFlags {
  backoffBase: string;
  backoffMax: string;
  healthyAfter: string;
  governor: boolean;
  pressureHigh: string;
  pressureLow: string;
  escalateAfter: string;
  resumeAfter: string;
}

export function registerAgent(program: Command, context: () => CliContext): void {
  program
    .command('agent')
    .description('supervise containers on this board: restart policies with backoff, re-adoption after a restart (local-only until a broker is configured)')
    .option('--backoff-base <duration>', 'first restart delay, doubling per restart in a row', '10s')
    .option('--backoff-max <duration>', 'longest restart delay', '300s')
    .option('--healthy-after <duration>', 'uptime after which the backoff starts over', '10m')
    .option('--no-governor', 'do not shed best-effort containers under memory pressure')
    .option('--pressure-high <percent>', 'memory stall share (PSI some, over 5 s) at which best-effort containers are frozen, then stopped', String(DEFAULT_GOVERNOR.highPct))
    .option('--pressure-low <percent>', 'stall share below which pressure counts as calm', String(DEFAULT_GOVERNOR.lowPct))
    .option('--escalate-after <duration>', 'a frozen container is stopped when pressure stays high this long', `${DEFAULT_GOVERNOR.escalateAfterMs / 1000}s`)
    .option('--resume-after <duration>', 'calm time before a shed container is brought back, one at a time', `${DEFAULT_GOVERNOR.resumeAfterMs / 1000}s`)
    .action(async (opts: AgentFlags) => {
      const ctx = context();
      const backoff = {
        ...DEFAULT_BACKOFF,
        baseMs: parseMs(opts.backoffBase, '--backoff-base'),
        maxMs: parseMs(opts.backoffMax, '--backoff-max'),
        healthyAfterMs: parseMs(opts.healthyAfter, '--healthy-after'),
      };
      const abort = new AbortController();
      const stop = (): void => abort.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // One JSON object per line: journald keeps them, and each names the numbers behind the decision.
      const log = (e: SupervisorEvent | { type: string; detail: Record<string, unknown>; container?: string }): void => {
        ctx.out.write(`${JSON.stringify({ time: new Date().toISOString(), event: e.type, ...(e.container !== undefined && { container: e.container }), ...e.detail })}\n`);
      };
      const governorConfig = {
        highPct: parsePercent(opts.pressureHigh, '--pressure-high'),
        lowPct: parsePercent(opts.pressureLow, '--pressure-low'),
        escalateAfterMs: parseMs(opts.escalateAfter, '--escalate-after'),
        resumeAfterMs: parseMs(opts.resumeAfter, '--resume-after'),
      };
      if (governorConfig.lowPct >= governorConfig.highPct) throw new BerthError('usage', '--pressure-low must be below --pressure-high');
      await withEngine(ctx, async ({ engine, board }) => {
        log({ type: 'agent-started', detail: { pid: process.pid, root: ctx.root, profile: board.profile, runtime: engine.runtime.name, limits: engine.runtime.limitsNote, mode: 'local-only', backoff } });
        const loops = [new Supervisor(engine, log, backoff).run(abort.signal)];
        if (opts.governor) {
          const { PressureGovernor } = await import('../agent/governor/governor.js');
          const available = PressureGovernor.available(engine);
          if (available.ok) {
            const parent = engine.ensureParentCgroup();
            const governor = new PressureGovernor(engine, { config: governorConfig, onEvent: log });
            log({ type: 'governor-started', detail: { ...governor.config, containerBudgetBytes: board.containerBudgetBytes, parentCgroup: parent } });
            loops.push(governor.run(abort.signal));
          } else {
            log({ type: 'governor-off', detail: { why: available.why } });
          }
        }
        await Promise.all(loops);
        log({ type: 'agent-stopped', detail: { containers: 'left running under their monitors' } });
      });
    });
}
