import type { DocumentOptions, ParseOptions, SchemaOptions, ToJSOptions } from 'yaml';

/** What callers may ask of the parser (merge keys, alias limits …): the yaml package's own options. */
export type YamlOptions = ParseOptions & DocumentOptions & SchemaOptions & ToJSOptions;

/**
 * YAML parsing, loaded on first use (most commands never read YAML). The interop line is for the
 * bundle: esbuild hands a dynamically imported CommonJS package over as `default`, Node as named exports.
 */
export async function parseYaml(text: string, options?: YamlOptions): Promise<unknown> {
  type Parse = (t: string, o?: YamlOptions) => unknown;
  const mod = (await import('yaml')) as unknown as { parse?: Parse; default?: { parse: Parse } };
  const parse = mod.parse ?? mod.default?.parse;
  if (!parse) throw new Error('the yaml package has no parse()');
  return options === undefined ? parse(text) : parse(text, options);
}
