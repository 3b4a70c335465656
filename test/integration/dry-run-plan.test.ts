/**
 * `run --dry-run` prints the plan (per endpoint: requests, bulk jobs, tier, least wall time) and `--window` fails a
 * plan that cannot fit (exit 1), through the CLI.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, ROOT } from '../helpers/cli.js';

let dir: string;
let file: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-plan-'));
  file = path.join(dir, 'slow.yaml');
  // 30 customers, 5 per job, on an account whose import endpoint allows 1/s and 2/min: 6 jobs need at least 2m 1s
  await writeFile(
    file,
    `version: 1
name: slow
source:
  type: csv
  path: ${path.join(ROOT, 'fixtures/customers.csv')}
transform:
  type: profile
  profile:
    email: { column: email, type: email }
destination:
  type: klaviyo
  batch: { profiles: 5 }
  rateLimits:
    "POST /api/profile-bulk-import-jobs": { burst: 1, steady: 2 }
`,
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('--dry-run plan', () => {
  it('prints per endpoint the requests, bulk jobs and least wall time', async () => {
    const r = await cli(['run', 'pipelines/examples/shopify-orders-backfill.yaml', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/plan {6}POST \/api\/event-bulk-create-jobs: \d+ requests \(\d+ bulk jobs\) at 10\/s, 150\/min → at least \d/);
    expect(r.stdout).toMatch(/plan {6}least wall time/);
  });

  it('the JSON report carries the plan', async () => {
    const r = await cli(['run', file, '--dry-run', '--json', '--state-dir', dir]);
    const report = JSON.parse(r.stdout) as { requests: { planned: number }; plan: { leastWallMs: number; endpoints: { endpoint: string; requests: number; jobs: number }[] } };
    expect(report.requests.planned).toBe(6);
    expect(report.plan.endpoints[0]).toMatchObject({ endpoint: 'POST /api/profile-bulk-import-jobs', requests: 6, jobs: 6 });
    expect(report.plan.leastWallMs).toBe(121_000);
  });

  it('a subscription run plans its consent pre-read (GET /api/profiles) besides the subscribe jobs', async () => {
    const sub = path.join(dir, 'subscribe.yaml');
    await writeFile(
      sub,
      `version: 1\nname: subscribe\nsource:\n  type: csv\n  path: ${path.join(ROOT, 'fixtures/customers.csv')}\ntransform:\n  type: subscription\n  profile:\n    email: { column: email, type: email }\n  channels:\n    email: { marketing: true }\ndestination:\n  type: klaviyo\n`,
    );
    const r = await cli(['run', sub, '--dry-run', '--json', '--state-dir', dir]);
    const report = JSON.parse(r.stdout) as { requests: { planned: number }; plan: { endpoints: { endpoint: string; requests: number }[] } };
    const by = Object.fromEntries(report.plan.endpoints.map((e) => [e.endpoint, e.requests]));
    expect(by['POST /api/profile-subscription-bulk-create-jobs']).toBeGreaterThan(0);
    expect(by['GET /api/profiles']).toBeGreaterThan(0);
    expect(Object.values(by).reduce((a, b) => a + b, 0)).toBe(report.requests.planned);
  });

  it('--window: exit 1 when the least wall time exceeds it, 0 when it fits', async () => {
    const tight = await cli(['run', file, '--dry-run', '--window', '2m', '--state-dir', dir]);
    expect(tight.code).toBe(1);
    expect(tight.stdout).toMatch(/least wall time 2m 1s: DOES NOT FIT the 2m window/);
    const roomy = await cli(['run', file, '--dry-run', '--window', '1h', '--state-dir', dir]);
    expect(roomy.code).toBe(0);
    expect(roomy.stdout).toMatch(/least wall time 2m 1s \(fits the 1h window\)/);
  });

  it('--window without --dry-run, or not a duration, is a usage error', async () => {
    expect((await cli(['run', file, '--window', '2h'])).code).toBe(2);
    const bad = await cli(['run', file, '--dry-run', '--window', 'tonight']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Expected --window to be a duration/);
  });
});
