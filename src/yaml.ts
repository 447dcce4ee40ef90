/**
 * YAML parsing, loaded on first use (most commands never read YAML). The interop line is for the
 * bundle: esbuild hands a dynamically imported CommonJS package over as `default`, Node as named exports.
 */
export async function parseYaml(text: string): Promise<unknown> {
  const mod = (await import('yaml')) as unknown as { parse?: (t: string) => unknown; default?: { parse: (t: string) => unknown } };
  const parse = mod.parse ?? mod.default?.parse;
  if (!parse) throw new Error('the yaml package has no parse()');
  return parse(text);
}
