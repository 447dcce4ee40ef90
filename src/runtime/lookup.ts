// How a container is named on the command line and in the agent: a full id, a name, a compose
// `container_name`, or a unique id prefix, in that order (docker's order, with compose's name between).
import { BerthError } from '../errors.js';
import { CONTAINER_NAME_LABEL } from './options.js';
import type { ContainerRecord, ContainerRecords } from './records.js';

/**
 * The record `nameOrId` names, as stored (not refreshed); notFound, or conflict for an ambiguous prefix.
 * `current` refreshes a record in memory: a compose `container_name` picks the running container of that
 * name, else the newest, since an update briefly has the old and the new side by side.
 */
export function lookupContainer(records: ContainerRecords, nameOrId: string, current: (c: ContainerRecord) => ContainerRecord): ContainerRecord {
  // A full id (what the agent passes) is one primary-key read; anything else is a name first, then an id prefix.
  const byId = /^[a-f0-9]{64}$/.test(nameOrId) ? records.get(nameOrId) : undefined;
  if (byId) return byId;
  const byName = records.byName(nameOrId);
  if (byName) return byName;
  const labelled = records.list().filter((c) => c.options.labels[CONTAINER_NAME_LABEL] === nameOrId).map(current);
  const byComposeName = labelled.find((c) => c.state === 'running') ?? labelled.sort((a, b) => b.createdAt - a.createdAt)[0];
  if (byComposeName) return byComposeName;
  if (/^[a-f0-9]{3,64}$/.test(nameOrId)) {
    const matches = records.byIdPrefix(nameOrId);
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) throw new BerthError('conflict', `"${nameOrId}" matches several containers; use more of the id`);
  }
  throw new BerthError('notFound', `no such container: ${nameOrId}`);
}
