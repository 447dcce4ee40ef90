import type { Command } from 'commander';
import { parseTimeFlag } from '../duration.js';
import type { ContainerEvent } from '../runtime/engine-api.js';
import { formatEventLine, parseEventFilters, pastEvents, toDockerEvent } from '../runtime/events.js';
import type { CliContext } from './context.js';
import { holdOpen, withEngine } from './engine.js';

const collect = (v: string, acc: string[]): string[] => [...acc, v];

export function registerEvents(program: Command, context: () => CliContext): void {
  program
    .command('events')
    .description("stream container events (create, start, die, oom, pause, unpause, rename, update, destroy) until interrupted or --until")
    .option('--since <time>', 'also show past events since a time or a duration ago (from the containers\' records)')
    .option('--until <time>', 'stop at this time')
    .option('-f, --filter <key=value>', 'type, container, event, image or label (repeatable)', collect, [])
    .option('--format <format>', "json (or '{{json .}}'): one JSON object per line")
    .action(async (opts: { since?: string; until?: string; filter: string[]; format?: string }) => {
      const ctx = context();
      const since = opts.since === undefined ? undefined : parseTimeFlag(opts.since, '--since');
      const until = opts.until === undefined ? undefined : parseTimeFlag(opts.until, '--until');
      const matches = parseEventFilters(opts.filter);
      const json = opts.format === 'json' || opts.format === '{{json .}}';
      await withEngine(ctx, async ({ engine }) => {
        const known = new Map(engine.list().map((c) => [c.id, c]));
        const print = (e: ContainerEvent): void => {
          const c = known.get(e.id);
          const d = toDockerEvent(e, c?.image);
          if (matches(d, c?.options.labels)) ctx.out.write(`${json ? JSON.stringify(d) : formatEventLine(d)}\n`);
        };
        const abort = new AbortController();
        const stop = (): void => abort.abort();
        // Subscribed before the past is read: nothing falls between the two.
        const live: ContainerEvent[] = [];
        const unsubscribe = engine.subscribe((e) => {
          if (e.type === 'create' || e.type === 'rename') {
            const c = engine.list().find((x) => x.id === e.id);
            if (c) known.set(e.id, c);
          }
          live.push(e);
          wake();
        });
        let wake = (): void => undefined;
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        const timer = until === undefined ? undefined : setTimeout(stop, Math.max(0, until - Date.now()));
        const release = holdOpen();
        try {
          if (since !== undefined) for (const e of pastEvents([...known.values()])) if (e.at >= since && (until === undefined || e.at <= until)) print(e);
          abort.signal.addEventListener('abort', () => wake(), { once: true });
          while (!abort.signal.aborted) {
            for (const e of live.splice(0)) if (until === undefined || e.at <= until) print(e);
            // Events are delivered between turns of the loop, never during this check: none is missed.
            if (!abort.signal.aborted) await new Promise<void>((resolve) => (wake = resolve));
          }
        } finally {
          unsubscribe();
          release();
          clearTimeout(timer);
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
      });
    });
}
