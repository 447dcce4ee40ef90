import { BerthError } from '../errors.js';
import { parseYaml, type YamlOptions } from '../yaml.js';
import { jsonSyntaxError } from './json-error.js';

/**
 * Text → value for everything berth reads as JSON or YAML: config files (through read.ts) and JSON
 * payloads from registries and the broker. A syntax error is always BerthError('invalid') saying
 * where: `<what> is not valid JSON (line L, column C): <reason>`, so a user can go straight to it.
 */

/** JSON.parse with a categorized error naming the line and column of the first offending character. */
export function parseJson(bytes: Uint8Array | string, what: string): unknown {
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    const { offset, reason } = jsonSyntaxError(text);
    throw new BerthError('invalid', `${what} is not valid JSON (${lineColumn(text, offset)}): ${reason}`, { cause: err });
  }
}

/** YAML 1.2 (a superset of JSON) with the same error shape as parseJson; `options` go to the parser (compose's merge keys). */
export async function parseYamlText(text: string, what: string, options?: YamlOptions): Promise<unknown> {
  try {
    return await parseYaml(text, options);
  } catch (err) {
    const e = err as Error & { linePos?: Array<{ line: number; col: number }> };
    // The yaml package appends " at line L, column C:" and a code frame to the first line; keep the reason.
    const reason = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    const pos = e.linePos?.[0];
    throw new BerthError('invalid', `${what} is not valid YAML${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}: ${reason}`, { cause: err });
  }
}

function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return `line ${line}, column ${offset - before.lastIndexOf('\n')}`;
}
