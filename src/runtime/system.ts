import path from 'node:path';
import { treeSize } from '../host/tree-size.js';
import type { ImageService } from '../image/service.js';
import type { NetworkService } from '../network/service.js';
import type { ContainerEngine } from './engine-api.js';
import { containerDir, writableLayerSize } from './rootfs.js';
import type { Volumes } from './volumes.js';

/** What `system df` and `system prune` look at: the parts of one state root. */
export interface SystemParts {
  readonly root: string;
  readonly engine: ContainerEngine;
  readonly images: ImageService;
  readonly volumes: Volumes;
  readonly networks: NetworkService;
}

/** One row of docker system df. Bytes are on-disk sizes (du). */
export interface UsageRow {
  readonly type: 'Images' | 'Containers' | 'Local Volumes';
  readonly total: number;
  readonly active: number;
  readonly size: number;
  readonly reclaimable: number;
}

/**
 * docker system df. Images: the content store and unpacked snapshots on disk; reclaimable is the
 * compressed size of images no container uses (what their removal frees at least). Containers: their
 * writable layers (`upper`, or the copied root without overlayfs); reclaimable, those of stopped ones.
 * Volumes: their data; reclaimable, that of volumes no container mounts.
 */
export function diskUsage(p: SystemParts): UsageRow[] {
  const containers = p.engine.list();
  const inUse = new Set(containers.map((c) => c.image));
  const images = p.images.list();
  const unusedImages = images.filter((i) => !inUse.has(i.name));
  const sizes = containers.map((c) => ({ c, size: writableLayerSize(containerDir(p.root, c.id)) }));
  const volumes = p.volumes.list().map((v) => ({ used: p.volumes.users(v.Name).length > 0, size: p.volumes.size(v.Name) }));
  return [
    {
      type: 'Images', total: images.length, active: images.length - unusedImages.length,
      size: treeSize(path.join(p.root, 'content')) + treeSize(path.join(p.root, 'snapshots')), reclaimable: unusedImages.reduce((n, i) => n + i.size, 0),
    },
    {
      type: 'Containers', total: containers.length, active: containers.filter((c) => c.state === 'running').length,
      size: sizes.reduce((n, s) => n + s.size, 0), reclaimable: sizes.filter((s) => s.c.state !== 'running').reduce((n, s) => n + s.size, 0),
    },
    {
      type: 'Local Volumes', total: volumes.length, active: volumes.filter((v) => v.used).length,
      size: volumes.reduce((n, v) => n + v.size, 0), reclaimable: volumes.filter((v) => !v.used).reduce((n, v) => n + v.size, 0),
    },
  ];
}

export interface PruneOptions {
  /** `-a`: also every image no container uses (berth keeps no untagged images, so without it none go). */
  readonly allImages?: boolean;
  /** `--volumes`: also every volume no container mounts. */
  readonly volumes?: boolean;
}

export interface SystemPruneResult {
  readonly containers: string[];
  readonly networks: string[];
  readonly images: string[];
  readonly volumes: string[];
  /** Blob bytes (images) and volume bytes freed. */
  readonly bytes: number;
}

/**
 * docker system prune: stopped containers, networks no container uses, unreferenced blobs and
 * snapshots (and with `allImages` unused images), with `volumes` unused volumes. In that order: a
 * removed container frees its image, networks and volumes for the steps after it.
 */
export async function systemPrune(p: SystemParts, o: PruneOptions = {}): Promise<SystemPruneResult> {
  const containers: string[] = [];
  for (const c of p.engine.list()) {
    if (c.state === 'running') continue;
    await p.engine.remove(c.id);
    containers.push(c.name);
  }
  const networks = p.networks.prune().map((n) => n.name);
  const images: string[] = [];
  let bytes = 0;
  if (o.allImages) {
    const inUse = new Set(p.engine.list().map((c) => c.image));
    for (const i of p.images.list()) {
      if (inUse.has(i.name)) continue;
      bytes += p.images.remove(i.name).bytes;
      images.push(i.name);
    }
  }
  bytes += p.images.prune().bytes;
  const volumes = o.volumes ? p.volumes.prune() : { removed: [], bytes: 0 };
  return { containers, networks, images, volumes: volumes.removed, bytes: bytes + volumes.bytes };
}
