/**
 * PAX records (`<len> <key>=<value>\n`) with values as raw bytes: a binary xattr value (security.capability
 * is a binary struct) must not go through a UTF-8 decode. tar-reader.ts decodes PAX headers with it;
 * test/integration/unpack.test.ts (the library) and pull-cli-xattr.test.ts (the bundled CLI) round-trip
 * a binary capability.
 */
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
