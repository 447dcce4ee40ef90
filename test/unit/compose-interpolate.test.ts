import { describe, expect, it } from 'vitest';
import { interpolateDocument, interpolateString, lookupIn, type InterpolationOptions } from '../../src/compose/interpolate.js';
import { loadComposeYaml, MAX_ALIAS_COUNT } from '../../src/compose/load-yaml.js';
import { BerthError } from '../../src/errors.js';

// SET=value, EMPTY is set to '', UNSET is not set at all.
const env = { SET: 'value', EMPTY: '', FOO: 'foo', TZ_DEFAULT: 'Etc/UTC' };
const opts: InterpolationOptions = { lookup: lookupIn(env) };
const run = (text: string): string => interpolateString(text, 'x', opts);

describe('interpolation: the compose specification operators', () => {
  it.each([
    ['plain text', 'plain text'],
    ['$SET', 'value'],
    ['${SET}', 'value'],
    ['pre-${SET}-post', 'pre-value-post'],
    ['$SET.ext $SET-x', 'value.ext value-x'],
    ['${UNSET:-default}', 'default'],
    ['${EMPTY:-default}', 'default'],
    ['${SET:-default}', 'value'],
    ['${UNSET-default}', 'default'],
    ['${EMPTY-default}', ''],
    ['${SET-default}', 'value'],
    ['${SET:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${UNSET:+alt}', ''],
    ['${SET+alt}', 'alt'],
    ['${EMPTY+alt}', 'alt'],
    ['${UNSET+alt}', ''],
    ['${EMPTY?msg}', ''],
    ['${SET:?msg}', 'value'],
    ['${UNSET:-}', ''],
    ['${UNSET:-a:b-c}', 'a:b-c'],
    ['${UNSET:-http://host:8080/x}', 'http://host:8080/x'],
  ])('%s → %j', (input, expected) => {
    expect(run(input)).toBe(expected);
  });

  it('nests defaults as compose v2 does', () => {
    expect(run('${UNSET:-${FOO}}')).toBe('foo');
    expect(run('${UNSET:-${ALSO_UNSET:-deep}}')).toBe('deep');
    expect(run('${UNSET:-$FOO/x}')).toBe('foo/x');
    expect(run('${UNSET:-${ALSO_UNSET:-${FOO}}}-tail')).toBe('foo-tail');
    expect(run('${SET:+[${FOO}]}')).toBe('[foo]');
    expect(run('a${UNSET:-b}c${UNSET:-d}e')).toBe('abcde');
  });

  it('evaluates an operand only when it is used, so an unused required default does not fail', () => {
    expect(run('${SET:-${UNSET:?never asked}}')).toBe('value');
  });

  it('$$ is a literal dollar and stops interpolation', () => {
    expect(run('$$SET')).toBe('$SET');
    expect(run('$${SET}')).toBe('${SET}');
    expect(run('cost: 5$$')).toBe('cost: 5$');
    expect(run('sh -c "echo $$HOME"')).toBe('sh -c "echo $HOME"');
  });

  it('keeps a $ that starts no variable (as the spec says), e.g. in a price or a regex', () => {
    expect(run('5$')).toBe('5$');
    expect(run('$1 and $ and $-')).toBe('$1 and $ and $-');
    expect(run('^a$')).toBe('^a$');
  });

  it('a missing required variable is an invalid-input error naming the path, the variable and the message', () => {
    const err = (() => {
      try {
        interpolateString('${TZ:?set TZ in .env}', 'services.web.environment.TZ', opts);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(BerthError);
    expect((err as BerthError).category).toBe('invalid');
    expect((err as BerthError).message).toBe('services.web.environment.TZ: required variable TZ is missing a value: set TZ in .env');
    expect(() => run('${EMPTY:?}')).toThrow(/^x: required variable EMPTY is missing a value$/);
    expect(() => run('${UNSET?no $FOO here}')).toThrow(/required variable UNSET is missing a value: no foo here/);
  });

  it.each([
    ['${', /unterminated \$\{/],
    ['${SET', /unterminated \$\{/],
    ['${UNSET:-${FOO}', /unterminated \$\{/],
    ['${}', /invalid interpolation format "\$\{\}"/],
    ['${9X}', /invalid interpolation format/],
    ['${SET/a/b}', /invalid interpolation format "\$\{SET\/a\/b\}".*only :- - :\? \? :\+ \+/],
    ['${SET:0:2}', /invalid interpolation format/],
  ])('refuses %j clearly', (input, message) => {
    expect(() => run(input)).toThrow(message);
  });

  it('an unset variable becomes empty and is reported with its path, as compose warns', () => {
    const seen: string[] = [];
    const out = interpolateString('a${UNSET}b$ALSO', 'services.s.image', { lookup: lookupIn(env), onUnset: (name, path) => seen.push(`${path}:${name}`) });
    expect(out).toBe('ab');
    expect(seen).toEqual(['services.s.image:UNSET', 'services.s.image:ALSO']);
  });

  it('a default does not report the variable it stands in for', () => {
    const seen: string[] = [];
    interpolateString('${UNSET:-x}${UNSET-y}', 'p', { lookup: lookupIn(env), onUnset: (name) => seen.push(name) });
    expect(seen).toEqual([]);
  });
});

describe('interpolating a parsed document', () => {
  it('interpolates every string value at any depth, never keys, and leaves numbers, booleans and null alone', () => {
    const doc = {
      services: {
        '${SET}': { image: 'nodered/node-red:${TAG:-latest}' },
        web: {
          environment: ['TZ=${TZ:-Etc/UTC}', 'PLAIN=1'],
          labels: { 'io.balena.features.dbus': 1, flag: true, none: null, who: '$FOO' },
          command: ['sh', '-c', 'echo $$HOME'],
        },
      },
      'x-extra': { note: '${FOO}' },
    };
    expect(interpolateDocument(doc, opts)).toEqual({
      services: {
        '${SET}': { image: 'nodered/node-red:latest' },
        web: {
          environment: ['TZ=Etc/UTC', 'PLAIN=1'],
          labels: { 'io.balena.features.dbus': 1, flag: true, none: null, who: 'foo' },
          command: ['sh', '-c', 'echo $HOME'],
        },
      },
      'x-extra': { note: 'foo' },
    });
  });

  it('names the failing value by its path, list items by index', () => {
    const doc = { services: { web: { environment: { TZ: '${TZ:?missing}' } } } };
    expect(() => interpolateDocument(doc, opts)).toThrow('services.web.environment.TZ: required variable TZ is missing a value: missing');
    const list = { services: { web: { ports: ['80', '${PORT:?port}'] } } };
    expect(() => interpolateDocument(list, opts)).toThrow(/^services\.web\.ports\[1\]: required variable PORT/);
  });

  it('does not modify its input', () => {
    const doc = { a: ['$FOO'] };
    interpolateDocument(doc, opts);
    expect(doc).toEqual({ a: ['$FOO'] });
  });
});

describe('lookupIn: compose precedence over several sources', () => {
  it('asks the sources in order and tells unset from empty', () => {
    const lookup = lookupIn({ A: 'shell', E: '' }, new Map([['A', 'dotenv'], ['B', 'dotenv']]));
    expect(lookup('A')).toBe('shell');
    expect(lookup('B')).toBe('dotenv');
    expect(lookup('E')).toBe('');
    expect(lookup('C')).toBeUndefined();
    expect(lookup('toString')).toBeUndefined();
  });
});

describe('loading compose YAML: anchors, aliases, merge keys', () => {
  it('merges `<<: *anchor` and lists of merges, the first merge and the explicit keys winning', async () => {
    const text = [
      'x-a: &a {restart: always, tty: true, environment: {A: "1"}}',
      'x-b: &b {restart: "no", stop_signal: SIGINT, logging: {driver: none}}',
      'services:',
      '  one:',
      '    <<: [*a, *b]',
      '    image: busybox',
      '  two:',
      '    <<: *b',
      '    restart: unless-stopped',
      '    image: busybox',
    ].join('\n');
    const doc = (await loadComposeYaml(text, 'compose.yaml')) as { services: Record<string, unknown> };
    expect(doc.services.one).toEqual({ restart: 'always', tty: true, environment: { A: '1' }, stop_signal: 'SIGINT', logging: { driver: 'none' }, image: 'busybox' });
    expect(doc.services.two).toEqual({ restart: 'unless-stopped', stop_signal: 'SIGINT', logging: { driver: 'none' }, image: 'busybox' });
  });

  it('reads YAML 1.2 core like docker compose: yes/on stay strings, no is a string, true is a boolean', async () => {
    const doc = (await loadComposeYaml('a: yes\nb: on\nc: no\nd: true\ne: 010\n', 'c.yml')) as Record<string, unknown>;
    expect(doc).toEqual({ a: 'yes', b: 'on', c: 'no', d: true, e: 10 });
  });

  it('lets honest reuse of an anchor through (300 services sharing one logging block)', async () => {
    const text = 'x-l: &l {driver: json-file, options: {max-size: 1m}}\nservices:\n' + Array.from({ length: 300 }, (_, i) => `  s${i}: {image: x, logging: *l}\n`).join('');
    const doc = (await loadComposeYaml(text, 'c.yml')) as { services: Record<string, { logging: unknown }> };
    expect(Object.keys(doc.services)).toHaveLength(300);
    expect(doc.services.s299?.logging).toEqual({ driver: 'json-file', options: { 'max-size': '1m' } });
  });

  it('refuses an alias bomb quickly instead of expanding it', async () => {
    const level = (name: string, of: string): string => `${name}: &${name} [${Array(9).fill(of).join(', ')}]`;
    const text = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]', level('b', '*a'), level('c', '*b'), level('d', '*c'), level('e', '*d'), level('f', '*e'), level('g', '*f')].join('\n');
    const started = Date.now();
    await expect(loadComposeYaml(text, 'bomb.yml')).rejects.toThrow(new RegExp(`bomb\\.yml: too many alias expansions \\(more than ${MAX_ALIAS_COUNT}\\)`));
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('refuses duplicate keys and broken YAML naming the file and the line', async () => {
    await expect(loadComposeYaml('services:\n  a: {image: x}\n  a: {image: y}\n', 'dup.yml')).rejects.toThrow(/^dup\.yml is not valid YAML \(line 3, column 3\): [Mm]ap keys must be unique/);
    await expect(loadComposeYaml('services:\n  a: [\n', 'broken.yml')).rejects.toThrow(/^broken\.yml is not valid YAML \(line 3, column 1\)/);
    await expect(loadComposeYaml('a: *nowhere\n', 'alias.yml')).rejects.toThrow(/^alias\.yml is not valid YAML.*nowhere/s);
  });
});
