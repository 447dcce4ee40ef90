import fs from 'node:fs';
import path from 'node:path';
import { BerthError } from '../errors.js';
import { parseReference } from '../image/reference.js';
import { RegistryClient } from '../image/registry/client.js';
import { CredentialStore } from '../image/registry/credentials.js';
import type { CliContext } from './context.js';

export function parseBool(value: string, flag: string): boolean {
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new BerthError('usage', `${flag} takes true or false, not "${value}"`);
}

/**
 * The extra CAs a registry's TLS certificate is checked against (on top of Node's bundled ones): the
 * registry's `<root>/certs.d/<registry>/ca.crt` (Docker's layout) and the NODE_EXTRA_CA_CERTS file.
 * bin/berth keeps Node from loading the latter at start-up (see there), so it is loaded here; Node
 * would also leave it out of any connection given an explicit CA.
 */
export function registryCa(ctx: CliContext, registry: string): Buffer | undefined {
  const files = [path.join(ctx.root, 'certs.d', registry, 'ca.crt'), ctx.env.NODE_EXTRA_CA_CERTS];
  const pems = files.filter((f): f is string => f !== undefined && f !== '' && fs.existsSync(f)).map((f) => fs.readFileSync(f));
  return pems.length === 0 ? undefined : Buffer.concat(pems.flatMap((p) => [p, Buffer.from('\n')]));
}

/**
 * A registry client for the registry a reference names, with credentials from `berth login` or the
 * Docker config, and a custom CA from `<root>/certs.d/<registry>/ca.crt` (Docker's certs.d layout).
 */
export function openRegistryClient(ctx: CliContext, ref: string, tlsVerify: string): RegistryClient {
  const registry = parseReference(ref).registry;
  const credentials = new CredentialStore(ctx.root, ctx.env).get(registry);
  const ca = registryCa(ctx, registry);
  return new RegistryClient(registry, {
    ...(credentials && { credentials }),
    tlsVerify: parseBool(tlsVerify, '--tls-verify'),
    ...(ca && { ca }),
  });
}
