import type { Command } from 'commander';
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

export function registerAgent(program: Command, context: () => CliContext): void {
  program
    .command('agent')
    .description('supervise containers on this board: restart policies with backoff, re-adoption after a restart (local-only until a broker is configured)')
    .option('--backoff-base <duration>', 'first restart delay, doubling per restart in a row', '10s')
    .option('--backoff-max <duration>', 'longest restart delay', '300s')
    .option('--healthy-after <duration>', 'uptime after which the backoff starts over', '10m')
    .action(async (opts: { backoffBase: string; backoffMax: string; healthyAfter: string }) => {
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
      await withEngine(ctx, async ({ engine, board }) => {
        log({ type: 'agent-started', detail: { pid: process.pid, root: ctx.root, profile: board.profile, runtime: engine.runtime.name, limits: engine.runtime.limitsNote, mode: 'local-only', backoff } });
        await new Supervisor(engine, log, backoff).run(abort.signal);
        log({ type: 'agent-stopped', detail: { containers: 'left running under their monitors' } });
      });
    });
}
