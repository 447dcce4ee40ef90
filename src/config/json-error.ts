/**
 * Where and why a JSON text is invalid, for messages. V8's JSON.parse errors cannot serve: some give
 * an offset and some none ("Unexpected token 'b', "…" is not valid JSON"), their wording changes
 * between Node versions, and they echo the text, which in a config file may hold a password. This
 * scanner follows RFC 8259's grammar only far enough to find the first offending character; it is
 * run after JSON.parse has already failed, never to parse.
 */
export function jsonSyntaxError(text: string): { offset: number; reason: string } {
  let i = 0;
  const fail = (): never => {
    throw i;
  };
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const string = (): void => {
    i++;
    for (;;) {
      if (i >= text.length) fail();
      const c = text.charCodeAt(i);
      if (c === 0x22) return void i++;
      if (c < 0x20) fail();
      if (c !== 0x5c) i++;
      else if (text[i + 1] === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
      else if ('"\\/bfnrt'.includes(text[i + 1] ?? 'x')) i += 2;
      else (i++, fail());
    }
  };
  const sequence = (close: string, item: () => void): void => {
    i++;
    ws();
    if (text[i] === close) return void i++;
    for (;;) {
      item();
      ws();
      if (text[i] === close) return void i++;
      if (text[i] !== ',') fail();
      i++;
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      sequence('}', () => {
        ws();
        if (text[i] !== '"') fail();
        string();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
      });
    } else if (c === '[') sequence(']', value);
    else if (c === '"') string();
    else {
      const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 400));
      if (!m) fail();
      i += m![0].length;
    }
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
  } catch (err) {
    if (typeof err !== 'number') return { offset: text.length, reason: 'nesting too deep to locate the error' };
  }
  return { offset: i, reason: i >= text.length ? 'unexpected end of input' : text.charCodeAt(i) < 0x20 ? 'unexpected control character' : `unexpected ${JSON.stringify(text[i])}` };
}
