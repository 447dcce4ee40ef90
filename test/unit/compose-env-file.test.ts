import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseEnvFile, projectEnvironment, readEnvFile } from '../../src/compose/env-file.js';
import { lookupIn } from '../../src/compose/interpolate.js';
import { BerthError } from '../../src/errors.js';

const parse = (text: string, environment: Record<string, string> = {}): Record<string, string> =>
  Object.fromEntries(parseEnvFile(text, { source: '.env', lookup: lookupIn(environment) }));

describe('env files as docker compose v2 reads them', () => {
  it('skips blank lines and comments, drops `export `, keeps file order', () => {
    const vars = parseEnvFile('# a comment\n\n   # indented comment\nB=2\nexport A=1\n  C=3\n', { source: '.env' });
    expect([...vars]).toEqual([['B', '2'], ['A', '1'], ['C', '3']]);
  });

  it('unquoted: to the end of the line, a # after whitespace starts a comment, a # inside does not', () => {
    expect(parse('VAR=VAL # comment\nHASH=VAL# not a comment\nURL=http://h/#frag\nSPACED = a b  \nEMPTY=\nTAB=some\\tvalue\n')).toEqual({
      VAR: 'VAL', HASH: 'VAL# not a comment', URL: 'http://h/#frag', SPACED: 'a b', EMPTY: '', TAB: 'some\\tvalue',
    });
  });

  it('single quotes are literal apart from \\\'', () => {
    expect(parse("A='$OTHER'\nB='${OTHER}'\nC='Let\\'s go!'\nD='some\\tvalue'\nE='x # not a comment' # comment\n", { OTHER: 'o' })).toEqual({
      A: '$OTHER', B: '${OTHER}', C: "Let's go!", D: 'some\\tvalue', E: 'x # not a comment',
    });
  });

  it('double quotes take \\n \\r \\t \\\\ \\" and are interpolated', () => {
    expect(parse('A="some\\tvalue"\nB="{\\"hello\\": \\"json\\"}"\nC="line1\\nline2"\nD="back\\\\slash"\nE="VAL # not a comment" # comment\nF="$OTHER-${OTHER:-x}"\n', { OTHER: 'o' })).toEqual({
      A: 'some\tvalue', B: '{"hello": "json"}', C: 'line1\nline2', D: 'back\\slash', E: 'VAL # not a comment', F: 'o-o',
    });
  });

  it('double-quoted values may span lines, and line numbers in later errors stay right', () => {
    const text = 'CERT="-----BEGIN-----\nabc\n-----END-----"\nNEXT=1\nBROKEN LINE\n';
    expect(parse('CERT="-----BEGIN-----\nabc\n-----END-----"\nNEXT=1\n')).toEqual({ CERT: '-----BEGIN-----\nabc\n-----END-----', NEXT: '1' });
    expect(() => parse(text)).toThrow(/^\.env:5: variable name "BROKEN LINE" cannot contain a space/);
  });

  it('interpolates with earlier keys of the same file, the environment winning over them', () => {
    expect(parse('BASE=/srv\nDATA=${BASE}/data\nLOG=$BASE/log\nTZ=${TZ:-Etc/UTC}\n')).toEqual({ BASE: '/srv', DATA: '/srv/data', LOG: '/srv/log', TZ: 'Etc/UTC' });
    expect(parse('BASE=/srv\nDATA=${BASE}/data\n', { BASE: '/mnt' })).toEqual({ BASE: '/srv', DATA: '/mnt/data' });
    expect(parse('A=${LATER:-none}\nLATER=1\n')).toEqual({ A: 'none', LATER: '1' });
  });

  it('a KEY without = is taken from the environment, or left out', () => {
    expect(parse('HOME\nexport USER\nMISSING\n', { HOME: '/root', USER: 'pi' })).toEqual({ HOME: '/root', USER: 'pi' });
  });

  it('takes the YAML-like KEY: VALUE, CRLF line ends, a BOM, and a repeated key keeping the last value', () => {
    expect(parse('\uFEFFA: 1\r\nB=2\r\nB="3"\r\n')).toEqual({ A: '1', B: '3' });
  });

  it('a required variable without a value fails naming the file and line', () => {
    expect(() => parse('OK=1\nTZ=${TZ:?set the time zone}\n')).toThrow('.env:2: required variable TZ is missing a value: set the time zone');
  });

  it.each([
    ['A="unterminated\n', /^\.env:1: unterminated " quoted value/],
    ["A='x' trailing\n", /^\.env:1: unexpected "trailing" after the closing '/],
    ['9LIVES=1\n', /^\.env:1: variable name 9LIVES starts with a digit/],
    ['A B=1\n', /^\.env:1: variable name "A B" cannot contain a space/],
    ['A!=1\n', /^\.env:1: unexpected character "!" after the variable name A/],
    ['=value\n', /^\.env:1: expected KEY=VALUE, found "=value"/],
  ])('refuses %j as invalid input', (text, message) => {
    let caught: unknown;
    try {
      parse(text);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(BerthError);
    expect((caught as BerthError).category).toBe('invalid');
    expect((caught as BerthError).message).toMatch(message);
  });
});

describe('reading an env file from disk', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it('reads it, names it in errors, and a missing file is notFound', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-env-'));
    dirs.push(dir);
    const file = path.join(dir, 'app.env');
    fs.writeFileSync(file, 'A=1\nB=${A}2\n');
    expect(Object.fromEntries(readEnvFile(file, {}))).toEqual({ A: '1', B: '12' });
    fs.writeFileSync(file, 'A=1\nB="open\n');
    expect(() => readEnvFile(file, {})).toThrow(`${file}:2: unterminated " quoted value`);
    const missing = (() => {
      try {
        readEnvFile(path.join(dir, 'nope.env'), {});
      } catch (e) {
        return e as BerthError;
      }
    })();
    expect(missing?.category).toBe('notFound');
    expect(missing?.message).toMatch(/cannot read env file .*nope\.env: ENOENT/);
  });

  it('projectEnvironment: the environment first, then the .env beside the compose file; none is fine', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-proj-'));
    dirs.push(dir);
    expect(projectEnvironment(dir, { A: 'env' }).lookup('A')).toBe('env');
    fs.writeFileSync(path.join(dir, '.env'), 'A=dotenv\nB=dotenv-b\nC=${A}-c\nHOME\n');
    const { lookup, dotenv } = projectEnvironment(dir, { A: 'env', HOME: '/root' });
    expect([lookup('A'), lookup('B'), lookup('C'), lookup('HOME'), lookup('NONE')]).toEqual(['env', 'dotenv-b', 'env-c', '/root', undefined]);
    expect(Object.fromEntries(dotenv)).toEqual({ A: 'dotenv', B: 'dotenv-b', C: 'env-c', HOME: '/root' });
  });
});
