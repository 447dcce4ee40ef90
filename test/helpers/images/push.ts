// Pushes blobs and manifests over the distribution-spec HTTP API (no client library: the tests
// should see exactly what goes over the wire, and the registry is the real docker-registry).
import { sha256, type Blob } from './oci.js';

export interface RegistryTarget {
  /** http://127.0.0.1:PORT */
  url: string;
}

export interface BasicAuth {
  username: string;
  password: string;
}

export interface PushOptions {
  /** Sent as `Authorization: Basic …` on every request (registry with htpasswd auth). */
  auth?: BasicAuth;
}

function headers(opts: PushOptions, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { ...extra };
  if (opts.auth) h.authorization = `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`;
  return h;
}

async function fail(what: string, res: Response): Promise<never> {
  const body = await res.text().catch(() => '');
  throw new Error(`${what}: HTTP ${res.status} ${res.statusText} ${body.slice(0, 500)}`);
}

const v2 = (reg: RegistryTarget, repo: string, rest: string): string => `${reg.url.replace(/\/+$/, '')}/v2/${repo}/${rest}`;

export async function blobExists(reg: RegistryTarget, repo: string, digest: string, opts: PushOptions = {}): Promise<boolean> {
  const res = await fetch(v2(reg, repo, `blobs/${digest}`), { method: 'HEAD', headers: headers(opts) });
  if (res.status === 200) return true;
  if (res.status === 404) return false;
  return fail(`HEAD blob ${digest} in ${repo}`, res);
}

/** Monolithic upload (POST then PUT with ?digest=); skipped when the registry already has the blob. */
export async function pushBlob(reg: RegistryTarget, repo: string, blob: Blob, opts: PushOptions = {}): Promise<'pushed' | 'exists'> {
  const { digest } = blob.desc;
  if (await blobExists(reg, repo, digest, opts)) return 'exists';
  const start = await fetch(v2(reg, repo, 'blobs/uploads/'), { method: 'POST', headers: headers(opts) });
  await start.arrayBuffer();
  if (start.status !== 202) return fail(`start upload of ${digest} to ${repo}`, start);
  const location = start.headers.get('location');
  if (!location) throw new Error(`registry gave no Location for the upload of ${digest}`);
  // Location may be relative or absolute and may already carry a query (_state=…).
  const put = new URL(location, reg.url);
  put.searchParams.set('digest', digest);
  const res = await fetch(put, {
    method: 'PUT',
    headers: headers(opts, { 'content-type': 'application/octet-stream' }),
    body: blob.bytes,
  });
  await res.arrayBuffer();
  if (res.status !== 201) return fail(`PUT blob ${digest} to ${repo}`, res);
  return 'pushed';
}

/** PUT a manifest or index under a tag or digest; checks the registry agrees on its digest. */
export async function pushManifest(reg: RegistryTarget, repo: string, ref: string, blob: Blob, opts: PushOptions = {}): Promise<string> {
  const res = await fetch(v2(reg, repo, `manifests/${ref}`), {
    method: 'PUT',
    headers: headers(opts, { 'content-type': blob.desc.mediaType }),
    body: blob.bytes,
  });
  await res.arrayBuffer();
  if (res.status !== 201) return fail(`PUT manifest ${repo}:${ref}`, res);
  const digest = res.headers.get('docker-content-digest');
  if (digest && digest !== blob.desc.digest) throw new Error(`registry stored ${repo}:${ref} as ${digest}, expected ${blob.desc.digest}`);
  return blob.desc.digest;
}

/** GET a manifest with an Accept header; returns its bytes, Content-Type and checked digest. */
export async function getManifest(
  reg: RegistryTarget,
  repo: string,
  ref: string,
  accept: string,
  opts: PushOptions = {},
): Promise<{ bytes: Buffer; mediaType: string; digest: string }> {
  const res = await fetch(v2(reg, repo, `manifests/${ref}`), { headers: headers(opts, { accept }) });
  if (res.status !== 200) return fail(`GET manifest ${repo}:${ref}`, res);
  const bytes = Buffer.from(await res.arrayBuffer());
  return { bytes, mediaType: res.headers.get('content-type') ?? '', digest: sha256(bytes) };
}

/** GET a blob and verify its digest. */
export async function getBlob(reg: RegistryTarget, repo: string, digest: string, opts: PushOptions = {}): Promise<Buffer> {
  const res = await fetch(v2(reg, repo, `blobs/${digest}`), { headers: headers(opts) });
  if (res.status !== 200) return fail(`GET blob ${digest} from ${repo}`, res);
  const bytes = Buffer.from(await res.arrayBuffer());
  if (sha256(bytes) !== digest) throw new Error(`blob ${digest} from ${repo} has digest ${sha256(bytes)}`);
  return bytes;
}
