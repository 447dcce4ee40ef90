import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * tar-stream decodes PAX values as UTF-8, which destroys binary xattr values (security.capability is a
 * binary struct). Its extractor calls `headers.decodePax` through the module object, so wrapping that
 * function lets berth keep every `SCHILY.xattr.*` value's raw bytes next to the decoded record, under
 * RAW_XATTR + name, base64. test/integration/unpack.test.ts round-trips a binary capability: it fails
 * loudly if a tar-stream upgrade changes this.
 */
export const RAW_XATTR = 'berth.raw-xattr.';
const SCHILY = 'SCHILY.xattr.';

type Headers = { decodePax: (buf: Buffer) => Record<string, string>; __berthRaw?: true };

export function keepRawXattrs(): void {
  const require = createRequire(import.meta.url);
  // Not in tar-stream's exports map: load the very file its extractor uses, by path.
  const headers = require(path.join(path.dirname(require.resolve('tar-stream/package')), 'headers.js')) as Headers;
  if (headers.__berthRaw) return;
  const decode = headers.decodePax;
  headers.decodePax = (buf: Buffer) => {
    const record = decode(buf);
    for (const [key, value] of rawPaxRecords(buf)) if (key.startsWith(SCHILY)) record[RAW_XATTR + key.slice(SCHILY.length)] = value.toString('base64');
    return record;
  };
  headers.__berthRaw = true;
}

/** PAX records (`<len> <key>=<value>\n`) with values as raw bytes. */
export function rawPaxRecords(buf: Buffer): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  let pos = 0;
  while (pos < buf.length) {
    const space = buf.indexOf(0x20, pos);
    if (space < 0) break;
    const len = Number(buf.toString('latin1', pos, space));
    if (!Number.isInteger(len) || len <= 0 || pos + len > buf.length) break;
    const record = buf.subarray(space + 1, pos + len - 1); // drop the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq > 0) out.push([record.toString('utf8', 0, eq), Buffer.from(record.subarray(eq + 1))]);
    pos += len;
  }
  return out;
}
