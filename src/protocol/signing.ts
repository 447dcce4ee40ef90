import crypto from 'node:crypto';
import { BerthError } from '../errors.js';

/**
 * Signed fleet messages (protocol v1, docs/protocol.md#signed-messages): the one place their bytes are
 * defined, for the fleet tool that signs and the agent that verifies.
 *
 * A signed message is an envelope (schema: schemas/signed.json) around the message's own JSON text,
 * which travels unchanged as the string `body`. The signature covers {@link signedBytes}: a fixed
 * header naming what the message is for (kind, device, revision or command id and issue time, key id)
 * followed by the body's UTF-8 bytes. Nothing is re-serialized before verifying, so no canonical JSON
 * is needed: the bytes signed are the bytes received.
 */

/**
 * How long a broker keeps an offline device's session, and with it the commands queued for it: the
 * agent asks for this session expiry (connection.ts), and refuses commands issued longer ago.
 */
export const SESSION_EXPIRY_SECONDS = 7 * 24 * 3600;
export const COMMAND_LIFETIME_MS = SESSION_EXPIRY_SECONDS * 1000;

/** What a signature is bound to besides the body: a message for one device, at one revision or command. */
export type SignedHeader =
  | { readonly kind: 'desired'; readonly device: string; readonly revision: number; readonly key: string }
  | { readonly kind: 'cmd'; readonly device: string; readonly id: string; readonly issued: string; readonly key: string };

/** The envelope as it travels: the header, the message's JSON text, the Ed25519 signature (base64). */
export type Envelope = SignedHeader & { readonly body: string; readonly sig: string };

/** First line of the signed bytes: a domain separator, so these signatures mean nothing elsewhere. */
const DOMAIN = 'berth/v1 signed message';

/**
 * The bytes an envelope's signature covers: lines of `DOMAIN`, kind, device, then `revision` (desired)
 * or the command id and issue time (cmd), the key id, an empty line, then the body. Header values can
 * hold no newline (the schema's patterns), so the layout is unambiguous.
 */
export function signedBytes(h: SignedHeader, body: string): Buffer {
  const bound = h.kind === 'desired' ? [`revision ${h.revision}`] : [`id ${h.id}`, `issued ${h.issued}`];
  return Buffer.from([DOMAIN, `kind ${h.kind}`, `device ${h.device}`, ...bound, `key ${h.key}`, '', body].join('\n'), 'utf8');
}

/** A key id: the first 16 hex digits of the SHA-256 of the raw 32-byte public key. */
export function keyId(raw: Buffer): string {
  return crypto.createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

/** A fleet public key: what a device trusts (agent.yaml `fleetKey`, base64 of the raw 32 bytes). */
export class FleetPublicKey {
  readonly id: string;

  private constructor(private readonly key: crypto.KeyObject, readonly raw: Buffer) {
    this.id = keyId(raw);
  }

  /** From the base64 text agent.yaml and the rotate-key command carry; `what` names it in errors. */
  static fromBase64(text: string, what: string): FleetPublicKey {
    const raw = Buffer.from(text.trim(), 'base64');
    if (raw.length !== 32 || raw.toString('base64') !== text.trim()) throw new BerthError('invalid', `${what}: not an Ed25519 public key (base64 of 32 bytes)`);
    return new FleetPublicKey(crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' }), raw);
  }

  /** From a PEM file's text: a public key, or a private key whose public half is taken. */
  static fromPem(pem: string | Buffer, what: string): FleetPublicKey {
    let key: crypto.KeyObject;
    try {
      key = crypto.createPublicKey(pem);
    } catch (err) {
      throw new BerthError('invalid', `${what}: not a PEM key (${(err as Error).message})`, { hint: 'make one with berth fleet keygen' });
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new BerthError('invalid', `${what}: an ${key.asymmetricKeyType} key, berth signs with Ed25519`, { hint: 'make one with berth fleet keygen' });
    const x = key.export({ format: 'jwk' }).x!;
    return new FleetPublicKey(key, Buffer.from(x, 'base64url'));
  }

  get base64(): string {
    return this.raw.toString('base64');
  }

  verify(env: Envelope): boolean {
    const sig = Buffer.from(env.sig, 'base64');
    return sig.length === 64 && crypto.verify(null, signedBytes(env, env.body), this.key, sig);
  }
}

/** The fleet's private key (`berth fleet keygen`'s PEM file): what `berth fleet` signs with. */
export class FleetSigningKey {
  readonly publicKey: FleetPublicKey;

  private constructor(private readonly key: crypto.KeyObject) {
    this.publicKey = FleetPublicKey.fromPem(key.export({ format: 'pem', type: 'pkcs8' }), 'the signing key');
  }

  static fromPem(pem: string | Buffer, what: string): FleetSigningKey {
    let key: crypto.KeyObject;
    try {
      key = crypto.createPrivateKey(pem);
    } catch (err) {
      throw new BerthError('invalid', `${what}: not a PEM private key (${(err as Error).message})`, { hint: 'berth fleet signs with the private key berth fleet keygen wrote (NAME.key), not the .pub file' });
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new BerthError('invalid', `${what}: an ${key.asymmetricKeyType} key, berth signs with Ed25519`);
    return new FleetSigningKey(key);
  }

  /** A new key pair as PEM texts: PKCS#8 private, SPKI public. */
  static generate(): { privatePem: string; publicPem: string } {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
    return { privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
  }

  /** The envelope for `body` (a message's JSON text) bound to `header`, as the wire carries it. */
  sign(header: DistributiveOmit<SignedHeader, 'key'>, body: string): string {
    const h = { ...header, key: this.publicKey.id } as SignedHeader;
    const sig = crypto.sign(null, signedBytes(h, body), this.key).toString('base64');
    return JSON.stringify({ ...h, body, sig });
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
