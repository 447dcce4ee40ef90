import { BerthError } from '../errors.js';
import { parseYamlText } from '../config/parse.js';

/**
 * How many times aliases may be expanded, weighted by the aliases inside what they point at (the yaml
 * package's `maxAliasCount`). The package's default of 100 is tight for compose files, which lean on
 * `<<: *common` in every service; 1000 still stops an alias bomb ("billion laughs") after a few levels,
 * because its cost grows exponentially while honest reuse grows linearly.
 */
export const MAX_ALIAS_COUNT = 1000;

/**
 * Parses a compose file's text as docker compose does: YAML 1.2 core schema (so `yes`/`on` stay
 * strings), anchors and aliases, and `<<` merge keys, including a list of merges (`<<: [*a, *b]`, the
 * earlier one winning, keys written beside `<<` winning over both). Duplicate keys and alias bombs are
 * refused. `source` names the file in errors, which read as every config file's do
 * (`<source> is not valid YAML (line L, column C): …`). Returns the plain document, not yet interpolated.
 */
export async function loadComposeYaml(text: string, source: string): Promise<unknown> {
  try {
    return await parseYamlText(text, source, { merge: true, maxAliasCount: MAX_ALIAS_COUNT, uniqueKeys: true });
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof ReferenceError && /alias count/i.test(cause.message)) {
      throw new BerthError('invalid', `${source}: too many alias expansions (more than ${MAX_ALIAS_COUNT}): refusing what looks like an alias bomb`, { cause });
    }
    throw err;
  }
}
