import fs from 'node:fs';
import path from 'node:path';
import { parseReference } from '../reference.js';
import { RegistryClient } from './client.js';
import { CredentialStore } from './credentials.js';

/** Where registry credentials and CAs are found: the state root and the environment (Docker's config, NODE_EXTRA_CA_CERTS). */
export interface RegistryAccess {
  readonly root: string;
  readonly env: NodeJS.ProcessEnv;
}

/**
 * The extra CAs a registry's TLS certificate is checked against (on top of Node's bundled ones): the
 * registry's `<root>/certs.d/<registry>/ca.crt` (Docker's layout) and the NODE_EXTRA_CA_CERTS file.
 * bin/berth keeps Node from loading the latter at start-up (see there), so it is loaded here; Node
 * would also leave it out of any connection given an explicit CA.
 */
export function registryCa(access: RegistryAccess, registry: string): Buffer | undefined {
  const files = [path.join(access.root, 'certs.d', registry, 'ca.crt'), access.env.NODE_EXTRA_CA_CERTS];
  const pems = files.filter((f): f is string => f !== undefined && f !== '' && fs.existsSync(f)).map((f) => fs.readFileSync(f));
  return pems.length === 0 ? undefined : Buffer.concat(pems.flatMap((p) => [p, Buffer.from('\n')]));
}

/**
 * A registry client for the registry a reference names, with credentials from `berth login` or the
 * Docker config, and a custom CA from `<root>/certs.d/<registry>/ca.crt` (Docker's certs.d layout).
 */
export function openRegistryClient(access: RegistryAccess, ref: string, tlsVerify: boolean): RegistryClient {
  const registry = parseReference(ref).registry;
  const credentials = new CredentialStore(access.root, access.env).get(registry);
  const ca = registryCa(access, registry);
  return new RegistryClient(registry, {
    ...(credentials && { credentials }),
    tlsVerify,
    ...(ca && { ca }),
  });
}
