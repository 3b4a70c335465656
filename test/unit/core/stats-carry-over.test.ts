import { describe, expect, it } from 'vitest';
import { carryOver, CountUpTo, newStats } from '../../../src/core/stats.js';

describe('carryOver (the counters of a resumed run)', () => {
  it('adds the earlier attempts’ requests, retries, jobs and items; takes skipped as stored; leaves read/loaded/rejected', () => {
    const previous = newStats();
    previous.rows = { read: 500, loaded: 480, rejected: 10, skipped: 7 };
    previous.items.events = 900;
    previous.requests = { total: 40, throttled: 3, retried: 4, failed: 1, byEndpoint: { 'POST /api/event-bulk-create-jobs': 40 }, throttledByEndpoint: { 'POST /api/event-bulk-create-jobs': 3 } };
    previous.jobs.submitted = 2;
    const stats = newStats();
    stats.requests.total = 5;
    stats.requests.byEndpoint['POST /api/event-bulk-create-jobs'] = 5;
    carryOver(stats, previous);
    expect(stats.rows).toEqual({ read: 0, loaded: 0, rejected: 0, skipped: 7 });
    expect(stats.items.events).toBe(900);
    expect(stats.requests).toEqual({ total: 45, throttled: 3, retried: 4, failed: 1, byEndpoint: { 'POST /api/event-bulk-create-jobs': 45 }, throttledByEndpoint: { 'POST /api/event-bulk-create-jobs': 3 } });
    expect(stats.jobs.submitted).toBe(2);
  });

  it('reads counters of checkpoints written before duplicates / forgotten existed as zero', () => {
    const previous = newStats() as unknown as { items: Record<string, number>; jobs: Record<string, number> };
    delete previous.items.duplicates;
    delete previous.jobs.forgotten;
    const stats = newStats();
    carryOver(stats, previous as never);
    expect(stats.items.duplicates).toBe(0);
    expect(stats.jobs.forgotten).toBe(0);
  });
});

describe('CountUpTo', () => {
  it('counts the events at or before a record, starting from what the checkpoint had settled', () => {
    const c = new CountUpTo(3);
    c.add(10);
    c.add(12, 2);
    c.add(20);
    expect(c.upTo(9)).toBe(3);
    expect(c.upTo(12)).toBe(6);
    expect(c.upTo(19)).toBe(6);
    expect(c.upTo(25)).toBe(7);
  });

  it('keeps an exact count while folding the events behind the position', () => {
    const c = new CountUpTo();
    for (let seq = 0; seq < 100_000; seq++) {
      c.add(seq);
      if (seq % 100 === 0) expect(c.upTo(seq - 50)).toBe(Math.max(0, seq - 49));
    }
    expect(c.upTo(99_999)).toBe(100_000);
  });
});
