import { describe, expect, it } from 'vitest';
import { countCpuList, parseCpuinfo, parseMemTotal } from '../../src/board/cpuinfo.js';

describe('parseCpuinfo', () => {
  const zeroW = 'processor\t: 0\nmodel name\t: ARMv6-compatible processor rev 7 (v6l)\nCPU architecture: 7\n\nHardware\t: BCM2835\nRevision\t: 9000c1\nModel\t\t: Raspberry Pi Zero W Rev 1.1\n';

  it('reads the fields board detection needs', () => {
    expect(parseCpuinfo(zeroW)).toEqual({
      processors: 1,
      modelName: 'ARMv6-compatible processor rev 7 (v6l)',
      cpuArchitecture: '7',
      hardware: 'BCM2835',
      revision: '9000c1',
      serial: undefined,
      model: 'Raspberry Pi Zero W Rev 1.1',
    });
  });

  it('counts processors and accepts keys with empty values', () => {
    const text = 'processor\t: 0\npower management:\n\nprocessor\t: 1\npower management:\n';
    expect(parseCpuinfo(text).processors).toBe(2);
  });

  it.each([
    ['empty', '', /is empty/],
    ['whitespace only', '  \n\n', /is empty/],
    ['binary garbage', '\x7fELF\x02\x01\x01\x00\x00\x00garbage', /not text/],
    ['cut mid-key', 'processor\t: 0\nmodel na', /line 2 is not "key : value".*truncated/],
    ['cut before any processor', 'proc', /not "key : value"/],
    ['no processor entry', 'Hardware\t: BCM2835\nRevision\t: 9000c1\n', /no processor entries/],
    ['invalid UTF-8 decoded', 'processor\t: 0\nmodel name\t: \ufffd\ufffd\n', /not text/],
  ])('rejects %s cpuinfo with a clear host error', (_name, text, message) => {
    expect(() => parseCpuinfo(text)).toThrow(message);
  });
});

describe('parseMemTotal', () => {
  it('converts kB to bytes', () => {
    expect(parseMemTotal('MemTotal:        439504 kB\nMemFree: 1 kB\n')).toBe(439504 * 1024);
  });
  it('rejects a meminfo without MemTotal', () => {
    expect(() => parseMemTotal('MemFree: 1 kB\n')).toThrow(/MemTotal/);
  });
});

describe('countCpuList', () => {
  it.each([
    ['0', 1],
    ['0-3', 4],
    ['0-1,4,6-7', 5],
    ['0-3\n', 4],
  ])('%j has %i cpus', (list, n) => expect(countCpuList(list)).toBe(n));
  it('returns undefined for nonsense', () => expect(countCpuList('x')).toBeUndefined());
});
