import type { Command } from 'commander';
import { addDetachKeysFlag, attachContainer } from './attach.js';
import { checkInteractiveTerminal, userTerminalSize } from './terminal.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError } from '../errors.js';
import { formatPortMapping } from '../network/ports.js';
import { publishedPorts } from '../network/inspect.js';
import { parseSignal } from '../runtime/options.js';
import { parseTimeFlag } from '../duration.js';
import { followLogs, readLogs, tailRecords, withinTime, type LogRecord } from '../runtime/logs.js';
import type { ContainerRecord } from '../runtime/records.js';
import type { CliContext } from './context.js';
import { withEngine } from './engine.js';
import { formatBytes, printJson, table } from './format.js';

const ago = (ms: number): string => {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? `${s} seconds` : s < 3600 ? `${Math.round(s / 60)} minutes` : s < 86400 ? `${Math.round(s / 3600)} hours` : `${Math.round(s / 86400)} days`;
};

/** docker ps's STATUS column. */
export function statusText(c: ContainerRecord): string {
  if (c.state === 'running') return `Up ${ago(c.startedAt ?? c.createdAt)}`;
  if (c.state === 'created') return 'Created';
  if (c.state === 'dead') return 'Dead';
  return `Exited (${c.exitCode ?? 0}) ${ago(c.finishedAt ?? c.createdAt)} ago`;
}

export function writeLog(r: LogRecord, timestamps: boolean): void {
  const out = r.stream === 'stderr' ? process.stderr : process.stdout;
  out.write(`${timestamps ? `${r.time} ` : ''}${r.text}${r.complete ? '\n' : ''}`);
}

