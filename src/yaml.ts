import type { DocumentOptions, ParseOptions, SchemaOptions, ToJSOptions } from 'yaml';

/** What callers may ask of the parser (merge keys, alias limits …): the yaml package's own options. */
export type YamlOptions = ParseOptions & DocumentOptions & SchemaOptions & ToJSOptions;

/**
 * YAML parsing and printing, loaded on first use (most commands never touch YAML). The interop line is
 * for the bundle: esbuild hands a dynamically imported CommonJS package over as `default`, Node as
 * named exports.
 */
interface YamlModule {
  parse: (t: string, options?: YamlOptions) => unknown;
  stringify: (v: unknown, options?: { version?: '1.1' | '1.2' }) => string;
}

async function yamlModule(): Promise<YamlModule> {
  const mod = (await import('yaml')) as unknown as Partial<YamlModule> & { default?: YamlModule };
  const y = mod.parse ? (mod as YamlModule) : mod.default;
  if (!y?.parse) throw new Error('the yaml package has no parse()');
  return y;
}

export async function parseYaml(text: string, options?: YamlOptions): Promise<unknown> {
  const y = await yamlModule();
  return options === undefined ? y.parse(text) : y.parse(text, options);
}

/** YAML 1.1 quoting, as docker compose prints: `restart: "no"` stays a string for every reader. */
export async function stringifyYaml(value: unknown): Promise<string> {
  return (await yamlModule()).stringify(value, { version: '1.1' });
}
