import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CsvSource, NdjsonSource } from '../../../src/config/schema.js';
import { csvSource } from '../../../src/extract/csv.js';
import { ndjsonSource } from '../../../src/extract/ndjson.js';
import { FIXTURES, collect, context, withTempDir } from './helpers.js';

const SCRIPT = fileURLToPath(new URL('../../../scripts/generate-orders.js', import.meta.url));
const generate = (...args: string[]): void => {
  execFileSync(process.execPath, [SCRIPT, ...args], { stdio: 'pipe' });
};

describe('scripts/generate-orders.js', () => {
  it('--seed: the same seed gives the same bytes, another seed other bytes', async () => {
    await withTempDir(async (dir) => {
      generate('--rows', '500', '--out', join(dir, 'a.csv'), '--seed', '7');
      generate('--rows', '500', '--out', join(dir, 'b.csv'), '--seed', '7');
      generate('--rows', '500', '--out', join(dir, 'c.csv'), '--seed', '8');
      expect(readFileSync(join(dir, 'a.csv')).equals(readFileSync(join(dir, 'b.csv')))).toBe(true);
      expect(readFileSync(join(dir, 'a.csv')).equals(readFileSync(join(dir, 'c.csv')))).toBe(false);
    });
  });

  it('--rows: a Shopify-style orders file with the fixture columns, parseable without errors, grouped by order', async () => {
    await withTempDir(async (dir) => {
      generate('--rows', '2000', '--out', join(dir, 'orders.csv.gz'), '--seed', '3');
      const records = await collect(csvSource.create(CsvSource.parse({ type: 'csv', path: 'orders.csv.gz' }), context(dir)));
      expect(records).toHaveLength(2000);
      expect(records.every((r) => r.error === undefined)).toBe(true);
      const fixtureHeader = readFileSync(join(FIXTURES, 'orders/shopify-orders.csv'), 'utf8').split('\n')[0]!.split(',');
      expect(Object.keys(records[0]!.row)).toEqual(fixtureHeader);
      // Only the first row of an order carries order-level fields.
      for (let i = 1; i < records.length; i++) {
        const row = records[i]!.row;
        const first = row.Name !== records[i - 1]!.row.Name;
        expect(row['Financial Status'] !== '', `row ${i}`).toBe(first);
      }
      expect(String(records[0]!.row['Created at'])).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}$/);
    });
  });

  it('--profiles and --format ndjson', async () => {
    await withTempDir(async (dir) => {
      generate('--rows', '50', '--out', join(dir, 'customers.csv'), '--profiles');
      generate('--rows', '50', '--out', join(dir, 'orders.ndjson'), '--format', 'ndjson');
      const customers = await collect(csvSource.create(CsvSource.parse({ type: 'csv', path: 'customers.csv' }), context(dir)));
      expect(customers).toHaveLength(50);
      expect(Object.keys(customers[0]!.row)).toEqual(readFileSync(join(FIXTURES, 'customers.csv'), 'utf8').split('\n')[0]!.split(','));
      expect(new Set(customers.map((c) => c.row.email)).size).toBe(50);
      const orders = await collect(ndjsonSource.create(NdjsonSource.parse({ type: 'ndjson', path: 'orders.ndjson' }), context(dir)));
      expect(orders).toHaveLength(50);
      expect(orders[0]!.row.Name).toBe('#1001');
    });
  });

  it('rejects bad arguments with exit code 2', () => {
    let error: { status?: number; stderr?: Buffer } | undefined;
    try {
      generate('--rows', 'x', '--out', '/tmp/never.csv');
    } catch (e) {
      error = e as { status?: number; stderr?: Buffer };
    }
    expect(error?.status).toBe(2);
    expect(String(error?.stderr)).toContain('--rows');
  });
});
