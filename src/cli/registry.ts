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

/** The CA a registry's TLS certificate is checked against, if the user put one in `<root>/certs.d/<registry>/ca.crt` (Docker's layout). */
export function registryCa(ctx: CliContext, registry: string): Buffer | undefined {
  const caFile = path.join(ctx.root, 'certs.d', registry, 'ca.crt');
  return fs.existsSync(caFile) ? fs.readFileSync(caFile) : undefined;
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
