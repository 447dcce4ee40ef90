import fs from 'node:fs';
import { BerthError, isErrno } from '../errors.js';
import { FleetSigningKey } from '../protocol/signing.js';

/** What `berth fleet keygen` made. */
export interface KeyPairFiles {
  readonly privateFile: string;
  readonly publicFile: string;
  /** The key id devices name it by. */
  readonly id: string;
  /** The public key as agent.yaml's fleetKey carries it. */
  readonly base64: string;
}

/**
 * Writes a new fleet key pair as `<name>.key` (PKCS#8 PEM, created 0600 and never over an existing
 * file: overwriting a fleet key would lock every device out) and `<name>.pub` (SPKI PEM).
 */
export function writeKeyPair(name: string): KeyPairFiles {
  const { privatePem, publicPem } = FleetSigningKey.generate();
  const privateFile = `${name}.key`;
  const publicFile = `${name}.pub`;
  const written: string[] = [];
  for (const [file, text, mode] of [[privateFile, privatePem, 0o600], [publicFile, publicPem, 0o644]] as const) {
    try {
      fs.writeFileSync(file, text, { flag: 'wx', mode });
      written.push(file);
    } catch (err) {
      // Never half a pair: a private key without its public file would be a key nobody can install.
      for (const f of written) fs.rmSync(f, { force: true });
      if (isErrno(err, 'EEXIST')) throw new BerthError('conflict', `${file} already exists: berth fleet keygen never replaces a fleet key`, { hint: 'to change keys, make a new one under another name and announce it with berth fleet cmd DEVICE rotate-key --new-key NEW.pub' });
      throw new BerthError('host', `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
  }
  const key = FleetSigningKey.fromPem(privatePem, privateFile);
  return { privateFile, publicFile, id: key.publicKey.id, base64: key.publicKey.base64 };
}
