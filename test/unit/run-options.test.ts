import { describe, expect, it } from 'vitest';
import { BerthError, type ErrorCategory } from '../../src/errors.js';
import {
  defaultRunOptions, parseBytes, parseCpus, parseDevice, parseEnv, parseLabel, parseMemorySwap, parseRestart, parseSignal, parseTmpfs,
  parseUlimit, parseVolume, validateContainerName, validateRunOptions, volumeDataPath,
} from '../../src/runtime/options.js';

function fails(fn: () => unknown, category: ErrorCategory, message?: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a BerthError').toBeInstanceOf(BerthError);
  expect((err as BerthError).category).toBe(category);
  if (message) expect((err as BerthError).message).toMatch(message);
}

describe('parseBytes (docker RAMInBytes)', () => {
  it.each([
    ['100', 100], ['512k', 512 * 1024], ['512K', 512 * 1024], ['64m', 64 * 1024 ** 2], ['64M', 64 * 1024 ** 2], ['1g', 1024 ** 3], ['1G', 1024 ** 3],
    ['64mb', 64 * 1024 ** 2], ['64MiB', 64 * 1024 ** 2], ['100b', 100], ['1.5g', 1610612736], ['0.5k', 512], ['1 g', 1024 ** 3], ['2t', 2 * 1024 ** 4], ['0', 0],
  ])('%s → %i', (text, bytes) => {
    expect(parseBytes(text)).toBe(bytes);
  });
  it.each(['12q', '-1', '-5m', '', 'm', '1.2.3m', 'abc', '1e3', '64 mb extra', '1gg', '99999999999p'])('rejects %j', (text) => {
    fails(() => parseBytes(text, '--memory'), 'invalid', /--memory/);
  });
  it('--memory-swap takes -1 for unlimited', () => {
    expect(parseMemorySwap('-1')).toBe(-1);
    expect(parseMemorySwap('1g')).toBe(1024 ** 3);
    fails(() => parseMemorySwap('-2'), 'invalid');
  });
});

describe('parseCpus', () => {
  it('accepts positive decimals from 0.01', () => {
    expect(parseCpus('0.5')).toBe(0.5);
    expect(parseCpus('2')).toBe(2);
    expect(parseCpus('.25')).toBe(0.25);
    expect(parseCpus('0.01')).toBe(0.01);
  });
  it.each(['0', '-1', '0.001', 'abc', '1e2', '', 'NaN', 'Infinity'])('rejects %j', (t) => fails(() => parseCpus(t), 'invalid', /--cpus/));
});

describe('parseRestart', () => {
  it('parses docker policies', () => {
    expect(parseRestart('no')).toEqual({ name: 'no' });
    expect(parseRestart('')).toEqual({ name: 'no' });
    expect(parseRestart('always')).toEqual({ name: 'always' });
    expect(parseRestart('unless-stopped')).toEqual({ name: 'unless-stopped' });
    expect(parseRestart('on-failure')).toEqual({ name: 'on-failure' });
    expect(parseRestart('on-failure:5')).toEqual({ name: 'on-failure', maxRetries: 5 });
    expect(parseRestart('on-failure:0')).toEqual({ name: 'on-failure' });
  });
  it('rejects bad input', () => {
    fails(() => parseRestart('sometimes'), 'invalid', /unknown policy/);
    fails(() => parseRestart('always:3'), 'invalid', /only allowed with on-failure/);
    fails(() => parseRestart('on-failure:x'), 'invalid');
    fails(() => parseRestart('on-failure:-1'), 'invalid');
    fails(() => parseRestart('on-failure:1:2'), 'usage');
  });
});

describe('parseVolume', () => {
  it('absolute source → bind, name → volume', () => {
    expect(parseVolume('/srv/data:/data')).toEqual({ source: '/srv/data', target: '/data', readOnly: false, kind: 'bind' });
    expect(parseVolume('/srv/data:/data:ro')).toEqual({ source: '/srv/data', target: '/data', readOnly: true, kind: 'bind' });
    expect(parseVolume('/srv//data/:/data/:rw')).toEqual({ source: '/srv/data/', target: '/data', readOnly: false, kind: 'bind' });
    expect(parseVolume('pgdata:/var/lib/postgresql:ro,z')).toEqual({ source: 'pgdata', target: '/var/lib/postgresql', readOnly: true, kind: 'volume' });
    expect(volumeDataPath('/var/lib/berth', 'pgdata')).toBe('/var/lib/berth/volumes/pgdata/_data');
  });
  it('rejects bad input', () => {
    fails(() => parseVolume('/data'), 'usage');
    fails(() => parseVolume('/a:/b:ro:x'), 'usage');
    fails(() => parseVolume(':/b'), 'usage');
    fails(() => parseVolume('/a:b'), 'invalid', /absolute/);
    fails(() => parseVolume('/a:/b/../../etc'), 'invalid', /\.\./);
    fails(() => parseVolume('/a:/'), 'invalid', /root/);
    fails(() => parseVolume('/a/../etc:/b'), 'invalid', /\.\./);
    fails(() => parseVolume('/a:/b:rx'), 'invalid', /unknown option/);
    fails(() => parseVolume('./rel:/b'), 'invalid', /absolute/);
    fails(() => parseVolume('x:/b'), 'invalid', /volume name/);
    fails(() => parseVolume('-bad:/b'), 'invalid', /volume name/);
    fails(() => volumeDataPath('/r', '../etc'), 'invalid');
  });
});

