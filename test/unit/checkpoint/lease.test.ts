import { afterEach, describe, expect, it, vi } from 'vitest';
import { isStale, keepLeaseAlive, newLockInfo, renewedLockInfo } from '../../../src/checkpoint/lock.js';
import type { EtlError } from '../../../src/core/errors.js';

const at = (iso: string) => ({ now: () => new Date(iso) });

describe('lock lease (isStale)', () => {
  const pod = newLockInfo({ pid: 1, hostname: 'pod-a', now: () => new Date('2026-12-01T02:00:00Z') }, 60_000);

  it('a lock from another host is held until its lease runs out, then free', () => {
    expect(pod.expiresAt).toBe('2026-12-01T02:01:00.000Z');
    expect(isStale(pod, { hostname: 'pod-b', ...at('2026-12-01T02:00:59Z') })).toBe(false);
    expect(isStale(pod, { hostname: 'pod-b', ...at('2026-12-01T02:01:01Z') })).toBe(true);
  });

  it('renewing moves the end of the lease from the renewal time', () => {
    const renewed = renewedLockInfo(pod, at('2026-12-01T02:00:50Z'));
    expect(renewed.token).toBe(pod.token);
    expect(renewed.expiresAt).toBe('2026-12-01T02:01:50.000Z');
    expect(isStale(renewed, { hostname: 'pod-b', ...at('2026-12-01T02:01:10Z') })).toBe(false);
  });

  it('a live process on this host is never taken over, even past its lease; a dead one at once', () => {
    const env = { hostname: 'pod-a', pid: 2, ...at('2026-12-01T03:00:00Z') };
    expect(isStale(pod, { ...env, isAlive: () => true })).toBe(false);
    expect(isStale(pod, { ...env, isAlive: () => false })).toBe(true);
  });

  it('a lock written before leases existed (no expiresAt) never expires on another host', () => {
    const { ttlMs: _t, expiresAt: _e, ...old } = pod;
    expect(isStale(old, { hostname: 'pod-b', ...at('2027-01-01T00:00:00Z') })).toBe(false);
  });
});

describe('keepLeaseAlive', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('renews every third of the TTL and reports LOCK_LOST once when the lock is no longer ours', async () => {
    vi.useFakeTimers();
    const info = newLockInfo({}, 3_000);
    const answers = [true, true, false, false];
    let calls = 0;
    const lease = keepLeaseAlive(info, '/state/checkpoint.lock', async () => answers[calls++]!);
    const lost: EtlError[] = [];
    lease.onLost((e) => lost.push(e));
    await vi.advanceTimersByTimeAsync(2_999);
    expect(calls).toBe(2);
    expect(lost).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toBe(3);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.code).toBe('LOCK_LOST');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toBe(3); // stopped after losing it
    const late: EtlError[] = [];
    lease.onLost((e) => late.push(e));
    expect(late).toHaveLength(1);
  });

  it('a failed renewal (store unreachable) is retried at the next tick; stop() ends renewals', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const lease = keepLeaseAlive(newLockInfo({}, 3_000), 'x', async () => {
      calls++;
      if (calls === 1) throw new Error('ECONNRESET');
      return true;
    });
    const lost: EtlError[] = [];
    lease.onLost((e) => lost.push(e));
    await vi.advanceTimersByTimeAsync(2_000);
    expect(calls).toBe(2);
    lease.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toBe(2);
    expect(lost).toEqual([]);
  });
});
