import { BerthError } from '../errors.js';
import { parseYaml } from '../yaml.js';

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
 * refused. `source` names the file in errors. Returns the plain document, not yet interpolated.
 */
export async function loadComposeYaml(text: string, source: string): Promise<unknown> {
  try {
    return await parseYaml(text, { merge: true, maxAliasCount: MAX_ALIAS_COUNT, uniqueKeys: true, prettyErrors: true });
  } catch (err) {
    const message = (err as Error).message;
    if (err instanceof ReferenceError && /alias count/i.test(message)) {
      throw new BerthError('invalid', `${source}: too many alias expansions (more than ${MAX_ALIAS_COUNT}): refusing what looks like an alias bomb`, { cause: err });
    }
    throw new BerthError('invalid', `${source}: ${message}`, { cause: err });
  }
}
