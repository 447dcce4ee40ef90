import { parseDuration } from '../duration.js';
import { BerthError } from '../errors.js';
import type { ImageService } from '../image/service.js';
import type { ContainerEngine } from '../runtime/engine-api.js';
import { readLogs } from '../runtime/logs.js';
import type { CommandRequest } from '../protocol/types.js';
import type { LogFollows } from './log-follow.js';

export interface CommandContext {
  readonly engine: ContainerEngine;
  readonly images: ImageService;
  /** The services of the deployment that should be running (name → container id, when it exists). */
  readonly serviceContainer: (service: string) => string | undefined;
  readonly setTelemetryInterval: (ms: number) => void;
  /** This command's id: a `logs` follow publishes under it. */
  readonly commandId: string;
  readonly follows: LogFollows;
}

/** Executes one validated command; returns its `data`, or throws a BerthError whose category is the result. */
export async function runCommand(cmd: CommandRequest, ctx: CommandContext): Promise<unknown> {
  const container = (): string => {
    const id = cmd.service === undefined ? undefined : ctx.serviceContainer(cmd.service);
    if (id === undefined) throw new BerthError('notFound', `no service "${cmd.service}" in the running deployment`);
    return id;
  };
  switch (cmd.action) {
    case 'ping':
      return { pong: true };
    case 'restart': {
      const id = container();
      await ctx.engine.stop(id);
      const c = await ctx.engine.start(id);
      return { state: c.state };
    }
    case 'stop':
      return { state: (await ctx.engine.stop(container())).state };
    case 'start':
      return { state: (await ctx.engine.start(container())).state };
    case 'logs': {
      const id = container();
      const records = readLogs(ctx.engine.logDir(id), cmd.tail ?? 100);
      const lines = records.map((r) => ({ time: r.time, stream: r.stream, text: r.text }));
      if (cmd.follow === undefined) return { lines };
      // Follows from the end the answer was read to: a line written in between may come twice, never not at all.
      const follow = ctx.follows.start(ctx.commandId, { stateDir: ctx.engine.logDir(id), exited: () => ctx.engine.find(id).state !== 'running' }, cmd.follow);
      return { lines, follow };
    }
    case 'logs-stop':
      if (!ctx.follows.stop(cmd.session!)) throw new BerthError('notFound', `no log follow ${cmd.session} (it ended already, or the agent restarted)`);
      return { stopped: cmd.session };
    case 'prune': {
      const inUse = new Set(ctx.engine.list().map((c) => c.image));
      const removed: string[] = [];
      for (const img of ctx.images.list()) {
        if (inUse.has(img.name)) continue;
        ctx.images.remove(img.name);
        removed.push(img.name);
      }
      return { removed, ...ctx.images.prune() };
    }
    case 'set-telemetry-interval': {
      const ms = parseDuration(cmd.interval!, 'interval');
      if (ms < 1000 || ms > 24 * 3600_000) throw new BerthError('invalid', `interval ${cmd.interval} is out of range 1s…24h`);
      ctx.setTelemetryInterval(ms);
      return { intervalMs: ms };
    }
  }
}
