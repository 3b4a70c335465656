import { afterEach, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/klaviyo/rate-limiter.js';

// The rate limiter's shared mode needs a live Redis (REDIS_URL, default 127.0.0.1:6379); its other cases are unit
// tests on fake timers (test/unit/klaviyo/rate-limiter.test.ts).

const KEY = 'POST /api/event-bulk-create-jobs';

let limiters: RateLimiter[] = [];
afterEach(async () => {
  await Promise.all(limiters.map((l) => l.close()));
  limiters = [];
});

function limiter(options: ConstructorParameters<typeof RateLimiter>[0]): RateLimiter {
  const l = new RateLimiter(options);
  limiters.push(l);
  return l;
}

describe('RateLimiter through Redis', () => {
  it('shares one allowance between processes through Redis', async () => {
    const redis = { url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: `klaviyo-etl-test-${process.pid}-${Date.now()}` };
    const tiers = { [KEY]: { burst: 100, steady: 4 } };
    const a = limiter({ tiers, redis });
    const b = limiter({ tiers, redis });
    let started = 0;
    for (let i = 0; i < 3; i++) {
      void a.schedule(KEY, async () => started++).catch(() => undefined);
      void b.schedule(KEY, async () => started++).catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 1500));
    expect(started).toBe(4);
  });
});
