import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BerthError } from '../../src/errors.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, type Migration } from '../../src/store/migrations.js';
import { DB_FILE, StateStore } from '../../src/store/store.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const tmpRoot = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-store-'));
  dirs.push(d);
  return path.join(d, 'root');
};

describe('StateStore', () => {
  it('creates the root 0700, opens in WAL with synchronous=FULL, and migrates to the latest schema', () => {
    const root = tmpRoot();
    const s = StateStore.open(root);
    expect(fs.statSync(root).mode & 0o777).toBe(0o700);
    expect(fs.existsSync(path.join(root, DB_FILE))).toBe(true);
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.db.pragma('synchronous', { simple: true })).toBe(2);
    expect(s.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
    s.setMeta('device-id', 'pi-1');
    s.close();
    const again = StateStore.open(root);
    expect(again.getMeta('device-id')).toBe('pi-1');
    expect(again.integrityProblems()).toEqual([]);
    again.close();
  });

  it('migrations are numbered 1..N without gaps', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
  });

  it('runs only the new migrations when the schema grows', () => {
    const root = tmpRoot();
    StateStore.open(root).close();
    const extra: Migration = { version: LATEST_SCHEMA_VERSION + 1, name: 'test', up: (db) => db.exec('CREATE TABLE extra (x INTEGER) STRICT') };
    const s = StateStore.open(root, { migrations: [...MIGRATIONS, extra] });
    expect(s.schemaVersion).toBe(LATEST_SCHEMA_VERSION + 1);
    s.db.prepare('INSERT INTO extra VALUES (1)').run();
    s.close();
  });

  it('rolls back a migration that fails halfway, leaving the version and schema untouched', () => {
    const root = tmpRoot();
    StateStore.open(root).close();
    const broken: Migration = {
      version: LATEST_SCHEMA_VERSION + 1,
      name: 'broken',
      up(db) {
        db.exec('CREATE TABLE half (x INTEGER)');
        throw new Error('boom');
      },
    };
    expect(() => StateStore.open(root, { migrations: [...MIGRATIONS, broken] })).toThrow('boom');
    const s = StateStore.open(root);
    expect(s.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
    expect(s.db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'half'").get()).toEqual({ n: 0 });
    s.close();
  });

  it('refuses a store written by a newer berth, with a conflict error and a hint', () => {
    const root = tmpRoot();
    const s = StateStore.open(root);
    s.db.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 5}`);
    s.close();
    try {
      StateStore.open(root);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(BerthError);
      expect((e as BerthError).category).toBe('conflict');
      expect((e as BerthError).message).toMatch(/newer than this berth supports/);
      expect((e as BerthError).hint).toMatch(/upgrade berth/);
    }
  });

  it('rejects gaps in the migration list', () => {
    const gap: Migration = { version: LATEST_SCHEMA_VERSION + 2, name: 'gap', up: () => {} };
    expect(() => StateStore.open(tmpRoot(), { migrations: [...MIGRATIONS, gap] })).toThrow(/without gaps/);
  });

  it('reports a file that is not a database as a host error', () => {
    const root = tmpRoot();
    fs.mkdirSync(root, { recursive: true });
    fs.writeFileSync(path.join(root, DB_FILE), 'this is not sqlite'.repeat(100));
    expect(() => StateStore.open(root)).toThrow(BerthError);
    expect(() => StateStore.open(root)).toThrow(/is damaged/);
  });

  it('commits all of a transaction or none of it', () => {
    const s = StateStore.open(tmpRoot());
    expect(() =>
      s.transaction(() => {
        s.setMeta('a', '1');
        throw new Error('abort');
      }),
    ).toThrow('abort');
    expect(s.getMeta('a')).toBeUndefined();
    s.close();
  });
});
