import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Reject } from '../../../src/core/record.js';
import { REJECT_CSV_LEAD, REJECT_CSV_TAIL, openRejects, readWrittenRejects } from '../../../src/runner/rejects.js';

const REJECTS: Reject[] = [
  {
    stage: 'extract',
    code: 'CSV_RAGGED_ROW',
    message: 'Expected 10 fields (header), got 8',
    source: 'bad/customers-bad.csv',
    line: 7,
    offset: 512,
    seq: 5,
    row: { email: 'oliver.brown@example.com', zip: '98101' },
    raw: 'oliver.brown@example.com,2065550171,"Oliver, Jr"',
  },
  {
    stage: 'transform',
    code: 'INVALID_EMAIL',
    message: 'not an email: "not-an-email"',
    source: 'bad/customers-bad.csv',
    line: 3,
    seq: 1,
    field: 'email',
    row: { email: 'not-an-email', note: 'multi\nline, "quoted"' },
  },
  { stage: 'load', code: 'KLAVIYO_REJECTED', message: 'Invalid phone number', source: 'postgres:customers', seq: 9, field: '/data/attributes/phone_number' },
];

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ketl-rejects-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('rejects writer', () => {
  it('format ndjson: round trip keeps every Reject field, parent dirs created', async () => {
    const path = join(dir, 'nested/deeper/rejects.ndjson');
    const writer = openRejects({ path, format: 'ndjson' });
    await writer.write(REJECTS.slice(0, 2));
    void writer.write(REJECTS.slice(2)); // not awaited: close() still flushes it
    expect(writer.count).toBe(3);
    await writer.close();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l) as Reject)).toEqual(REJECTS);
  });

  it('format csv: the row\'s original columns as columns, between what to fix and where it came from', async () => {
    const path = join(dir, 'rejects.csv');
    const writer = openRejects({ path, format: 'csv', columnsOf: (source) => (source === 'bad/customers-bad.csv' ? ['email', 'zip', 'note'] : undefined) });
    await writer.write(REJECTS);
    await writer.close();
    const rows = parse(readFileSync(path), { columns: true }) as Record<string, string>[];
    expect(Object.keys(rows[0]!)).toEqual([...REJECT_CSV_LEAD, 'email', 'zip', 'note', ...REJECT_CSV_TAIL]);
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatchObject({
      reject_code: 'CSV_RAGGED_ROW',
      email: 'oliver.brown@example.com',
      zip: '98101',
      note: '',
      reject_source: 'bad/customers-bad.csv',
      reject_line: '7',
      reject_offset: '512',
      reject_seq: '5',
      reject_stage: 'extract',
      reject_field: '',
      reject_raw: REJECTS[0]!.raw,
    });
    // a multi-line, quoted value survives as one cell
    expect(rows[1]).toMatchObject({ reject_code: 'INVALID_EMAIL', reject_field: 'email', email: 'not-an-email', note: 'multi\nline, "quoted"', reject_raw: '' });
    expect(rows[2]).toMatchObject({ reject_line: '', reject_offset: '', reject_field: '/data/attributes/phone_number', email: '' });
  });

  it('format csv: fields outside the header go to reject_extra as JSON; a row\'s own reject_… column too', async () => {
    const path = join(dir, 'extra.csv');
    const writer = openRejects({ path, format: 'csv' });
    await writer.write([
      { stage: 'transform', code: 'INVALID_DATE', message: 'm', source: 'a.csv', line: 2, seq: 0, row: { email: 'a@x.com', reject_code: 'mine' } },
      { stage: 'transform', code: 'INVALID_DATE', message: 'm', source: 'b.csv', line: 2, seq: 1, row: { email: 'b@x.com', total: 12.5, tags: ['x'] } },
    ]);
    await writer.close();
    const rows = parse(readFileSync(path), { columns: true }) as Record<string, string>[];
    expect(Object.keys(rows[0]!)).toEqual([...REJECT_CSV_LEAD, 'email', ...REJECT_CSV_TAIL]);
    expect(JSON.parse(rows[0]!.reject_extra!)).toEqual({ reject_code: 'mine' });
    expect(rows[0]!.reject_code).toBe('INVALID_DATE');
    expect(JSON.parse(rows[1]!.reject_extra!)).toEqual({ total: 12.5, tags: ['x'] });
  });

  it('rejects read back: rows counted by code with the first reject of each as its example', async () => {
    const path = join(dir, 'back.csv');
    const writer = openRejects({ path, format: 'csv' });
    await writer.write(REJECTS);
    await writer.close();
    const back = await readWrittenRejects(path, 'csv');
    expect(back.tally.byCode()).toEqual({ CSV_RAGGED_ROW: 1, INVALID_EMAIL: 1, KLAVIYO_REJECTED: 1 });
    expect(back.tally.examples().INVALID_EMAIL).toEqual({ source: 'bad/customers-bad.csv', line: 3, field: 'email', message: 'not an email: "not-an-email"' });
    expect(back.columns).toEqual(['email', 'zip']);
  });

  it('messages are redacted: an API key in a message never reaches the file', async () => {
    const path = join(dir, 'r.ndjson');
    const writer = openRejects({ path });
    await writer.write([{ stage: 'load', code: 'KLAVIYO_REJECTED', message: 'bad key pk_abc123XYZ', source: 's', seq: 0 }]);
    await writer.close();
    expect(readFileSync(path, 'utf8')).not.toContain('pk_abc123XYZ');
  });

  it('lazy creation: no reject, no file', async () => {
    const path = join(dir, 'none/rejects.ndjson');
    const writer = openRejects({ path, format: 'ndjson' });
    await writer.write([]);
    await writer.close();
    expect(existsSync(path)).toBe(false);
    expect(writer.count).toBe(0);
  });

  it('append: adds to an existing file (csv header only once); without append an existing file is never replaced', async () => {
    const path = join(dir, 'rejects.csv');
    for (let i = 0; i < 2; i++) {
      const writer = openRejects({ path, format: 'csv', append: true });
      await writer.write([REJECTS[0]!]);
      await writer.close();
    }
    expect(readFileSync(path, 'utf8').split('\n').filter((l) => l.startsWith('reject_code,'))).toHaveLength(1);
    expect(parse(readFileSync(path), { columns: true })).toHaveLength(2);

    const ndjson = join(dir, 'r.ndjson');
    await writeFile(ndjson, '{"old":true}\n');
    const writer = openRejects({ path: ndjson, format: 'ndjson', append: false });
    await writer.write([REJECTS[2]!]);
    await expect(writer.close()).rejects.toMatchObject({ code: 'REJECTS_WRITE' });
    expect(readFileSync(ndjson, 'utf8')).toBe('{"old":true}\n');
  });

  it('write errors surface on close and on the next write, never as unhandled rejections', async () => {
    await writeFile(join(dir, 'file'), 'x');
    const writer = openRejects({ path: join(dir, 'file/rejects.ndjson'), format: 'ndjson' });
    void writer.write([REJECTS[0]!]);
    await expect(writer.close()).rejects.toMatchObject({ code: 'REJECTS_WRITE' });
    expect(writer.error?.code).toBe('REJECTS_WRITE');
    expect(() => writer.write([REJECTS[1]!])).toThrow(/rejects file/);
  });
});

