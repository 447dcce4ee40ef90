import dgram from 'node:dgram';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The only upstream DNS server of an integration run: UDP port 53 on a loopback address of its own
 * (127.53.x.y, so concurrent runs on the host do not collide), answering every query NXDOMAIN at once
 * (a lookup of an unknown name fails fast instead of waiting out a timeout) and appending the name
 * asked to `queriesFile`, where a test can see that a forwarded lookup arrived here and nowhere else.
 */
export interface DnsSink {
  readonly address: string;
  readonly queriesFile: string;
  close(): Promise<void>;
}

export async function startDnsSink(): Promise<DnsSink> {
  const queriesFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'berth-dns-sink-')), 'queries');
  fs.writeFileSync(queriesFile, '');
  for (let attempt = 0; ; attempt++) {
    const [a, b] = crypto.randomBytes(2);
    const address = `127.53.${a}.${1 + (b! % 254)}`;
    const socket = dgram.createSocket('udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(53, address, () => resolve());
      });
    } catch (err) {
      socket.close();
      if (attempt < 5 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
      throw err;
    }
    socket.on('message', (msg, from) => {
      const name = questionName(msg);
      if (name === undefined) return;
      fs.appendFileSync(queriesFile, `${name}\n`);
      socket.send(nxdomain(msg), from.port, from.address);
    });
    return {
      address,
      queriesFile,
      close: () => new Promise<void>((resolve) => socket.close(() => {
        fs.rmSync(path.dirname(queriesFile), { recursive: true, force: true });
        resolve();
      })),
    };
  }
}

/** The first question's name of a DNS query, or undefined for something that is not one. */
function questionName(msg: Buffer): string | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let i = 12;
  while (i < msg.length && msg[i] !== 0) {
    const len = msg[i]!;
    if (len > 63 || i + 1 + len > msg.length) return undefined;
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
  return labels.join('.');
}

/** The query turned into its NXDOMAIN answer: same id and question, QR and RA set, RCODE 3, no records. */
function nxdomain(query: Buffer): Buffer {
  const end = questionEnd(query);
  const out = Buffer.from(query.subarray(0, end));
  out[2] = 0x80 | (query[2]! & 0x01); // QR, opcode 0, RD copied
  out[3] = 0x80 | 3; // RA, NXDOMAIN
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  return out;
}

function questionEnd(msg: Buffer): number {
  let i = 12;
  while (i < msg.length && msg[i] !== 0) i += 1 + msg[i]!;
  return Math.min(msg.length, i + 1 + 4);
}