export function registerContainers(program: Command, context: () => CliContext): void {
  addDetachKeysFlag(
    program
      .command('start')
      .description('start stopped containers; -a: attach to one until it exits (its exit code)')
      .argument('<container...>')
      .option('-a, --attach', 'attach to the container: its terminal, or its output')
      .option('-i, --interactive', 'with -a, a container with a terminal: what is typed goes to it'),
  ).action(async (names: string[], flags: { attach?: boolean; interactive?: boolean; detachKeys?: string }) => {
    const ctx = context();
    if ((flags.attach || flags.interactive) && names.length > 1) throw new BerthError('usage', 'start -a/-i takes one container');
    process.exitCode = await withEngine(ctx, async (h) => {
      if (!flags.attach && !flags.interactive) {
        for (const n of names) ctx.out.write(`${(await h.engine.start(n)).name}\n`);
        return 0;
      }
      const c = h.engine.find(names[0]!);
      if (c.options.tty) checkInteractiveTerminal(flags.interactive);
      const size = c.options.tty ? userTerminalSize() : undefined;
      const started = await h.engine.start(c.id, size ? { consoleSize: size } : {});
      return attachContainer(h, started.id, { ...(flags.interactive && { interactive: true }), ...(flags.detachKeys !== undefined && { detachKeys: flags.detachKeys }) });
    });
  });

  program
    .command('stop')
    .description('stop containers: the stop signal, then SIGKILL after the timeout')
    .option('-t, --time <seconds>', 'seconds to wait before SIGKILL')
    .argument('<container...>')
    .action(async (names: string[], opts: { time?: string }) => {
      const ctx = context();
      const t = opts.time === undefined ? undefined : Number(opts.time);
      if (t !== undefined && !(Number.isInteger(t) && t >= 0)) throw new BerthError('usage', `--time takes whole seconds, not "${opts.time}"`);
      await withEngine(ctx, async ({ engine }) => {
        for (const n of names) ctx.out.write(`${(await engine.stop(n, t)).name}\n`);
      });
    });

  program
    .command('kill')
    .description('send a signal to containers (default SIGKILL)')
    .option('-s, --signal <signal>', 'signal to send', 'SIGKILL')
    .argument('<container...>')
    .action(async (names: string[], opts: { signal: string }) => {
      const ctx = context();
      await withEngine(ctx, async ({ engine }) => {
        const signal = parseSignal(opts.signal, '--signal');
        for (const n of names) ctx.out.write(`${(await engine.kill(n, signal)).name}\n`);
      });
    });

  program
    .command('restart')
    .description('stop then start containers')
    .option('-t, --time <seconds>', 'seconds to wait before SIGKILL')
    .argument('<container...>')
    .action(async (names: string[], opts: { time?: string }) => {
      const ctx = context();
      await withEngine(ctx, async ({ engine }) => {
        for (const n of names) {
          await engine.stop(n, opts.time === undefined ? undefined : Number(opts.time));
          ctx.out.write(`${(await engine.start(n)).name}\n`);
        }
      });
    });

  program
    .command('rm')
    .description('remove containers')
    .option('-f, --force', 'kill a running container first')
    .argument('<container...>')
    .action(async (names: string[], opts: { force?: boolean }) => {
      const ctx = context();
      await withEngine(ctx, async ({ engine }) => {
        for (const n of names) ctx.out.write(`${(await engine.remove(n, opts.force === true)).name}\n`);
      });
    });

  program
    .command('ps')
    .description('list containers (running ones unless -a)')
    .option('-a, --all', 'include stopped containers')
    .option('--json', 'print as JSON')
    .action(async (opts: { all?: boolean; json?: boolean }) => {
      const ctx = context();
      await withEngine(ctx, ({ engine }) => {
        const list = engine.list().filter((c) => opts.all || c.state === 'running');
        if (opts.json) return printJson(ctx.out, list.map((c) => ({ id: c.id, name: c.name, image: c.image, state: c.state, status: statusText(c), exitCode: c.exitCode ?? null, restartCount: c.restartCount, createdAt: new Date(c.createdAt).toISOString(), ports: publishedPorts(c.options.ports ?? []) })));
        ctx.out.write(table([['CONTAINER ID', 'IMAGE', 'COMMAND', 'STATUS', 'PORTS', 'NAMES'], ...list.map((c) => [c.id.slice(0, 12), c.image, JSON.stringify((c.options.cmd ?? []).join(' ')).slice(0, 22), statusText(c), (c.options.ports ?? []).map(formatPortMapping).join(', '), c.name])]));
      });
    });

  program
    .command('inspect')
    .description('show a container as JSON: state, exit code, OOM kill, restarts, limits and whether they are enforced')
    .argument('<container...>')
    .action(async (names: string[]) => {
      const ctx = context();
      await withEngine(ctx, ({ engine }) => printJson(ctx.out, names.map((n) => engine.inspect(n))));
    });

  program
    .command('logs')
    .description("print a container's output")
    .option('-f, --follow', 'keep printing until the container exits')
    .option('-n, --tail <lines>', 'only the last N lines')
    .option('-t, --timestamps', 'prefix each line with its time')
    .option('--since <time>', 'only lines since a time (RFC 3339, Unix seconds) or a duration ago (10m)')
    .option('--until <time>', 'only lines before a time or a duration ago')
    .argument('<container>')
    .action(async (name: string, opts: { follow?: boolean; tail?: string; timestamps?: boolean; since?: string; until?: string }) => {
      const ctx = context();
      const tail = opts.tail === undefined || opts.tail === 'all' ? undefined : Number(opts.tail);
      if (tail !== undefined && !(Number.isInteger(tail) && tail >= 0)) throw new BerthError('usage', `--tail takes a number of lines, not "${opts.tail}"`);
      const window = { ...(opts.since !== undefined && { since: parseTimeFlag(opts.since, '--since') }), ...(opts.until !== undefined && { until: parseTimeFlag(opts.until, '--until') }) };
      await withEngine(ctx, async ({ engine }) => {
        const c = engine.find(name);
        const past = readLogs(engine.logDir(c.id)).filter((r) => withinTime(r, window));
        for (const r of tail === undefined ? past : tailRecords(past, tail)) writeLog(r, opts.timestamps === true);
        // Following past --until would print nothing more: docker stops there too.
        if (opts.follow && c.state === 'running' && (window.until === undefined || window.until > Date.now())) {
          const abort = new AbortController();
          const timer = window.until === undefined ? undefined : setTimeout(() => abort.abort(), window.until - Date.now());
          try {
            for await (const r of followLogs(engine.logDir(c.id), () => engine.find(c.id).state !== 'running', abort.signal)) if (withinTime(r, window)) writeLog(r, opts.timestamps === true);
          } finally {
            clearTimeout(timer);
          }
        }
      });
    });

  program
    .command('stats')
    .description('CPU, memory and pids of running containers from their cgroups, refreshed every second')
    .option('--no-stream', 'print once and exit')
    .option('--json', 'print as JSON (one document per refresh)')
    .argument('[container...]')
    .action(async (names: string[], opts: { stream: boolean; json?: boolean }) => {
      const ctx = context();
      const abort = new AbortController();
      const stop = (): void => abort.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await withEngine(ctx, async ({ engine }) => {
          const previous = new Map<string, { usec: number; at: number }>();
          const tty = process.stdout.isTTY === true;
          do {
            const list = names.length > 0 ? names.map((n) => engine.find(n)) : engine.list().filter((c) => c.state === 'running');
            const now = Date.now();
            const stats = list.map((c) => {
              const st = engine.stats(c.id);
              const prev = previous.get(c.id);
              if (st.cpuUsageUsec !== undefined) previous.set(c.id, { usec: st.cpuUsageUsec, at: now });
              // CPU % like docker: usage over wall time since the last refresh (100 % = one core).
              const cpuPercent = prev && st.cpuUsageUsec !== undefined && now > prev.at ? Math.round(((st.cpuUsageUsec - prev.usec) / ((now - prev.at) * 1000)) * 1000) / 10 : undefined;
              return { ...st, ...(cpuPercent !== undefined && { cpuPercent }) };
            });
            if (opts.json) {
              ctx.out.write(`${JSON.stringify(stats)}\n`);
            } else {
              const mem = (n: number | 'max' | undefined): string => (n === undefined ? '-' : n === 'max' ? 'max' : formatBytes(n));
              if (tty && opts.stream) ctx.out.write('\x1b[H\x1b[2J');
              ctx.out.write(table([['NAME', 'CPU %', 'CPU TIME', 'MEM', 'PEAK', 'LIMIT', 'PIDS', 'NOTE'], ...stats.map((s) => [
                s.name, s.cpuPercent === undefined ? '-' : `${s.cpuPercent.toFixed(1)}%`, s.cpuUsageUsec === undefined ? '-' : `${(s.cpuUsageUsec / 1e6).toFixed(2)} s`,
                mem(s.memoryCurrent), mem(s.memoryPeak), mem(s.memoryLimit), String(s.pids ?? '-'), s.note ?? '',
              ])]));
            }
            if (!opts.stream) break;
            await sleep(1000, undefined, { signal: abort.signal }).catch(() => undefined);
          } while (!abort.signal.aborted);
        });
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
