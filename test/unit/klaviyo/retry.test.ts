import { describe, expect, it } from 'vitest';
import { parseRetryAfter, retryDelay } from '../../../src/klaviyo/retry.js';

const policy = { baseMs: 100, capMs: 1000, random: () => 0.5 };
const maxRandom = { ...policy, random: () => 0.999999 };

describe('retryDelay', () => {
  it.each([
    // status / errorCode, attempt, expected (random = 0.5)
    [{ status: 500, idempotent: true }, 0, 50],
    [{ status: 502, idempotent: true }, 1, 100],
    [{ status: 503 }, 2, 200],
    [{ status: 504 }, 3, 400],
    [{ status: 524 }, 4, 500], // capped at 1000 * 0.5
    [{ status: 503 }, 10, 500],
    [{ errorCode: 'ECONNRESET' }, 0, 50],
    [{ errorCode: 'ECONNREFUSED' }, 1, 100],
    [{ errorCode: 'ETIMEDOUT' }, 0, 50],
    [{ errorCode: 'UND_ERR_SOCKET' }, 0, 50],
    [{ errorCode: 'TimeoutError' }, 0, 50],
  ])('retries %o at attempt %i after %i ms', (input, attempt, expected) => {
    expect(retryDelay({ attempt, ...input }, policy)).toBe(expected);
  });

  it.each([400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 200, 202, 301])('never retries status %i', (status) => {
    expect(retryDelay({ attempt: 0, status }, policy)).toBeUndefined();
  });

  it('does not retry unknown network errors', () => {
    expect(retryDelay({ attempt: 0, errorCode: 'ERR_INVALID_ARG_TYPE' }, policy)).toBeUndefined();
    expect(retryDelay({ attempt: 0 }, policy)).toBeUndefined();
  });

  it('waits at least Retry-After on 429, plus bounded jitter, whatever the attempt', () => {
    expect(retryDelay({ attempt: 0, status: 429, retryAfter: '3' }, { ...policy, random: () => 0 })).toBe(3000);
    const jittered = retryDelay({ attempt: 5, status: 429, retryAfter: 2 }, maxRandom)!;
    expect(jittered).toBeGreaterThanOrEqual(2000);
    expect(jittered).toBeLessThanOrEqual(2250);
  });

  it.each([520, 521, 522, 523, 529, 507])('retries any transient 5xx (%i, e.g. from the CDN in front of Klaviyo) on an idempotent request', (status) => {
    expect(retryDelay({ attempt: 0, status, idempotent: true }, policy)).toBe(50);
  });

  it.each([500, 502, 520, 521, 522, 523, 529, 507])('does not retry %i on a write that is not idempotent (Klaviyo may have applied it)', (status) => {
    expect(retryDelay({ attempt: 0, status }, policy)).toBeUndefined();
    expect(retryDelay({ attempt: 0, status, idempotent: false }, policy)).toBeUndefined();
  });

  it.each([503, 504, 524])("retries %i on any request, as Klaviyo's own SDKs do (retryCodes 429, 503, 504, 524)", (status) => {
    expect(retryDelay({ attempt: 0, status, idempotent: false }, policy)).toBe(50);
    expect(retryDelay({ attempt: 0, status, idempotent: true }, policy)).toBe(50);
  });

  it.each([501, 505])('does not retry %i (the request can never succeed)', (status) => {
    expect(retryDelay({ attempt: 0, status }, policy)).toBeUndefined();
    expect(retryDelay({ attempt: 0, status, idempotent: true }, policy)).toBeUndefined();
  });

  it('waits at least Retry-After on a 5xx that sends one (503 maintenance)', () => {
    expect(retryDelay({ attempt: 0, status: 503, retryAfter: '4' }, policy)).toBeGreaterThanOrEqual(4000);
    expect(retryDelay({ attempt: 0, status: 503, retryAfter: '4' }, maxRandom)).toBeLessThanOrEqual(4250);
    // a Retry-After shorter than the backoff does not shorten it
    expect(retryDelay({ attempt: 3, status: 503, retryAfter: '0' }, policy)).toBe(400);
  });

  it('waits 1 s on a 429 without Retry-After', () => {
    expect(retryDelay({ attempt: 0, status: 429 }, { ...policy, random: () => 0 })).toBe(1000);
  });

  it('uses full jitter: zero at random() = 0, the capped ceiling at random() → 1', () => {
    expect(retryDelay({ attempt: 3, status: 503 }, { ...policy, random: () => 0 })).toBe(0);
    expect(retryDelay({ attempt: 3, status: 503 }, maxRandom)).toBe(799);
    expect(retryDelay({ attempt: 30, status: 503 }, maxRandom)).toBe(999);
  });

  it('counts an HTTP-date Retry-After from the given `now`', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const zero = { ...policy, random: () => 0 };
    expect(retryDelay({ attempt: 0, status: 429, retryAfter: 'Thu, 01 Jan 2026 00:00:04 GMT', now }, zero)).toBe(4000);
    expect(retryDelay({ attempt: 0, status: 503, retryAfter: 'Thu, 01 Jan 2026 00:00:04 GMT', now }, zero)).toBe(4000);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('5')).toBe(5000);
    expect(parseRetryAfter(1.5)).toBe(1500);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:04 GMT', now)).toBe(4000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});
