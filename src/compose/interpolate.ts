import { BerthError } from '../errors.js';

/**
 * Compose-file interpolation, as the compose specification (12-interpolation.md) and docker compose v2
 * define it: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`,
 * `${VAR:+alt}`, `${VAR+alt}`, operands that nest (`${A:-${B:-x}}`), and `$$` for a literal `$`.
 *
 * Pure: variables come from a {@link VariableLookup}; nothing reads process.env here. Applied to parsed
 * YAML (never the raw text), so a value can never inject YAML structure.
 */

/** A variable's value, or undefined when it is unset (which is not the same as set to the empty string). */
export type VariableLookup = (name: string) => string | undefined;

export interface InterpolationOptions {
  readonly lookup: VariableLookup;
  /**
   * Told about each unset variable replaced by the empty string. Compose warns and goes on, so this is
   * not an error; the caller decides where the warning goes.
   */
  readonly onUnset?: (name: string, path: string) => void;
}

const NAME = /^[_a-zA-Z][_a-zA-Z0-9]*/;
/** Braced operators, longest first so `:-` is not read as `:` followed by `-`. */
const OPERATORS = [':-', ':?', ':+', '-', '?', '+'] as const;
type Operator = (typeof OPERATORS)[number];

/**
 * Interpolates one string. `path` names the value in errors and warnings (`services.web.environment.TZ`).
 * Throws BerthError(invalid) for a required variable without a value, an unterminated `${`, or a braced
 * expression compose does not support (`${VAR/a/b}`, `${}`).
 */
export function interpolateString(text: string, path: string, opts: InterpolationOptions): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar === -1) return out + text.slice(i);
    out += text.slice(i, dollar);
    const next = text[dollar + 1];
    if (next === '$') {
      out += '$';
      i = dollar + 2;
    } else if (next === '{') {
      const close = closingBrace(text, dollar + 2);
      if (close === -1) throw invalid(path, `unterminated \${ in "${text}"`);
      out += braced(text.slice(dollar + 2, close), text, path, opts);
      i = close + 1;
    } else {
      const name = NAME.exec(text.slice(dollar + 1))?.[0];
      // "$" not followed by a name or a brace is kept as it is (the spec: only valid variable syntax is processed).
      if (name === undefined) {
        out += '$';
        i = dollar + 1;
      } else {
        out += valueOf(name, path, opts);
        i = dollar + 1 + name.length;
      }
    }
  }
  return out;
}

/**
 * The closing `}` of a `${` whose body starts at `from`: every `${` inside opens one more level, as
 * compose counts them, so `${A:-${B}}` closes at the last brace.
 */
function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let i = from; i < text.length; i++) {
    if (text[i] === '$' && text[i + 1] === '{') {
      depth++;
      i++;
    } else if (text[i] === '}' && --depth === 0) {
      return i;
    }
  }
  return -1;
}

/** Evaluates the body of `${…}`. Operands are interpolated only when used, as a shell does. */
function braced(body: string, whole: string, path: string, opts: InterpolationOptions): string {
  const name = NAME.exec(body)?.[0];
  if (name === undefined) throw invalid(path, `invalid interpolation format "\${${body}}" in "${whole}": expected a variable name`);
  const rest = body.slice(name.length);
  if (rest === '') return valueOf(name, path, opts);
  const op = OPERATORS.find((o) => rest.startsWith(o));
  if (op === undefined) {
    throw invalid(path, `invalid interpolation format "\${${body}}" in "${whole}": compose supports only :- - :? ? :+ + after the name`);
  }
  const operand = (): string => interpolateString(rest.slice(op.length), path, opts);
  return apply(op, name, opts.lookup(name), operand, path);
}

function apply(op: Operator, name: string, value: string | undefined, operand: () => string, path: string): string {
  const set = value !== undefined;
  const nonEmpty = set && value !== '';
  switch (op) {
    case ':-':
      return nonEmpty ? value : operand();
    case '-':
      return set ? value : operand();
    case ':+':
      return nonEmpty ? operand() : '';
    case '+':
      return set ? operand() : '';
    case ':?':
    case '?': {
      if (op === ':?' ? nonEmpty : set) return value as string;
      const message = operand();
      throw invalid(path, `required variable ${name} is missing a value${message !== '' ? `: ${message}` : ''}`);
    }
  }
}

function valueOf(name: string, path: string, opts: InterpolationOptions): string {
  const value = opts.lookup(name);
  if (value !== undefined) return value;
  opts.onUnset?.(name, path);
  return '';
}

function invalid(path: string, message: string): BerthError {
  return new BerthError('invalid', path === '' ? message : `${path}: ${message}`);
}

/**
 * Interpolates every string value of a parsed YAML document, at any depth, and returns a new document.
 * Mapping keys are left alone: the spec interpolates values, not keys. Numbers, booleans and null are
 * not strings in the document and pass through unchanged. `path` prefixes the paths in messages.
 */
export function interpolateDocument(doc: unknown, opts: InterpolationOptions, path = ''): unknown {
  if (typeof doc === 'string') return interpolateString(doc, path, opts);
  if (Array.isArray(doc)) return doc.map((item, i) => interpolateDocument(item, opts, `${path}[${i}]`));
  if (doc !== null && typeof doc === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(doc)) out[key] = interpolateDocument(value, opts, path === '' ? key : `${path}.${key}`);
    return out;
  }
  return doc;
}

/**
 * A lookup that asks each source in turn, first answer wins: e.g. the process environment before the
 * project's `.env`, which is compose's precedence. A source is a plain record or a Map.
 */
export function lookupIn(...sources: ReadonlyArray<Readonly<Record<string, string | undefined>> | ReadonlyMap<string, string>>): VariableLookup {
  return (name) => {
    for (const source of sources) {
      const value = source instanceof Map ? source.get(name) : Object.hasOwn(source, name) ? (source as Record<string, string | undefined>)[name] : undefined;
      if (value !== undefined) return value;
    }
    return undefined;
  };
}
