import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/runner/index.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { ROOT, cli } from '../helpers/cli.js';

const ORDERS_PIPELINE = 'pipelines/examples/shopify-orders-backfill.yaml';
const BAD_PIPELINE = 'fixtures/bad/customers-bad.yaml';

interface StateSummary {
  profiles: number;
  events: number;
  eventsByMetric: Record<string, number>;
  duplicateEventsIgnored: number;
}

/** What the orders fixture should become, computed from the fixture itself. */
async function expectedOrders(): Promise<{ orders: Set<string>; lineItems: number; totals: Map<string, number> }> {
  const rows = parse(await readFile(path.join(ROOT, 'fixtures/orders/shopify-orders.csv')), { columns: true }) as Record<string, string>[];
  const orders = new Set(rows.map((r) => r.Name));
  const totals = new Map<string, number>();
  for (const r of rows) if (r.Total) totals.set(r.Name, Number(r.Total));
  return { orders, lineItems: rows.length, totals };
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-run-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('klaviyo-etl run (CLI, built binary)', () => {
  it('runs the Shopify orders example on the embedded emulator: exit 0, one Placed Order per distinct order', async () => {
    const reportFile = path.join(tmp, 'orders-report.json');
    const result = await cli(['run', ORDERS_PIPELINE, '--emulator', '--report', reportFile, '--state-dir', path.join(tmp, 'state-orders')]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const { orders, lineItems } = await expectedOrders();
    const report = JSON.parse(await readFile(reportFile, 'utf8'));
    expect(report.status).toBe('succeeded');
    expect(report.rows).toMatchObject({ read: lineItems, loaded: lineItems, rejected: 0 });
    const state = report.emulator.state as StateSummary;
    expect(state.eventsByMetric['Placed Order']).toBe(orders.size);
    expect(state.eventsByMetric['Ordered Product']).toBe(lineItems);
    expect(state.duplicateEventsIgnored).toBe(0);
    expect(result.stdout).toContain(`Placed Order: ${orders.size}`);
    expect(report.requests.total).toBeGreaterThan(0);
    expect(report.requests.throttled).toBe(0);
  });

  it('loads every good row of a bad CSV, rejects each bad one with its line and code, and exits 3', async () => {
    const rejectsDir = path.join(tmp, 'rejects-bad');
    const reportFile = path.join(tmp, 'bad-report.json');
    const result = await cli(['run', BAD_PIPELINE, '--emulator', '--report', reportFile, '--state-dir', path.join(tmp, 'state-bad')], {
      env: { REJECTS_DIR: rejectsDir },
    });
    expect(result.code).toBe(3);
    const rejects = (await readFile(path.join(rejectsDir, 'rejects.ndjson'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rejects.map((r) => [r.line, r.code])).toEqual([
      [3, 'INVALID_EMAIL'],
      [4, 'INVALID_PHONE'],
      [5, 'INVALID_DATE'],
      [6, 'MISSING_IDENTIFIER'],
      [7, 'CSV_RAGGED_ROW'],
      [11, 'CSV_UNCLOSED_QUOTE'],
    ]);
    for (const r of rejects) {
      expect(r.source).toMatch(/customers-bad\.csv$/);
      expect(r.message.length).toBeGreaterThan(0);
    }
    const report = JSON.parse(await readFile(reportFile, 'utf8'));
    expect(report.status).toBe('completed_with_rejects');
    expect(report.rows.rejected).toBe(rejects.length);
    expect(report.rows.loaded).toBe(report.rows.read - rejects.length);
    // every good row is a profile in the emulator (the good rows have distinct emails)
    expect(report.emulator.state.profiles).toBe(report.rows.loaded);
  });

  it('--dry-run reads and transforms everything, sends nothing, and counts the requests a real run would make', async () => {
    const reportFile = path.join(tmp, 'dry-report.json');
    const result = await cli(['run', ORDERS_PIPELINE, '--dry-run', '--report', reportFile, '--state-dir', path.join(tmp, 'state-dry')]);
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(reportFile, 'utf8'));
    const { lineItems, orders } = await expectedOrders();
    expect(report.dryRun).toBe(true);
    expect(report.requests.total).toBe(0);
    // orders + line items fit in one bulk request of ≤1000 events
    expect(orders.size + lineItems).toBeLessThanOrEqual(1000);
    expect(report.requests.planned).toBe(1);
    expect(report.items.events).toBe(orders.size + lineItems);
    expect(result.stdout).toContain('a real run would make 1 requests');
  });

  it('runs the list export example on an embedded emulator seeded with --emulator-seed', async () => {
    const exportDir = path.join(tmp, 'exports');
    const seedFile = path.join(ROOT, 'pipelines/examples/list-members-export.seed.json');
    const result = await cli(
      ['run', 'pipelines/examples/list-members-export.yaml', '--emulator', '--emulator-seed', seedFile, '--state-dir', path.join(tmp, 'state-export')],
      { env: { EXPORT_DIR: exportDir } },
    );
    expect(result.code).toBe(0);
    const seed = JSON.parse(await readFile(seedFile, 'utf8')) as { lists: { id: string; members: unknown[] }[] };
    const members = seed.lists.find((l) => l.id === 'Newsl1')!.members.length;
    const [file] = readdirSync(exportDir);
    const csv = gunzipSync(await readFile(path.join(exportDir, file!))).toString('utf8').trim().split('\n');
    expect(csv.length).toBe(members + 1); // header + one line per member
  });

  it('fails with exit 1 and MISSING_API_KEY when no key is set for a real run, without leaking anything', async () => {
    const result = await cli(['run', ORDERS_PIPELINE, '--state-dir', path.join(tmp, 'state-nokey'), '--json'], {
      env: { KLAVIYO_BASE_URL: 'http://127.0.0.1:9' },
    });
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report.status).toBe('failed');
    expect(report.error.code).toBe('MISSING_API_KEY');
  });
});

describe('run() library API against a standalone emulator over HTTP', () => {
  let emulator: EmulatorHandle;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, limits: 'off' });
  });
  afterAll(async () => {
    await emulator.close();
  });

  it('loads the orders example with KLAVIYO_BASE_URL / KLAVIYO_API_KEY and the emulator holds the events with their totals', async () => {
    const apiKey = 'pk_test_library_api_0123456789';
    const report = await run({
      pipelineFile: path.join(ROOT, ORDERS_PIPELINE),
      env: { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: apiKey },
      stateDir: path.join(tmp, 'state-lib'),
    });
    expect(report.status).toBe('succeeded');
    const { orders, totals } = await expectedOrders();
    const res = await fetch(`${emulator.url}/_emulator/events`, { headers: { authorization: `Klaviyo-API-Key ${apiKey}` } });
    const events = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { metric: string; value?: number; unique_id: string; properties: Record<string, unknown> });
    const placed = events.filter((e) => e.metric === 'Placed Order');
    expect(new Set(placed.map((e) => e.properties.OrderId))).toEqual(orders);
    for (const e of placed) expect(e.value).toBeCloseTo(totals.get(String(e.properties.OrderId))!, 2);
    expect(JSON.stringify(report)).not.toContain(apiKey);
  });

  it('refuses an invalid pipeline file with a CONFIG_* EtlError listing the problems', async () => {
    await expect(run({ pipelineFile: path.join(ROOT, 'no/such/pipeline.yaml') })).rejects.toMatchObject({ code: expect.stringMatching(/^CONFIG_/) });
  });
});
