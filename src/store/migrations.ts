import type { Database } from 'better-sqlite3';

/**
 * The schema, as an append-only list of numbered migrations. This module is the only owner of the
 * schema: other modules get typed accessors, never DDL. Never edit a migration that has shipped;
 * add a new one. `PRAGMA user_version` records how far a database has been migrated.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  up(db: Database): void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'meta and events',
    up(db) {
      db.exec(`
        CREATE TABLE meta (
          key   TEXT PRIMARY KEY,
          value TEXT NOT NULL
        ) STRICT;
        -- Events waiting to be reported (OOM kills, pull failures …); the agent spools them while offline.
        CREATE TABLE events (
          id    INTEGER PRIMARY KEY AUTOINCREMENT,
          ts    INTEGER NOT NULL,
          kind  TEXT    NOT NULL,
          data  TEXT    NOT NULL
        ) STRICT;
        CREATE INDEX events_ts ON events (ts);
      `);
    },
  },
  {
    version: 2,
    name: 'images and snapshots',
    up(db) {
      db.exec(`
        -- One row per pulled name (docker.io/library/busybox:latest, or name@digest when pulled by digest).
        CREATE TABLE images (
          name            TEXT PRIMARY KEY,
          repository      TEXT    NOT NULL,
          index_digest    TEXT,
          manifest_digest TEXT    NOT NULL,
          config_digest   TEXT    NOT NULL,
          platform        TEXT    NOT NULL,
          size            INTEGER NOT NULL,
          pulled_at       INTEGER NOT NULL
        ) STRICT;
        -- Blobs an image holds on to (index, manifest, config, layers): what prune must keep.
        CREATE TABLE image_blobs (
          name   TEXT NOT NULL REFERENCES images (name) ON DELETE CASCADE,
          digest TEXT NOT NULL,
          PRIMARY KEY (name, digest)
        ) STRICT;
        CREATE INDEX image_blobs_digest ON image_blobs (digest);
        -- The snapshot chain of an image, bottom layer first.
        CREATE TABLE image_snapshots (
          name     TEXT    NOT NULL REFERENCES images (name) ON DELETE CASCADE,
          position INTEGER NOT NULL,
          chain_id TEXT    NOT NULL,
          PRIMARY KEY (name, position)
        ) STRICT;
        CREATE INDEX image_snapshots_chain ON image_snapshots (chain_id);
        CREATE TABLE snapshots (
          chain_id     TEXT PRIMARY KEY,
          parent       TEXT,
          diff_id      TEXT    NOT NULL,
          layer_digest TEXT    NOT NULL,
          size         INTEGER NOT NULL,
          created_at   INTEGER NOT NULL
        ) STRICT;
      `);
    },
  },
  {
    version: 3,
    name: 'containers',
    up(db) {
      db.exec(`
        -- The desired and last-known state of each container. What is running right now is read from the
        -- monitor's files (monitor.pid, exit) and checked against this.
        CREATE TABLE containers (
          id            TEXT PRIMARY KEY,
          name          TEXT    NOT NULL UNIQUE,
          image         TEXT    NOT NULL,
          image_digest  TEXT    NOT NULL,
          options       TEXT    NOT NULL,  -- RunOptions as JSON
          runtime       TEXT    NOT NULL,
          created_at    INTEGER NOT NULL,
          started_at    INTEGER,
          finished_at   INTEGER,
          state         TEXT    NOT NULL CHECK (state IN ('created', 'running', 'exited', 'dead')),
          exit_code     INTEGER,
          oom_killed    INTEGER NOT NULL DEFAULT 0,
          restart_count INTEGER NOT NULL DEFAULT 0,
          -- set by berth stop/kill so restart policies (unless-stopped, on-failure) know it was asked for
          stopped_by_user INTEGER NOT NULL DEFAULT 0
        ) STRICT;
      `);
    },
  },
  {
    version: 4,
    name: 'deployments',
    up(db) {
      db.exec(`
        -- Every desired state the agent received (MQTT or berth deploy), newest revision wins. The
        -- last good one (meta last_good_revision) is what a board with no broker runs after a reboot.
        CREATE TABLE deployments (
          revision    INTEGER PRIMARY KEY,
          desired     TEXT    NOT NULL,  -- DesiredState JSON, validated
          status      TEXT    NOT NULL CHECK (status IN ('applying', 'applied', 'failed', 'rolled-back', 'rejected', 'superseded')),
          error       TEXT,              -- {code, message} JSON
          received_at INTEGER NOT NULL,
          finished_at INTEGER
        ) STRICT;
      `);
    },
  },
  {
    version: 5,
    name: 'networks',
    up(db) {
      db.exec(`
        -- Bridge networks (berth network create, and the default "bridge"). Creating one only writes this
        -- row: the bridge device, firewall rules and DNS exist while a container is attached, so a crash
        -- can never leave a half-made network behind.
        CREATE TABLE networks (
          id          TEXT PRIMARY KEY,
          name        TEXT    NOT NULL UNIQUE,
          driver      TEXT    NOT NULL CHECK (driver IN ('bridge')),
          subnet      TEXT    NOT NULL,
          gateway     TEXT    NOT NULL,
          ip_range    TEXT,
          internal    INTEGER NOT NULL,
          dns_enabled INTEGER NOT NULL,
          bridge      TEXT    NOT NULL UNIQUE,
          labels      TEXT    NOT NULL,  -- JSON object
          options     TEXT    NOT NULL,  -- JSON object
          created_at  INTEGER NOT NULL
        ) STRICT;
        -- A container's address on a network. No foreign key to containers: a lease is made before the
        -- container's row, in create, and the engine releases it on remove. A lease whose container never
        -- got its row (berth killed mid-create) is dropped once older than any create takes.
        CREATE TABLE network_leases (
          network_id   TEXT NOT NULL REFERENCES networks (id),
          container_id TEXT NOT NULL,
          ip           TEXT NOT NULL,
          names        TEXT NOT NULL,  -- JSON array: DNS names, the container's name first
          leased_at    INTEGER NOT NULL,
          PRIMARY KEY (network_id, container_id),
          UNIQUE (network_id, ip)
        ) STRICT;
        CREATE INDEX network_leases_container ON network_leases (container_id);
      `);
    },
  },
  {
    version: 6,
    name: 'network lease interfaces',
    up(db) {
      db.exec(`
        -- The interface a lease is wired to inside the container (eth0, eth1 ...). Stored, not derived
        -- from lease order: after berth network disconnect of eth0 the container's eth1 keeps its name,
        -- and netavark's teardown must be given the name the kernel has. Rows before this version were
        -- a container's only network, so eth0.
        ALTER TABLE network_leases ADD COLUMN interface TEXT NOT NULL DEFAULT 'eth0';
      `);
    },
  },
  {
    version: 7,
    name: 'dual-stack networks',
    up(db) {
      db.exec(`
        -- IPv6 (berth network create --ipv6, compose enable_ipv6): the network's v6 subnet and gateway,
        -- and each lease's v6 address. NULL: IPv4 only, as every network before this version.
        ALTER TABLE networks ADD COLUMN ipv6_subnet TEXT;
        ALTER TABLE networks ADD COLUMN ipv6_gateway TEXT;
        ALTER TABLE network_leases ADD COLUMN ip6 TEXT;
        CREATE UNIQUE INDEX network_leases_ip6 ON network_leases (network_id, ip6) WHERE ip6 IS NOT NULL;
      `);
    },
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);
