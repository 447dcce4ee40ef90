import http from 'node:http';
import https from 'node:https';
import { BerthError, ERROR_CATEGORIES, type ErrorCategory } from '../../errors.js';

/**
 * The CLI as a client of the fleet service (`berth fleet deploy --server`, `berth fleet token ls|revoke
 * --server`): one place that knows the service's URL, token, TLS trust and error shape.
 *
 * node:https rather than fetch: fetch cannot be given a private CA without undici's own Agent (a
 * dependency, and WebAssembly at load), while https.request takes `ca` directly. As with curl --cacert,
 * a given CA replaces the system's roots: the service is trusted through that CA only.
 */
export interface ServiceEndpoint {
  /** The service's base URL as the user gave it (named in errors). */
  readonly server: string;
  readonly token: string;
  /** PEM certificates to trust for the service's TLS instead of the system's roots (--server-ca). */
  readonly ca?: Buffer;
  /** Where `ca` came from (named in errors). */
  readonly caFile?: string;
}

export interface ServiceAnswer {
  readonly status: number;
  readonly body: Record<string, any>;
}

/** Node's codes for a certificate the client does not trust (node:tls, OpenSSL's verify results). */
const CERT_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE', 'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export class ServiceClient {
  private readonly base: URL;

  /** Checks the URL and the CA (usage errors naming --server and --server-ca); connects nothing yet. */
  constructor(private readonly endpoint: ServiceEndpoint) {
    try {
      this.base = new URL(endpoint.server);
    } catch {
      throw new BerthError('usage', `--server takes the service's URL, such as https://fleet.example:8443, not "${endpoint.server}"`);
    }
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') throw new BerthError('usage', `--server must be http:// or https://, not ${endpoint.server}`);
    if (endpoint.ca !== undefined) {
      if (this.base.protocol !== 'https:') throw new BerthError('usage', `--server-ca is for an https:// service, and ${endpoint.server} is not one`);
      if (!endpoint.ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
        throw new BerthError('invalid', `--server-ca ${endpoint.caFile ?? ''}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)`.replace(' :', ':'));
      }
    }
  }

  /**
   * One API call with the bearer token. Resolves with any HTTP answer (the caller decides which
   * statuses are success); rejects with BerthError 'network' naming the URL when the service cannot be
   * reached or its TLS certificate is not trusted.
   */
  request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<ServiceAnswer> {
    const url = new URL(path, this.base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = { authorization: `Bearer ${this.endpoint.token}`, accept: 'application/json' };
    if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': payload.length });
    const secure = url.protocol === 'https:';
    return new Promise<ServiceAnswer>((resolve, reject) => {
      const options = { method, headers, ...(secure && this.endpoint.ca !== undefined && { ca: this.endpoint.ca }) };
      const req = (secure ? https : http).request(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(this.unreachable(err)));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            parsed = {};
          }
          resolve({ status: res.statusCode ?? 0, body: typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, any>) : {} });
        });
      });
      req.on('error', (err) => reject(this.unreachable(err)));
      req.end(payload);
    });
  }

  /** The service's error answer as a BerthError of its category (`forbidden`, a too-small scope, is `auth`). */
  refused(what: string, answer: ServiceAnswer): BerthError {
    const e = answer.body.error as { code?: string; message?: string; hint?: string } | undefined;
    const code = e?.code === 'forbidden' ? 'auth' : e?.code;
    const category: ErrorCategory = code !== undefined && code in ERROR_CATEGORIES && code !== 'internal' ? (code as ErrorCategory) : answer.status === 401 || answer.status === 403 ? 'auth' : 'network';
    return new BerthError(category, `the fleet service refused ${what} (${answer.status}): ${e?.message ?? `HTTP ${answer.status}`}`, { ...(e?.hint !== undefined && { hint: e.hint }) });
  }

  private unreachable(err: Error): BerthError {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (CERT_CODES.has(code) || code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS')) {
      const hint = this.endpoint.ca !== undefined
        ? `--server-ca ${this.endpoint.caFile ?? ''} must hold the CA that signed the service's certificate, and the certificate must name the host of the URL`
        : 'if the service uses a private CA, give it with --server-ca FILE (PEM)';
      return new BerthError('network', `TLS to the fleet service ${this.endpoint.server} failed: ${err.message}${code ? ` (${code})` : ''}`, { cause: err, hint });
    }
    return new BerthError('network', `cannot reach the fleet service ${this.endpoint.server}: ${err.message}`, { cause: err });
  }
}

/** POST /api/v1/rollouts: the rollout's record (docs/fleet-api.yaml Rollout) with the first page of its devices and `next`. */
export async function submitRollout(client: ServiceClient, request: Record<string, unknown>): Promise<Record<string, any>> {
  const answer = await client.request('POST', '/api/v1/rollouts', request);
  if (answer.status === 201) return answer.body;
  throw client.refused('the rollout', answer);
}

/**
 * `rollout` (an answer with a page of devices and `next`) with the devices of every further page read
 * (GET /api/v1/rollouts/{id}?limit=&after=), in sending order; `next` dropped. Each page is read as it
 * is then: a device's outcome may be newer than the summary's counts.
 */
export async function withAllDevices(client: ServiceClient, rollout: Record<string, any>): Promise<Record<string, any>> {
  const { next: first, ...rest } = rollout;
  const devices: unknown[] = [...((rest.devices as unknown[] | undefined) ?? [])];
  for (let next = first as number | null | undefined; typeof next === 'number';) {
    const answer = await client.request('GET', `/api/v1/rollouts/${encodeURIComponent(String(rest.id))}?limit=1000&after=${next}`);
    if (answer.status !== 200) throw client.refused(`the devices of rollout ${String(rest.id)}`, answer);
    devices.push(...((answer.body.devices as unknown[] | undefined) ?? []));
    next = answer.body.next as number | null | undefined;
  }
  return { ...rest, devices };
}
