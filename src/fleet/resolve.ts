import { formatReference, parseReference } from '../image/reference.js';
import { openRegistryClient, type RegistryAccess } from '../image/registry/open.js';

/**
 * An image or bundle reference pinned to the digest its tag names now, asked of its registry once, so
 * every device of a rollout gets the same bytes even if the tag moves meanwhile (`fleet upgrade`, and
 * the fleet service's rollouts). A reference with a digest is taken as it is. `name` is the reference
 * without tag or digest in berth's canonical form.
 */
export async function resolveDigest(access: RegistryAccess, ref: string, tlsVerify: boolean): Promise<{ name: string; tag?: string; digest: string }> {
  const parsed = parseReference(ref);
  const name = formatReference({ registry: parsed.registry, repository: parsed.repository });
  const tag = parsed.tag !== undefined ? { tag: parsed.tag } : {};
  if (parsed.digest !== undefined) return { name, ...tag, digest: parsed.digest };
  const client = openRegistryClient(access, ref, tlsVerify);
  try {
    return { name, ...tag, digest: (await client.getManifest(parsed.repository, parsed.tag ?? 'latest')).digest };
  } finally {
    client.close();
  }
}
