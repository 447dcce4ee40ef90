import fs from 'node:fs';
import path from 'node:path';
import { BerthError } from '../errors.js';
import { interpolateString, lookupIn, type VariableLookup } from './interpolate.js';

/**
 * The `.env` / `env_file` format as docker compose v2 reads it (docs: compose "env-file" syntax;
 * compose-go's dotenv parser):
 *
 * - blank lines and lines starting with `#` are skipped; an optional `export ` prefix is dropped;
 * - `KEY=VALUE` (compose-go also takes the YAML-like `KEY: VALUE`); spaces around the key and before
 *   the value are dropped;
 * - unquoted values run to the end of the line; ` #` (a `#` after whitespace) starts a comment;
 *   they are interpolated;
 * - `'single'` quotes are literal except for `\'`; `"double"` quotes take `\n \r \t \\ \"` and
 *   drop the backslash before any other character except `$` (compose-go keeps `\$` as it is, and
 *   interpolation then sees the `$`); double-quoted values are interpolated and may span lines;
 *   after the closing quote only a comment may follow;
 * - `KEY` alone takes KEY from the lookup (the environment), and is left out when that has none;
 * - interpolation sees the lookup first, then the keys set earlier in the same file (compose's order:
 *   the environment overrides the file).
 *
 * Keys starting with a digit are refused (compose silently drops them: no `${…}` can name one).
 */

export interface EnvFileOptions {
  /** What to call the input in errors: usually the file's path. */
  readonly source: string;
  /** Values from outside the file: for bare `KEY` lines and for interpolation. Unset when omitted. */
  readonly lookup?: VariableLookup;
  /** Told about each unset variable an interpolation replaced with ''. */
  readonly onUnset?: (name: string, where: string) => void;
}

const KEY = /^[A-Za-z0-9_.-]+/;
const DOUBLE_ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', '"': '"' };

/** Parses env-file text into its variables, in file order (a repeated key keeps its last value). */
export function parseEnvFile(text: string, opts: EnvFileOptions): Map<string, string> {
  const vars = new Map<string, string>();
  const outside = opts.lookup ?? (() => undefined);
  const lookup: VariableLookup = (name) => outside(name) ?? vars.get(name);
  const src = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let pos = 0;
  let line = 1;
  while (pos < src.length) {
    const eol = indexOrEnd(src, '\n', pos);
    const raw = src.slice(pos, eol);
    const where = `${opts.source}:${line}`;
    const fail = (message: string): never => {
      throw new BerthError('invalid', `${where}: ${message}`);
    };
    let rest = raw.trimStart();
    if (rest === '' || rest.startsWith('#')) {
      pos = eol + 1;
      line++;
      continue;
    }
    if (/^export\s/.test(rest)) rest = rest.slice('export'.length).trimStart();
    const key = KEY.exec(rest)?.[0];
    if (key === undefined) fail(`expected KEY=VALUE, found "${raw.trim()}"`);
    const k = key as string;
    if (/^[0-9]/.test(k)) fail(`variable name ${k} starts with a digit`);
    const afterKey = rest.slice(k.length);
    rest = afterKey.trimStart();
    if (rest === '' || rest.startsWith('#')) {
      // `KEY` alone: inherited from outside, or not set at all.
      const inherited = outside(k);
      if (inherited !== undefined) vars.set(k, inherited);
      pos = eol + 1;
      line++;
      continue;
    }
    if (rest[0] !== '=' && rest[0] !== ':') {
      fail(afterKey !== rest ? `variable name "${k} ${rest.split(/[\s=:]/)[0]}" cannot contain a space` : `unexpected character "${rest[0]}" after the variable name ${k} (names are letters, digits, _ . -)`);
    }
    // The value starts after the separator; it may run over several lines when quoted.
    const valueStart = pos + raw.length - rest.length + 1;
    const value = readValue(src, valueStart, where, fail);
    const interpolate = (s: string): string => interpolateString(s, where, { lookup, ...(opts.onUnset && { onUnset: opts.onUnset }) });
    vars.set(k, value.quote === "'" ? value.text : interpolate(value.text));
    line += countNewlines(src, pos, value.end);
    pos = value.end + 1;
    line++;
  }
  return vars;
}

/** Reads an env file from disk; a missing or unreadable file is an error naming it. */
export function readEnvFile(file: string, opts: Omit<EnvFileOptions, 'source'> & { source?: string }): Map<string, string> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BerthError(code === 'ENOENT' ? 'notFound' : 'host', `cannot read env file ${file}: ${code ?? (err as Error).message}`, { cause: err });
  }
  return parseEnvFile(text, { ...opts, source: opts.source ?? file });
}

interface RawValue {
  /** The value with quotes and escapes resolved, not yet interpolated. */
  readonly text: string;
  readonly quote?: '"' | "'";
  /** Index of the newline (or end of input) that ends the statement. */
  readonly end: number;
}

function readValue(src: string, start: number, where: string, fail: (m: string) => never): RawValue {
  let i = start;
  while (src[i] === ' ' || src[i] === '\t') i++;
  const quote = src[i];
  if (quote !== '"' && quote !== "'") {
    const eol = indexOrEnd(src, '\n', i);
    const line = src.slice(i, eol).replace(/\r$/, '');
    const comment = /\s#/.exec(line);
    return { text: (comment ? line.slice(0, comment.index) : line).trimEnd(), end: eol };
  }
  let text = '';
  for (i++; i < src.length; i++) {
    const c = src[i] as string;
    if (c === quote) {
      const eol = indexOrEnd(src, '\n', i + 1);
      const after = src.slice(i + 1, eol).trim();
      if (after !== '' && !after.startsWith('#')) fail(`unexpected "${after}" after the closing ${quote}`);
      return { text, quote, end: eol };
    }
    if (c === '\\' && i + 1 < src.length) {
      const n = src[i + 1] as string;
      if (quote === "'") {
        text += n === "'" ? "'" : `\\${n}`;
      } else {
        text += DOUBLE_ESCAPES[n] ?? (n === '$' ? '\\$' : n);
      }
      i++;
      continue;
    }
    text += c;
  }
  return fail(`unterminated ${quote} quoted value`);
}

function indexOrEnd(s: string, ch: string, from: number): number {
  const i = s.indexOf(ch, from);
  return i === -1 ? s.length : i;
}

function countNewlines(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = s.indexOf('\n', from); i !== -1 && i < to; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * The variables a compose file is interpolated with, in compose's precedence: the process environment,
 * then the project's `.env` beside the compose file (when there is one; its own `${…}` see the
 * environment first, and a bare KEY in it inherits from there). Returns the lookup and the `.env` values
 * (for `berth compose config` to show where a value came from).
 */
export function projectEnvironment(projectDir: string, environment: Readonly<Record<string, string | undefined>>, onUnset?: EnvFileOptions['onUnset']): { lookup: VariableLookup; dotenv: ReadonlyMap<string, string> } {
  const file = path.join(projectDir, '.env');
  const fromEnv = lookupIn(environment);
  const dotenv = fs.existsSync(file) ? readEnvFile(file, { lookup: fromEnv, ...(onUnset && { onUnset }) }) : new Map<string, string>();
  return { lookup: lookupIn(environment, dotenv), dotenv };
}