describe('parseDevice', () => {
  it('parses the three forms', () => {
    expect(parseDevice('/dev/i2c-1')).toEqual({ hostPath: '/dev/i2c-1', containerPath: '/dev/i2c-1', permissions: 'rwm' });
    expect(parseDevice('/dev/i2c-1:/dev/i2c-0')).toEqual({ hostPath: '/dev/i2c-1', containerPath: '/dev/i2c-0', permissions: 'rwm' });
    expect(parseDevice('/dev/i2c-1:r')).toEqual({ hostPath: '/dev/i2c-1', containerPath: '/dev/i2c-1', permissions: 'r' });
    expect(parseDevice('/dev/i2c-1:/dev/i2c:wr')).toEqual({ hostPath: '/dev/i2c-1', containerPath: '/dev/i2c', permissions: 'rw' });
  });
  it('rejects bad input', () => {
    fails(() => parseDevice('/dev/a:/dev/b:rwx'), 'invalid', /permissions/);
    fails(() => parseDevice('/dev/a:/dev/b:rr'), 'invalid', /permissions/);
    fails(() => parseDevice('dev/a'), 'invalid', /absolute/);
    fails(() => parseDevice('/dev/a:dev/b'), 'invalid', /absolute/);
    fails(() => parseDevice('/dev/a:/dev/b:r:w'), 'usage');
    fails(() => parseDevice('/dev/../etc/shadow'), 'invalid', /\.\./);
    fails(() => parseDevice(''), 'usage');
  });
});

describe('other parsers', () => {
  it('parseEnv', () => {
    expect(parseEnv('A=1')).toBe('A=1');
    expect(parseEnv('A=')).toBe('A=');
    expect(parseEnv('A=b=c')).toBe('A=b=c');
    expect(parseEnv('HOME', { HOME: '/root' })).toBe('HOME=/root');
    expect(parseEnv('UNSET', {})).toBeUndefined();
    fails(() => parseEnv('A'), 'usage');
    fails(() => parseEnv('=x'), 'invalid');
    fails(() => parseEnv('A B=x'), 'invalid');
  });
  it('parseTmpfs', () => {
    expect(parseTmpfs('/run')).toEqual({ target: '/run', options: [] });
    expect(parseTmpfs('/run:size=64m,mode=1777,exec')).toEqual({ target: '/run', options: ['size=64m', 'mode=1777', 'exec'] });
    fails(() => parseTmpfs('/run:size=12q'), 'invalid');
    fails(() => parseTmpfs('/run:mode=999'), 'invalid');
    fails(() => parseTmpfs('run'), 'invalid');
    fails(() => parseTmpfs('/run:a b'), 'invalid');
    expect(parseTmpfs('/cache:size=1.5m,uid=1000,gid=1000,noexec,notmpcopyup')).toEqual({ target: '/cache', options: ['size=1572864', 'uid=1000', 'gid=1000', 'noexec'] });
    fails(() => parseTmpfs('/run:tmpcopyup'), 'invalid', /invalid tmpfs option "tmpcopyup" \(copying the image's files up is not supported\)/);
    fails(() => parseTmpfs('/run:bogus'), 'invalid', /--tmpfs \/run:bogus: invalid tmpfs option "bogus"/);
    fails(() => parseTmpfs('/run:exec=1'), 'invalid');
  });
  it('parseUlimit, parseSignal, parseLabel', () => {
    expect(parseUlimit('nofile=1024:2048')).toEqual({ type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 });
    expect(parseUlimit('nproc=100')).toEqual({ type: 'RLIMIT_NPROC', soft: 100, hard: 100 });
    fails(() => parseUlimit('nofile=2048:1024'), 'invalid', /soft/);
    fails(() => parseUlimit('bogus=1'), 'invalid');
    fails(() => parseUlimit('nofile=-1'), 'usage');
    expect(parseSignal('TERM')).toBe('SIGTERM');
    expect(parseSignal('sigkill')).toBe('SIGKILL');
    expect(parseSignal('15')).toBe('SIGTERM');
    fails(() => parseSignal('SIGNOPE'), 'invalid');
    expect(parseLabel('a=b=c')).toEqual(['a', 'b=c']);
    expect(parseLabel('flag')).toEqual(['flag', '']);
  });
  it('container names', () => {
    for (const ok of ['a', 'web-1', 'my_app.v2', 'A'.repeat(128)]) expect(validateContainerName(ok)).toBe(ok);
    for (const bad of ['', '-x', '_x', '.x', 'a b', 'a/b', 'A'.repeat(129), 'ü']) fails(() => validateContainerName(bad), 'invalid', /container name/);
  });
  it('validateRunOptions: docker cross-field rules', () => {
    const o = defaultRunOptions('web');
    expect(validateRunOptions({ ...o, memory: 64 * 1024 ** 2, memorySwap: -1 })).toBeTruthy();
    fails(() => validateRunOptions({ ...o, memory: 1024 ** 2 }), 'invalid', /6 MiB/);
    fails(() => validateRunOptions({ ...o, memorySwap: 128 * 1024 ** 2 }), 'usage', /needs --memory/);
    fails(() => validateRunOptions({ ...o, memory: 64 * 1024 ** 2, memorySwap: 32 * 1024 ** 2 }), 'invalid');
    fails(() => validateRunOptions({ ...o, memory: 64 * 1024 ** 2, memoryReservation: 128 * 1024 ** 2 }), 'invalid');
    fails(() => validateRunOptions({ ...o, cpuShares: 1 }), 'invalid');
    fails(() => validateRunOptions({ ...o, hostname: 'bad_host!' }), 'invalid');
    fails(() => validateRunOptions({ ...o, volumes: [parseVolume('/a:/x')], tmpfs: [parseTmpfs('/x')] }), 'invalid', /duplicate/);
  });
});
