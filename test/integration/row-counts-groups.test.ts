import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { emulatorEvents, readRejects, rejectsFileOf } from '../helpers/resume.js';

/**
 * Issue 12: a row is loaded only if every item it produced was accepted. A multi-line order becomes one
 * `Placed Order` event made of all its rows: when Klaviyo rejects that event, each of its rows is a rejected row
 * (before: only its first row, and the other lines counted as loaded: "loaded 40, rejected 25" with 0 events
 * accepted). Through the CLI: the report's counts, the rejects file (one reject per item, naming its rows), what
 * the emulator holds and the exit code.
 */

const KEY = 'pk_row_counts_groups_0000000000000';
let tmp: string;
let emulator: EmulatorHandle;

const HEADER = 'Name,Email,Currency,Total,Created at,Lineitem sku,Lineitem quantity';
const line = (name: string, email: string, year: number, sku: string): string =>
  `${name},${email},USD,10.00,${year}-03-05 15:09:43 -0600,${sku},1`;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-row-counts-'));
  // Klaviyo refuses a profile whose email has a non-ASCII top-level domain (the transform lets it through): orders #2 and #4 (three lines each) are rejected, #1 and #3 (two
  // lines each) loaded
  const rows = [
    line('#1', 'a@example.com', 2024, 'A'),
    line('#1', 'a@example.com', 2024, 'B'),
    line('#2', 'b@example.tést', 2024, 'A'),
    line('#2', 'b@example.tést', 2024, 'B'),
    line('#2', 'b@example.tést', 2024, 'C'),
    line('#3', 'c@example.com', 2024, 'A'),
    line('#3', 'c@example.com', 2024, 'B'),
    line('#4', 'd@example.tést', 2024, 'A'),
    line('#4', 'd@example.tést', 2024, 'B'),
    line('#4', 'd@example.tést', 2024, 'C'),
  ];
  await writeFile(path.join(tmp, 'orders.csv'), [HEADER, ...rows].join('\n') + '\n');
  await writeFile(
    path.join(tmp, 'orders.yaml'),
    `version: 1
name: row-counts
source: { type: csv, path: orders.csv }
transform:
  type: event
  metric: Placed Order
  unique_id: { template: "order-{{Name}}" }
  time: { column: Created at, type: datetime, format: "yyyy-MM-dd HH:mm:ss ZZZ" }
  value: { column: Total, type: number }
  profile:
    email: { column: Email, type: email }
  group:
    by: Name
    value: sum
    itemsProperty: Items
    items:
      SKU: Lineitem sku
      Quantity: { column: Lineitem quantity, type: integer }
destination: { type: klaviyo }
`,
  );
  emulator = await startEmulator({ port: 0, limits: 'off' });
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('rows of a multi-row item', () => {
  it('are all rejected when the item is rejected, and loaded only when every item they produced was accepted', async () => {
    const stateDir = path.join(tmp, 'state');
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };
    const result = await cli(['run', path.join(tmp, 'orders.yaml'), '--state-dir', stateDir, '--json'], { env });
    expect(result.code).toBe(3);
    const report = JSON.parse(result.stdout);
    expect(report.status).toBe('completed_with_rejects');
    expect(report.rows).toEqual({ read: 10, loaded: 4, rejected: 6, skipped: 0 });

    const events = await emulatorEvents(emulator.url, KEY);
    expect(events.map((e) => e.unique_id).sort()).toEqual(['order-#1', 'order-#3']);
    // one reject per rejected item, naming the first and last of its rows
    const rejects = await readRejects(await rejectsFileOf(stateDir, 'row-counts'));
    expect(rejects.map((r) => ({ code: r.code, line: r.line, seq: r.seq, lastSeq: (r as { lastSeq?: number }).lastSeq }))).toEqual([
      { code: 'KLAVIYO_REJECTED', line: 4, seq: 2, lastSeq: 4 },
      { code: 'KLAVIYO_REJECTED', line: 9, seq: 7, lastSeq: 9 },
    ]);
  });
});
