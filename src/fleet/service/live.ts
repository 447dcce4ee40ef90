import type { IncomingMessage, ServerResponse } from 'node:http';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import type { Inventory } from '../inventory.js';
import { eventJson } from './api.js';
import type { FleetBus, FleetUpdate } from './bus.js';
import { deviceSummary, rolloutDevice, rolloutSummary } from './present.js';
import { traced } from './slice-trace.js';
import type { FleetStore } from './store.js';

/** Devices read and sent per turn of the event loop when a flush has many. */
const CHUNK = 500;

/** `fn` over `items` CHUNK at a time, serving the event loop's I/O between chunks. */
async function inChunks<T>(items: readonly T[], fn: (chunk: T[]) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += CHUNK) {
    if (i > 0) await yieldToIo();
    await fn(items.slice(i, i + CHUNK));
  }
}

/**
 * GET /api/v1/stream: Server-Sent Events for the dashboard. One feed per service fans out to every
 * open stream; device and rollout updates are coalesced for `coalesceMs` (a device reporting ten times
 * a second is sent once) and read from the store once per flush, however many browsers watch.
 * Events are sent as they come. A comment every 15 s keeps proxies from closing an idle stream.
 */
export class LiveFeed {
  private readonly clients = new Set<ServerResponse>();
  private readonly devices = new Set<string>();
  private readonly rollouts = new Set<string>();
  private readonly rolloutDevices = new Map<string, Set<string>>();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly ping: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(private readonly store: FleetStore, bus: FleetBus, private readonly inventory: () => Inventory, private readonly onError: (err: unknown) => void, private readonly coalesceMs = 1000) {
    this.unsubscribe = bus.on((u) => this.note(u));
    this.ping = setInterval(() => this.write(': ping\n\n'), 15_000);
    this.ping.unref();
  }

  attach(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(': berth fleet stream\n\n');
    this.clients.add(res);
    const drop = (): void => {
      this.clients.delete(res);
    };
    req.on('close', drop);
    res.on('error', drop);
  }

  close(): void {
    this.unsubscribe();
    clearInterval(this.ping);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  private note(u: FleetUpdate): void {
    if (this.clients.size === 0) return;
    if (u.type === 'event') return this.send('event', eventJson(u.event));
    if (u.type === 'device') this.devices.add(u.id);
    else if (u.type === 'rollout') this.rollouts.add(u.id);
    else if (u.type === 'rollout-device') {
      this.rollouts.add(u.rollout);
      let set = this.rolloutDevices.get(u.rollout);
      if (!set) this.rolloutDevices.set(u.rollout, (set = new Set()));
      set.add(u.device);
    }
    // Flushes run one after the other: one that yields between chunks must not be overtaken by the next,
    // which would send a device's newer state before the older one still to be read.
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flushing = this.flushing.then(() => this.flush()).catch(this.onError);
    }, this.coalesceMs);
  }

  private async flush(): Promise<void> {
    const devices = [...this.devices];
    const rollouts = [...this.rollouts];
    const rolloutDevices = [...this.rolloutDevices];
    this.devices.clear();
    this.rollouts.clear();
    this.rolloutDevices.clear();
    const inventory = this.inventory();
    // Mid-rollout every device of the fleet changes each second: read, summarized and serialized at once,
    // 10,000 devices held the event loop for one long task per flush while a dashboard was open, and every
    // API call waited behind it. A chunk per turn (one query each, not one per device) lets them in between.
    await inChunks(devices, async (ids) => {
      const rows = await this.store.devicesByIds(ids);
      traced('live devices', () => {
        for (const d of rows) this.send('device', deviceSummary(d, inventory));
      });
    });
    for (const [rollout, ids] of rolloutDevices) {
      await inChunks([...ids], async (chunk) => {
        const rows = await this.store.rolloutDevicesOf(rollout, chunk);
        traced('live rollout devices', () => {
          for (const d of rows) this.send('rollout-device', { rollout, device: rolloutDevice(d) });
        });
      });
    }
    for (const id of rollouts) {
      const r = await this.store.getRollout(id);
      if (r) this.send('rollout', rolloutSummary(r));
    }
  }

  private send(event: string, data: unknown): void {
    this.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private write(text: string): void {
    for (const c of this.clients) c.write(text);
  }
}
