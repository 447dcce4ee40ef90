import type { StateStore } from './store.js';

export interface ImageRecord {
  readonly name: string;
  readonly repository: string;
  readonly indexDigest?: string;
  readonly manifestDigest: string;
  readonly configDigest: string;
  readonly platform: string;
  /** Compressed bytes of the layers, as the manifest states. */
  readonly size: number;
  readonly pulledAt: number;
}

export interface SnapshotRecord {
  readonly chainId: string;
  readonly parent?: string;
  readonly diffId: string;
  readonly layerDigest: string;
  readonly size: number;
}

interface ImageRow {
  name: string;
  repository: string;
  index_digest: string | null;
  manifest_digest: string;
  config_digest: string;
  platform: string;
  size: number;
  pulled_at: number;
}

const fromRow = (r: ImageRow): ImageRecord => ({
  name: r.name,
  repository: r.repository,
  ...(r.index_digest !== null && { indexDigest: r.index_digest }),
  manifestDigest: r.manifest_digest,
  configDigest: r.config_digest,
  platform: r.platform,
  size: r.size,
  pulledAt: r.pulled_at,
});

/** Typed access to the image tables; the schema itself lives in migrations.ts. */
export class ImageRecords {
  constructor(private readonly store: StateStore) {}

  /** Records a pulled image with everything it references, replacing an earlier pull of the same name, atomically. */
  save(image: ImageRecord, blobs: readonly string[], chain: readonly SnapshotRecord[]): void {
    const db = this.store.db;
    this.store.transaction(() => {
      const snap = db.prepare('INSERT OR IGNORE INTO snapshots (chain_id, parent, diff_id, layer_digest, size, created_at) VALUES (?, ?, ?, ?, ?, ?)');
      for (const s of chain) snap.run(s.chainId, s.parent ?? null, s.diffId, s.layerDigest, s.size, Date.now());
      db.prepare('DELETE FROM images WHERE name = ?').run(image.name);
      db.prepare('INSERT INTO images (name, repository, index_digest, manifest_digest, config_digest, platform, size, pulled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
        image.name, image.repository, image.indexDigest ?? null, image.manifestDigest, image.configDigest, image.platform, image.size, image.pulledAt,
      );
      const blob = db.prepare('INSERT OR IGNORE INTO image_blobs (name, digest) VALUES (?, ?)');
      for (const d of blobs) blob.run(image.name, d);
      const link = db.prepare('INSERT INTO image_snapshots (name, position, chain_id) VALUES (?, ?, ?)');
      chain.forEach((s, i) => link.run(image.name, i, s.chainId));
    });
  }

  /**
   * docker tag: `name` (with its repository) becomes another name for `from`'s image, with the same
   * blobs and snapshots; a previous image of that name loses the name (its content stays until pruned).
   */
  tag(from: string, name: string, repository: string): void {
    const db = this.store.db;
    this.store.transaction(() => {
      db.prepare('DELETE FROM images WHERE name = ?').run(name);
      db.prepare('INSERT INTO images (name, repository, index_digest, manifest_digest, config_digest, platform, size, pulled_at) SELECT ?, ?, index_digest, manifest_digest, config_digest, platform, size, pulled_at FROM images WHERE name = ?').run(name, repository, from);
      db.prepare('INSERT OR IGNORE INTO image_blobs (name, digest) SELECT ?, digest FROM image_blobs WHERE name = ?').run(name, from);
      db.prepare('INSERT INTO image_snapshots (name, position, chain_id) SELECT ?, position, chain_id FROM image_snapshots WHERE name = ?').run(name, from);
    });
  }

  get(name: string): ImageRecord | undefined {
    const row = this.store.db.prepare('SELECT * FROM images WHERE name = ?').get(name) as ImageRow | undefined;
    return row && fromRow(row);
  }

  /** Images whose manifest digest starts with `prefix` (for `rmi sha256:abc…` and short ids). */
  byDigestPrefix(prefix: string): ImageRecord[] {
    const rows = this.store.db.prepare("SELECT * FROM images WHERE manifest_digest LIKE ? ESCAPE '\\' ORDER BY name").all(`${prefix.replace(/[%_\\]/g, '\\$&')}%`) as ImageRow[];
    return rows.map(fromRow);
  }

  list(): ImageRecord[] {
    return (this.store.db.prepare('SELECT * FROM images ORDER BY name').all() as ImageRow[]).map(fromRow);
  }

  chain(name: string): string[] {
    return (this.store.db.prepare('SELECT chain_id FROM image_snapshots WHERE name = ? ORDER BY position').all(name) as Array<{ chain_id: string }>).map((r) => r.chain_id);
  }

  remove(name: string): boolean {
    return this.store.db.prepare('DELETE FROM images WHERE name = ?').run(name).changes > 0;
  }

  /** Blobs and snapshots some image still references. */
  referenced(): { blobs: Set<string>; snapshots: Set<string> } {
    const db = this.store.db;
    const blobs = new Set((db.prepare('SELECT DISTINCT digest FROM image_blobs').all() as Array<{ digest: string }>).map((r) => r.digest));
    const snapshots = new Set((db.prepare('SELECT DISTINCT chain_id FROM image_snapshots').all() as Array<{ chain_id: string }>).map((r) => r.chain_id));
    return { blobs, snapshots };
  }

  forgetSnapshot(chainId: string): void {
    this.store.db.prepare('DELETE FROM snapshots WHERE chain_id = ?').run(chainId);
  }
}
