/**
 * Pushes (distribution-spec): blobs by monolithic upload (POST, then PUT with ?digest=), manifests and
 * indexes by PUT. Enough for berth's own artifacts (agent bundles, docs/upgrade.md); not a general
 * image pusher (no chunked uploads, no cross-repository mounts).
 */
import { BerthError } from '../../errors.js';
import { digestOf, verifyBytes } from '../digest.js';
import { RegistryClient } from './client.js';
import { discard } from './http.js';

export interface PushedBlob {
  readonly digest: string;
  readonly size: number;
  /** false: the registry had it already (HEAD answered 200), nothing was uploaded. */
  readonly uploaded: boolean;
}

/** Uploads `bytes` as a blob unless the repository has it. The digest is computed here, never trusted. */
export async function pushBlob(client: RegistryClient, repository: string, bytes: Buffer, signal?: AbortSignal): Promise<PushedBlob> {
  const digest = digestOf(bytes);
  const what = `blob ${digest} to ${client.registry}/${repository}`;
  const head = await client.pushRequest(repository, `blobs/${digest}`, { method: 'HEAD' }, what, signal);
  discard(head.message);
  if (head.status === 200) return { digest, size: bytes.length, uploaded: false };
  const start = await client.pushRequest(repository, 'blobs/uploads/', { method: 'POST' }, what, signal);
  discard(start.message);
  if (start.status !== 202) throw await RegistryClient.statusError(start, `${what} (starting the upload)`);
  const location = start.headers.location;
  if (location === undefined) throw new BerthError('invalid', `${what}: the registry started an upload without a Location`);
  // Relative or absolute: resolved against the URL that answered (pushRequest refuses another host).
  const target = new URL(location, start.url);
  target.searchParams.set('digest', digest);
  const put = await client.pushRequest(repository, target, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes }, what, signal);
  if (put.status !== 201) throw await RegistryClient.statusError(put, what);
  discard(put.message);
  return { digest, size: bytes.length, uploaded: true };
}

/**
 * PUTs a manifest or index under `reference` (a tag, or its own digest) with its media type; returns
 * its digest. A registry that names another digest for what it stored is an error.
 */
export async function putManifest(client: RegistryClient, repository: string, reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<string> {
  const digest = digestOf(bytes);
  if (reference.includes(':')) verifyBytes(bytes, reference, undefined, `manifest ${reference}`);
  const what = `manifest ${client.registry}/${repository}:${reference}`;
  const res = await client.pushRequest(repository, `manifests/${reference}`, { method: 'PUT', headers: { 'content-type': mediaType }, body: bytes }, what, signal);
  if (res.status !== 201) throw await RegistryClient.statusError(res, what);
  discard(res.message);
  const said = res.headers['docker-content-digest'];
  if (typeof said === 'string' && said !== digest) throw new BerthError('invalid', `${what}: the registry stored it as ${said}, not ${digest}`);
  return digest;
}