describe('rejects file durability (issue 16: disk full)', () => {
  async function fileHandlePrototype() {
    const probe = await open(process.execPath, 'r');
    const proto = Object.getPrototypeOf(probe) as { write: (...a: unknown[]) => Promise<{ bytesWritten: number }>; datasync: () => Promise<void> };
    await probe.close();
    return proto;
  }

  it('write() resolves once the text is written in full and flushed (fdatasync)', async () => {
    const proto = await fileHandlePrototype();
    const sync = vi.spyOn(proto, 'datasync');
    try {
      const file = join(dir, 'r.ndjson');
      const w = openRejects({ path: file });
      await w.write([REJECTS[0]!]);
      expect(sync).toHaveBeenCalledTimes(1);
      expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(1);
      // queued together while a flush is under way: one more flush for both
      const a = w.write([REJECTS[1]!]);
      const b = w.write([REJECTS[2]!]);
      await Promise.all([a, b]);
      expect(sync.mock.calls.length).toBeLessThanOrEqual(3);
      expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(3);
      await w.close();
    } finally {
      sync.mockRestore();
    }
  });

  it('a short write (the disk fills up) is continued; its ENOSPC is REJECTS_WRITE, not a torn line taken as written', async () => {
    const proto = await fileHandlePrototype();
    const write = proto.write;
    let room = 40;
    const spy = vi.spyOn(proto, 'write').mockImplementation(async function (this: unknown, data: unknown, offset?: unknown, length?: unknown) {
      const buf = data as Buffer;
      const want = typeof length === 'number' ? length : buf.length;
      if (room <= 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      const n = Math.min(room, want);
      room -= n;
      return write.call(this, buf, offset ?? 0, n);
    });
    try {
      const w = openRejects({ path: join(dir, 'r.ndjson') });
      await w.write([REJECTS[0]!]);
      expect(w.error).toMatchObject({ code: 'REJECTS_WRITE' });
      expect(w.error!.message).toMatch(/ENOSPC/);
      await expect(w.close()).rejects.toMatchObject({ code: 'REJECTS_WRITE' });
    } finally {
      spy.mockRestore();
    }
  });
});
