import fs from 'node:fs';
import path from 'node:path';
import type { TrustStore } from '../../src/agent/trust.js';
import { FleetSigningKey } from '../../src/protocol/signing.js';
import { MAX_REVISION } from '../../src/protocol/validate.js';
import type { RotatedKey } from '../../src/store/trust.js';

/**
 * The one way tests speak as the fleet: a real Ed25519 fleet key, and the signed payloads the fleet
 * tool would send (src/protocol/signing.ts), so tests exercise the agent as deployed, never an agent
 * with signature checks turned off.
 */
export interface TestFleetKey {
  readonly key: FleetSigningKey;
  readonly privatePem: string;
  /** agent.yaml's fleetKey. */
  readonly publicBase64: string;
  /**
   * A signed desired state for `device`. `desired` is the body: an object (serialized) or any text
   * (hostile bodies). The revision signed is `revision`, else the body's own when the envelope can
   * carry it, else 1 (a hostile body's revision out of range: the body is what is under test).
   */
  desired(device: string, desired: object | string, revision?: number): string;
  /** A signed command for `device` on topic cmd/<id>, issued now unless `issued` is given. */
  command(device: string, id: string, request: object | string, issued?: Date): string;
  /** Writes `<dir>/fleet-key.key` (0600) and returns its path, for berth fleet --signing-key. */
  writePrivate(dir: string): string;
  /** Writes an agent.yaml with this fleetKey (plus `extra` top-level YAML lines) and returns its path. */
  agentConfig(dir: string, extra?: Record<string, unknown>): string;
}

/** The body's revision when an envelope can carry it (1 … 2^31 − 1), else 1. */
function bodyRevision(body: object | string): number {
  let r: unknown;
  try {
    r = (typeof body === 'string' ? (JSON.parse(body) as { revision?: unknown } | null) : (body as { revision?: unknown }))?.revision;
  } catch {
    return 1;
  }
  return typeof r === 'number' && Number.isInteger(r) && r >= 1 && r <= MAX_REVISION ? r : 1;
}

export function testFleetKey(): TestFleetKey {
  const { privatePem } = FleetSigningKey.generate();
  const key = FleetSigningKey.fromPem(privatePem, 'test fleet key');
  const text = (b: object | string): string => (typeof b === 'string' ? b : JSON.stringify(b));
  return {
    key, privatePem, publicBase64: key.publicKey.base64,
    desired: (device, desired, revision) => key.sign({ kind: 'desired', device, revision: revision ?? bodyRevision(desired) }, text(desired)),
    command: (device, id, request, issued = new Date()) => key.sign({ kind: 'cmd', device, id, issued: issued.toISOString() }, text(request)),
    writePrivate: (dir) => {
      const file = path.join(dir, 'fleet-key.key');
      fs.writeFileSync(file, privatePem, { mode: 0o600 });
      return file;
    },
    agentConfig: (dir, extra = {}) => {
      const file = path.join(dir, 'agent.yaml');
      const lines = Object.entries({ fleetKey: key.publicKey.base64, ...extra }).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
      fs.writeFileSync(file, `${lines.join('\n')}\n`);
      return file;
    },
  };
}

/** A TrustStore in memory (the store's meta table holds the same two values), for simulated devices and unit tests. */
export function memoryTrustStore(): TrustStore & { rotated?: RotatedKey; seen: Map<string, number> } {
  const t = {
    rotated: undefined as RotatedKey | undefined,
    seen: new Map<string, number>(),
    rotatedKey: () => t.rotated,
    setRotatedKey: (k: RotatedKey) => void (t.rotated = k),
    seenCommands: () => new Map(t.seen),
    setSeenCommands: (s: ReadonlyMap<string, number>) => void (t.seen = new Map(s)),
  };
  return t;
}
