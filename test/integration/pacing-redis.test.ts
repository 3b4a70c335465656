import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator } from '../../src/emulator/index.js';
import { emulatorState, makeOrders, ordersPipeline, start } from '../helpers/resume.js';

/**
 * Two processes loading into one Klaviyo account share its rate limits through Redis (`--redis-url`): together they
 * stay inside the endpoint's tier and Klaviyo (the emulator) answers no 429. The same two runs without Redis each
 * use the whole tier and get throttled — which shows the first assertion can fail.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY = 'pk_pacing_redis_shared_000000000000';
// the emulator's limits × 0.5: the bulk events endpoint (tier M, 10/s 150/min) allows 5 requests a second
const FACTOR = 0.5;
const BURST = 5;
const STEADY = 75;

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-pacing-redis-'));
  for (const name of ['a', 'b']) {
    await makeOrders(path.join(tmp, `orders-${name}.csv`), { rows: 500, seed: name === 'a' ? 1 : 2, badAt: [] });
    await writeFile(
      path.join(tmp, `orders-${name}.yaml`),
      ordersPipeline({ name: `redis-${name}`, path: `orders-${name}.csv`, eventsBatch: 50, burst: BURST, steady: STEADY, metric: `Placed Order ${name}` }),
    );
  }
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function runBoth(redis: boolean): Promise<{ codes: number[]; state: Record<string, unknown> }> {
  const emulator = await startEmulator({ port: 0, limits: FACTOR });
  try {
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };
    const extra = redis ? ['--redis-url', REDIS_URL] : [];
    const runs = ['a', 'b'].map((name) =>
      start(['run', path.join(tmp, `orders-${name}.yaml`), '--state-dir', path.join(tmp, `state-${redis}`), ...extra], env),
    );
    const exits = await Promise.all(runs.map((r) => r.exited));
    return { codes: exits.map((e) => e.code), state: await emulatorState(emulator.url, KEY) };
  } finally {
    await emulator.close();
  }
}

describe('rate limits shared across processes through Redis', () => {
  it('two concurrent runs on one account with --redis-url get no 429; without it they are throttled', async () => {
    const shared = await runBoth(true);
    expect(shared.codes).toEqual([0, 0]);
    const sharedRequests = shared.state.requests as { total: number; throttled: number };
    expect(sharedRequests.total).toBeGreaterThan(2 * BURST * 2); // enough requests to need several windows
    expect(sharedRequests.throttled).toBe(0);

    const alone = await runBoth(false);
    expect(alone.codes).toEqual([0, 0]); // 429s are waited out (Retry-After), nothing is lost
    expect((alone.state.requests as { throttled: number }).throttled).toBeGreaterThan(0);
  }, 120_000);
});
