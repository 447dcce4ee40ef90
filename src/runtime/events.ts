import { BerthError } from '../errors.js';
import type { ContainerEvent } from './engine-api.js';
import type { ContainerRecord } from './records.js';

/** docker's action names for the engine's event types. */
const ACTIONS: Readonly<Record<ContainerEvent['type'], string>> = {
  create: 'create', start: 'start', exit: 'die', oom: 'oom', freeze: 'pause', thaw: 'unpause', rename: 'rename', update: 'update', remove: 'destroy',
};

/** One line of `berth events`, in the Engine API's shape (`docker events --format json`). */
export interface DockerEvent {
  readonly Type: 'container';
  readonly Action: string;
  readonly Actor: { readonly ID: string; readonly Attributes: Readonly<Record<string, string>> };
  readonly time: number;
  readonly timeNano: number;
}

/** An engine event as docker reports it; `image` from the container's record when it is still known. */
export function toDockerEvent(e: ContainerEvent, image: string | undefined): DockerEvent {
  const attributes: Record<string, string> = { name: e.name, ...(image !== undefined && { image }) };
  if (e.type === 'exit') attributes.exitCode = String(e.exitCode);
  if (e.type === 'rename') attributes.oldName = e.oldName;
  return { Type: 'container', Action: ACTIONS[e.type], Actor: { ID: e.id, Attributes: attributes }, time: Math.floor(e.at / 1000), timeNano: e.at * 1_000_000 };
}

/**
 * The engine keeps no event log (its stream has no replay), so `--since` is answered from what the
 * records remember of each container: its creation, its current run's start and, if it ended, that end.
 * Oldest first. Earlier runs, pauses, renames and removed containers are not remembered.
 */
export function pastEvents(records: readonly ContainerRecord[]): ContainerEvent[] {
  const out: ContainerEvent[] = [];
  for (const c of records) {
    const base = { id: c.id, name: c.name };
    out.push({ ...base, type: 'create', at: c.createdAt });
    if (c.startedAt !== undefined) out.push({ ...base, type: 'start', at: c.startedAt, startedAt: c.startedAt, restartCount: c.restartCount });
    if (c.finishedAt !== undefined && (c.state === 'exited' || c.state === 'dead')) {
      if (c.oomKilled) out.push({ ...base, type: 'oom', at: c.finishedAt });
      out.push({ ...base, type: 'exit', at: c.finishedAt, exitCode: c.exitCode ?? 255, oomKilled: c.oomKilled, state: c.state });
    }
  }
  return out.sort((a, b) => a.at - b.at);
}

/** `--filter KEY=VALUE` of docker events: type, container (name or id prefix), event (action), image, label. */
export type EventFilter = (e: DockerEvent, labels: Readonly<Record<string, string>> | undefined) => boolean;

/** Filters with the same key are alternatives; different keys must all match (docker's rule). */
export function parseEventFilters(specs: readonly string[]): EventFilter {
  const byKey = new Map<string, string[]>();
  for (const s of specs) {
    const i = s.indexOf('=');
    const key = i < 0 ? '' : s.slice(0, i);
    if (!['type', 'container', 'event', 'image', 'label'].includes(key)) {
      throw new BerthError('usage', `--filter "${s}": use type=, container=, event=, image= or label=`);
    }
    byKey.set(key, [...(byKey.get(key) ?? []), s.slice(i + 1)]);
  }
  const one = (key: string, v: string, e: DockerEvent, labels: Readonly<Record<string, string>> | undefined): boolean => {
    switch (key) {
      case 'type': return v === 'container';
      case 'container': return e.Actor.Attributes.name === v || (v.length >= 3 && e.Actor.ID.startsWith(v));
      case 'event': return e.Action === v || (v === 'exit' && e.Action === 'die');
      case 'image': return e.Actor.Attributes.image === v;
      default: {
        const j = v.indexOf('=');
        return labels !== undefined && (j < 0 ? v in labels : labels[v.slice(0, j)] === v.slice(j + 1));
      }
    }
  };
  return (e, labels) => [...byKey].every(([key, values]) => values.some((v) => one(key, v, e, labels)));
}

/** docker events' default line: `TIME container ACTION ID (k=v, …)`. */
export function formatEventLine(e: DockerEvent): string {
  const attrs = Object.entries(e.Actor.Attributes).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(', ');
  return `${new Date(e.timeNano / 1_000_000).toISOString()} ${e.Type} ${e.Action} ${e.Actor.ID} (${attrs})`;
}
