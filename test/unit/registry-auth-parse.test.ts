import { describe, expect, it } from 'vitest';
import { parseChallenges, tokenRefreshAt } from '../../src/image/registry/auth.js';
import { backoffDelay, parseContentRange, retryDelay } from '../../src/image/registry/client.js';
import { isLoopbackHost, parseRetryAfter, registryBaseUrl } from '../../src/image/registry/http.js';
import { BerthError } from '../../src/errors.js';

describe('parseChallenges', () => {
  it('reads a Bearer challenge with realm, service, scope (commas inside quotes) and error', () => {
    const h = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push",error="insufficient_scope"';
    expect(parseChallenges(h)).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:a/b:pull,push', error: 'insufficient_scope' } },
    ]);
  });

  it('reads Basic, lower-cases scheme and parameter names, keeps values as sent', () => {
    expect(parseChallenges('BASIC Realm="Berth Test"')).toEqual([{ scheme: 'basic', params: { realm: 'Berth Test' } }]);
  });

  it('reads several challenges in one header and across headers', () => {
    expect(parseChallenges('Basic realm="a", Bearer realm="https://t/token", service=reg')).toEqual([
      { scheme: 'basic', params: { realm: 'a' } },
      { scheme: 'bearer', params: { realm: 'https://t/token', service: 'reg' } },
    ]);
    expect(parseChallenges(['Basic realm="a"', 'Bearer realm="b"']).map((c) => c.scheme)).toEqual(['basic', 'bearer']);
  });

  it('unescapes quoted-pairs, tolerates spaces around = and skips token68 credentials', () => {
    expect(parseChallenges('Bearer realm = "say \\"hi\\"", service=x')).toEqual([{ scheme: 'bearer', params: { realm: 'say "hi"', service: 'x' } }]);
    expect(parseChallenges('Negotiate YWJjZA==, Basic realm="r"')).toEqual([
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'r' } },
    ]);
  });

  it('returns nothing (or what it read) for absent and broken headers', () => {
    expect(parseChallenges(undefined)).toEqual([]);
    expect(parseChallenges('')).toEqual([]);
    expect(parseChallenges('"quoted"')).toEqual([]);
    expect(parseChallenges('Bearer realm="unterminated')).toEqual([{ scheme: 'bearer', params: {} }]);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2024-05-01T12:00:00Z');
  it('reads delta-seconds', () => {
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(['7'], now)).toBe(7000);
  });
  it('reads an HTTP-date relative to now, never negative', () => {
    expect(parseRetryAfter('Wed, 01 May 2024 12:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Wed, 01 May 2024 11:00:00 GMT', now)).toBe(0);
  });
  it('ignores what it cannot read', () => {
    for (const v of [undefined, '', '-5', '1.5', 'soon', '10 s']) expect(parseRetryAfter(v, now)).toBeUndefined();
  });
});

describe('backoff', () => {
  const retry = { attempts: 5, baseDelayMs: 500, maxDelayMs: 30_000 };
  it('is full jitter under an exponential ceiling', () => {
    expect(backoffDelay(1, 500, 30_000, () => 0)).toBe(0);
    expect(backoffDelay(1, 500, 30_000, () => 0.999999)).toBe(499);
    expect(backoffDelay(3, 500, 30_000, () => 0.999999)).toBe(1999);
    expect(backoffDelay(3, 500, 30_000, () => 0.5)).toBe(1000);
  });
  it('never exceeds the cap, even for large attempt numbers', () => {
    for (let attempt = 1; attempt <= 80; attempt++) {
      for (let i = 0; i < 20; i++) {
        const d = backoffDelay(attempt, 500, 30_000);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(30_000);
        expect(d).toBeLessThan(500 * 2 ** (attempt - 1));
      }
    }
  });
  it('prefers Retry-After, capped at the max delay', () => {
    expect(retryDelay(1, 2_000, retry, () => 0)).toBe(2_000);
    expect(retryDelay(1, 0, retry, () => 0.9)).toBe(0);
    expect(retryDelay(2, 3_600_000, retry)).toBe(30_000);
    expect(retryDelay(2, undefined, retry, () => 0.5)).toBe(500);
  });
});

describe('token lifetime', () => {
  const t0 = 1_700_000_000_000;
  it('refreshes shortly before expiry: 10 % of the lifetime, at most 30 s', () => {
    expect(tokenRefreshAt(t0, 300)).toBe(t0 + 270_000);
    expect(tokenRefreshAt(t0, 60)).toBe(t0 + 54_000);
    expect(tokenRefreshAt(t0, 3600)).toBe(t0 + 3_570_000);
  });
  it('counts from issued_at only when it is plausible', () => {
    expect(tokenRefreshAt(t0, 300, t0 - 10_000)).toBe(t0 + 260_000);
    expect(tokenRefreshAt(t0, 300, t0 + 3_600_000)).toBe(t0 + 270_000); // server clock ahead
    expect(tokenRefreshAt(t0, 300, t0 - 3_600_000)).toBe(t0 + 270_000); // server clock behind
  });
});

describe('Content-Range', () => {
  it('reads ranges, unknown totals and the 416 form', () => {
    expect(parseContentRange('bytes 10-99/100')).toEqual({ start: 10, total: 100 });
    expect(parseContentRange('bytes 10-99/*')).toEqual({ start: 10, total: undefined });
    expect(parseContentRange('bytes */100')).toEqual({ start: undefined, total: 100 });
    expect(parseContentRange(undefined)).toBeUndefined();
    expect(parseContentRange('items 1-2/3')).toBeUndefined();
  });
});

describe('registry scheme', () => {
  it('speaks plain HTTP to loopback only (Docker rule)', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '[::1]', '::1']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['128.0.0.1', 'example.com', 'localhost.example.com', '[::2]', '10.0.0.1']) expect(isLoopbackHost(h)).toBe(false);
    expect(registryBaseUrl('127.0.0.1:5000').href).toBe('http://127.0.0.1:5000/');
    expect(registryBaseUrl('localhost').href).toBe('http://localhost/');
    expect(registryBaseUrl('[::1]:5000').href).toBe('http://[::1]:5000/');
    expect(registryBaseUrl('registry-1.docker.io').href).toBe('https://registry-1.docker.io/');
    expect(registryBaseUrl('Reg.Example.com:8443').href).toBe('https://reg.example.com:8443/');
  });
  it('refuses hosts with paths, users or bad ports', () => {
    for (const h of ['', 'a/b', 'user@host', 'host:99999', 'http://host', 'host:']) {
      expect(() => registryBaseUrl(h)).toThrow(BerthError);
    }
  });
});
