import fs from 'node:fs';
import path from 'node:path';
import { FleetSigningKey } from '../../src/protocol/signing.js';

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
   * (hostile bodies), with the revision to sign taken from the object unless given.
   */
  desired(device: string, desired: object | string, revision?: number): string;
  /** A signed command for `device` on topic cmd/<id>, issued now unless `issued` is given. */
  command(device: string, id: string, request: object | string, issued?: Date): string;
  /** Writes `<dir>/fleet-key.key` (0600) and returns its path, for berth fleet --signing-key. */
  writePrivate(dir: string): string;
  /** Writes an agent.yaml with this fleetKey (plus `extra` top-level YAML lines) and returns its path. */
  agentConfig(dir: string, extra?: Record<string, unknown>): string;
}

export function testFleetKey(): TestFleetKey {
  const { privatePem } = FleetSigningKey.generate();
  const key = FleetSigningKey.fromPem(privatePem, 'test fleet key');
  const text = (b: object | string): string => (typeof b === 'string' ? b : JSON.stringify(b));
  return {
    key, privatePem, publicBase64: key.publicKey.base64,
    desired: (device, desired, revision) => {
      const r = revision ?? (desired as { revision?: number }).revision;
      if (typeof r !== 'number') throw new Error('testFleetKey.desired: give the revision to sign');
      return key.sign({ kind: 'desired', device, revision: r }, text(desired));
    },
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
