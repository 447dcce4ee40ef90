import tar from 'tar-stream';

/**
 * tar-stream decodes PAX values as UTF-8, which destroys binary xattr values (security.capability is a
 * binary struct). Its extractor decodes every PAX header in `_decodeLongHeader(buf)`; wrapping that
 * method lets berth keep every `SCHILY.xattr.*` value's raw bytes next to the decoded record, under
 * RAW_XATTR + name, base64. The class comes from berth's own `tar-stream` import, so the patch reaches
 * the copy that extracts, whether esbuild bundled it (dist/bundle, an agent bundle on a board without
 * node_modules/tar-stream) or Node loads it from node_modules. test/integration/unpack.test.ts (the
 * library) and pull-cli-xattr.test.ts (the bundled CLI) round-trip a binary capability: they fail loudly
 * if a tar-stream upgrade changes this.
 */
export const RAW_XATTR = 'berth.raw-xattr.';
const SCHILY = 'SCHILY.xattr.';

type PaxRecord = Record<string, string>;
interface ExtractInternals {
  _decodeLongHeader(buf: Buffer): void;
  _header: { type: string } | null;
  _pax: PaxRecord | null;
  _paxGlobal: PaxRecord | null;
  __berthRaw?: true;
}

export function keepRawXattrs(): void {
  const proto = Object.getPrototypeOf(tar.extract()) as ExtractInternals;
  if (proto.__berthRaw) return;
  const decode = proto._decodeLongHeader;
  if (typeof decode !== 'function') throw new Error('tar-stream changed: its extractor has no _decodeLongHeader to keep raw PAX xattrs (src/image/unpack/pax.ts)');
  proto._decodeLongHeader = function (this: ExtractInternals, buf: Buffer): void {
    decode.call(this, buf);
    const type = this._header?.type;
    const record = type === 'pax-header' ? this._pax : type === 'pax-global-header' ? this._paxGlobal : null;
    if (!record) return;
    for (const [key, value] of rawPaxRecords(buf)) if (key.startsWith(SCHILY)) record[RAW_XATTR + key.slice(SCHILY.length)] = value.toString('base64');
  };
  proto.__berthRaw = true;
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
