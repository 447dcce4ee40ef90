// The containers table as the runtime uses it: the store's generic records with berth's RunOptions as
// the options payload. Above the store only the composition root (src/root.ts) names the generic ones.
import type { ContainerRecord as StoredContainer, ContainerRecords as StoredContainers } from '../store/containers.js';
import type { RunOptions } from './options.js';

export type ContainerRecord = StoredContainer<RunOptions>;
export type ContainerRecords = StoredContainers<RunOptions>;
