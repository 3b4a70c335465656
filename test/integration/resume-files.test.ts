import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/core/exit-codes.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import {
  emulatorEvents,
  lockedBy,
  makeOrders,
  ordersPipeline,
  readCheckpointFile,
  readRejects,
  start,
  waitForCheckpoint,
  rejectsFileOf,
} from '../helpers/resume.js';

/**
 * Issue 16, through the CLI: a resume reads the file the interrupted run read (a replaced file or a hand-edited
 * offset is refused with SOURCE_CHANGED, `onChangedFile: reread` reads it again), the files the run started with (a
 * file arriving before the resume file is read by the next run, not recorded as read), and parses a CR-only file
 * from the middle as a read from the start does.
 */

let tmp: string;
let emulator: EmulatorHandle;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-resume-files-'));
  emulator = await startEmulator({ port: 0, limits: 'off' });
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

const SLOW = { eventsBatch: 100, burst: 5, steady: 300 };
const FAST = { eventsBatch: 500, burst: 1000, steady: 60000 };

/** Start a run and SIGKILL it once its checkpoint holds a position that satisfies `ready`. */
async function killedRun(pipeline: string, stateDir: string, name: string, env: NodeJS.ProcessEnv, ready = (seq: number) => seq >= 0) {
  const run = start(['run', pipeline, '--state-dir', stateDir], env);
  await lockedBy(stateDir, name, run.child.pid!);
  await waitForCheckpoint(stateDir, name, (cp) => cp.position !== undefined && ready(cp.position.seq), 60_000);
  run.child.kill('SIGKILL');
  await run.exited;
  return (await readCheckpointFile(stateDir, name))!;
}

const eventIds = async (key: string): Promise<Set<string>> => new Set((await emulatorEvents(emulator.url, key)).map((e) => e.unique_id!));

describe('resume: the file changed under it', () => {
  it('a file replaced at the same path is refused (SOURCE_CHANGED, exit 1, nothing of it loaded); onChangedFile: reread loads all of it', async () => {
    const key = 'pk_resume_files_replaced_000000000';
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: key };
    const dir = path.join(tmp, 'replaced');
    const stateDir = path.join(dir, 'state');
    await makeOrders(path.join(dir, 'orders.csv'), { rows: 3000, seed: 21 });
    const pipeline = path.join(dir, 'orders.yaml');
    await writeFile(pipeline, ordersPipeline({ name: 'replaced', path: 'orders.csv', ...SLOW }));
    const interrupted = await killedRun(pipeline, stateDir, 'replaced', env);
    const checkpointFile = path.join(stateDir, 'replaced', 'checkpoint.json');
    const saved = await readFile(checkpointFile, 'utf8');

    // a hand-edited offset past the end of the file: refused, not "succeeded" with nothing read
    const edited = JSON.parse(saved);
    edited.position.offset = 1_000_000_000;
    await writeFile(checkpointFile, JSON.stringify(edited));
    const pastEnd = await cli(['run', pipeline, '--state-dir', stateDir], { env });
    expect(pastEnd.code).toBe(EXIT.FAILED);
    expect(pastEnd.stderr).toContain('SOURCE_CHANGED');
    await writeFile(checkpointFile, saved);

    // the file replaced by another export at the same path (1,500 rows, other orders)
    const replacement = await makeOrders(path.join(dir, 'orders.csv'), { rows: 1500, seed: 22, namePrefix: 'NEW-' });
    await writeFile(pipeline, ordersPipeline({ name: 'replaced', path: 'orders.csv', ...FAST }));
    const refused = await cli(['run', pipeline, '--state-dir', stateDir], { env });
    expect(refused.code).toBe(EXIT.FAILED);
    expect(refused.stderr).toContain('SOURCE_CHANGED');
    expect(refused.stderr).toContain('onChangedFile: reread');
    expect([...(await eventIds(key))].filter((id) => id.startsWith('order-#NEW-'))).toEqual([]);
    const after = await readCheckpointFile(stateDir, 'replaced');
    expect(after?.position).toEqual(interrupted.position); // nothing moved: the refusal can be resumed differently

    // the pipeline says to read a changed file again from its start
    const yaml = ordersPipeline({ name: 'replaced', path: 'orders.csv', ...FAST }).replace('  path: "orders.csv"\n', '  path: "orders.csv"\n  onChangedFile: reread\n');
    await writeFile(pipeline, yaml);
    const reread = await cli(['run', pipeline, '--state-dir', stateDir], { env });
    expect(reread.stderr).toContain('reading it again from its start');
    expect(reread.code).toBe(EXIT.OK);
    const ids = await eventIds(key);
    const missing = [...replacement.uniqueIds].filter((id) => !ids.has(id));
    expect(missing).toEqual([]);
    expect((await readCheckpointFile(stateDir, 'replaced'))?.status).toBe('succeeded');
    expect(await readRejects(await rejectsFileOf(stateDir, 'replaced'))).toEqual([]);
  });
});

describe('resume: the files a run covers are fixed when it starts', () => {
  it('a file arriving between the crash and the resume, sorting before the file resumed, is read by the next run (700 of 700)', async () => {
    const key = 'pk_resume_files_late_0000000000000';
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: key };
    const dir = path.join(tmp, 'late');
    const stateDir = path.join(dir, 'state');
    const b = await makeOrders(path.join(dir, 'incoming', 'orders-b.csv'), { rows: 3000, seed: 23, namePrefix: 'B-' });
    const pipeline = path.join(dir, 'orders.yaml');
    await writeFile(pipeline, ordersPipeline({ name: 'late', path: 'incoming/*.csv', ...SLOW }));
    await killedRun(pipeline, stateDir, 'late', env);
    const a = await makeOrders(path.join(dir, 'incoming', 'orders-a.csv'), { rows: 700, seed: 24, namePrefix: 'A-' });
    await writeFile(pipeline, ordersPipeline({ name: 'late', path: 'incoming/*.csv', ...FAST }));

    const resumed = await cli(['run', pipeline, '--state-dir', stateDir, '--report', path.join(dir, 'resumed.json')], { env });
    expect(resumed.code).toBe(EXIT.OK);
    let ids = await eventIds(key);
    expect([...b.uniqueIds].filter((id) => !ids.has(id))).toEqual([]);
    const checkpoint = await readCheckpointFile(stateDir, 'late');
    expect((checkpoint?.watermark as { files: { path: string }[] }).files.map((f) => f.path)).toEqual(['incoming/orders-b.csv']);

    const next = await cli(['run', pipeline, '--state-dir', stateDir, '--report', path.join(dir, 'next.json')], { env });
    expect(next.code).toBe(EXIT.OK);
    expect(JSON.parse(await readFile(path.join(dir, 'next.json'), 'utf8')).rows.read).toBe(700);
    ids = await eventIds(key);
    expect([...a.uniqueIds].filter((id) => !ids.has(id))).toEqual([]);
    expect(ids.size).toBe(a.uniqueIds.size + b.uniqueIds.size);
  });
});

describe('resume: what the parser learned at the start of the file', () => {
  it('a CR-only file resumed at a record with a stray quote loads every order after it (not 500 of 9,999)', async () => {
    const key = 'pk_resume_files_cr_00000000000000';
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: key };
    const dir = path.join(tmp, 'cr');
    const stateDir = path.join(dir, 'state');
    const file = path.join(dir, 'orders.csv');
    const orders = await makeOrders(file, { rows: 3000, seed: 25 });
    // a row with a stray quote between two orders at ~10% of the file, then every line break made a CR
    const lines = (await readFile(file, 'utf8')).split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    let at = Math.floor(lines.length / 10);
    const name = (l: string) => l.slice(0, l.indexOf(','));
    while (name(lines[at]!) === name(lines[at - 1]!)) at++;
    lines.splice(at, 0, `#STRAY1,x"y@example.com,${lines[at]!.split(',').slice(2).join(',')}`);
    const text = lines.join('\r') + '\r';
    await writeFile(file, text);
    const strayLine = at + 1;
    const strayOffset = Buffer.byteLength(lines.slice(0, at).join('\r') + '\r');
    const straySeq = at - 1;

    const pipeline = path.join(dir, 'orders.yaml');
    await writeFile(pipeline, ordersPipeline({ name: 'cr', path: 'orders.csv', ...SLOW }));
    // killed once the stray row is behind the checkpoint (its reject is in the rejects file)
    await killedRun(pipeline, stateDir, 'cr', env, (seq) => seq > straySeq + 20);
    const checkpointFile = path.join(stateDir, 'cr', 'checkpoint.json');
    const cp = JSON.parse(await readFile(checkpointFile, 'utf8'));
    // resume exactly at the stray row (a record boundary: every record up to it is settled)
    cp.position = { ...cp.position, seq: straySeq, line: strayLine, offset: strayOffset };
    await writeFile(checkpointFile, JSON.stringify(cp));

    await writeFile(pipeline, ordersPipeline({ name: 'cr', path: 'orders.csv', ...FAST }));
    const report = path.join(dir, 'report.json');
    const resumed = await cli(['run', pipeline, '--state-dir', stateDir, '--report', report], { env });
    expect(resumed.code).toBe(EXIT.COMPLETED_WITH_REJECTS);
    const ids = await eventIds(key);
    expect([...orders.uniqueIds].filter((id) => !ids.has(id))).toEqual([]);
    expect(ids.size).toBe(orders.uniqueIds.size);
    const rejects = await readRejects(await rejectsFileOf(stateDir, 'cr'));
    expect(rejects.map((r) => [r.line, r.code])).toEqual([[strayLine, 'CSV_PARSE_ERROR']]);
    expect(JSON.parse(await readFile(report, 'utf8')).rows.read).toBe(lines.length - 1);
  });
});

describe('CSV header quirks (CLI)', () => {
  const eventsPipeline = (name: string, extra: string) => `version: 1
name: ${name}
source:
  type: csv
  path: big.csv
${extra}transform:
  type: event
  metric: Viewed Page
  unique_id: { template: "view-{{id}}" }
  profile:
    email: { column: email, type: email }
destination:
  type: klaviyo
`;
  async function bigFile(file: string, header: string): Promise<void> {
    const rows: string[] = [header];
    for (let i = 1; i <= 400_000; i++) rows.push(`${i},someone${i}@example.com,${'x'.repeat(40)}`);
    await writeFile(file, rows.join('\n') + '\n');
  }

  it('a stray quote in the header of a 30 MB file: exit 1, SOURCE_READ naming line 1, nothing sent; an escaped quote in the header with escape "\\\\": --limit 10 loads 10', async () => {
    const key = 'pk_resume_files_header_00000000000';
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: key };
    const dir = path.join(tmp, 'header');
    const stateDir = path.join(dir, 'state');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await bigFile(path.join(dir, 'big.csv'), 'id,em"ail,note');
    const pipeline = path.join(dir, 'p.yaml');
    await writeFile(pipeline, eventsPipeline('stray-header', ''));
    const stray = await cli(['run', pipeline, '--state-dir', stateDir, '--report', path.join(dir, 'stray.json')], { env });
    expect(stray.code).toBe(EXIT.FAILED);
    const report = JSON.parse(await readFile(path.join(dir, 'stray.json'), 'utf8'));
    expect(report.error.code).toBe('SOURCE_READ');
    expect(report.error.message).toContain('(line 1)');
    expect(report.rows.read).toBe(0);
    expect(await emulatorEvents(emulator.url, key)).toEqual([]);
    expect(await readRejects(await rejectsFileOf(stateDir, 'stray-header'))).toEqual([]);

    await bigFile(path.join(dir, 'big.csv'), 'id,email,"no\\"te"');
    await writeFile(pipeline, eventsPipeline('escaped-header', '  escape: "\\\\"\n'));
    const escaped = await cli(['run', pipeline, '--state-dir', stateDir, '--limit', '10'], { env });
    expect(escaped.code).toBe(EXIT.OK);
    expect((await emulatorEvents(emulator.url, key)).map((e) => e.unique_id).sort()).toEqual(
      ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'].map((i) => `view-${i}`).sort(),
    );
  });
});

describe('one hostile value cannot stop a run (CLI)', () => {
  it('an NDJSON value nested 5,000 deep is rejected VALUE_TOO_DEEP with its line; the other rows load; exit 3', async () => {
    const key = 'pk_resume_files_deep_0000000000000';
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: key };
    const dir = path.join(tmp, 'deep');
    const stateDir = path.join(dir, 'state');
    await mkdir(dir, { recursive: true });
    const deep = '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000);
    const lines = Array.from({ length: 5 }, (_, i) => `{"id":"e${i}","email":"p${i}@example.com","props":${i === 2 ? deep : `{"x":${i}}`}}`);
    await writeFile(path.join(dir, 'deep.ndjson'), lines.join('\n') + '\n');
    const pipeline = path.join(dir, 'p.yaml');
    await writeFile(
      pipeline,
      `version: 1
name: deep
source:
  type: ndjson
  path: deep.ndjson
transform:
  type: event
  metric: Viewed Page
  unique_id: { template: "view-{{id}}" }
  profile:
    email: { column: email, type: email }
  properties:
    Props: { column: props, type: json }
destination:
  type: klaviyo
`,
    );
    const result = await cli(['run', pipeline, '--state-dir', stateDir], { env });
    expect(result.stderr).not.toContain('Maximum call stack');
    expect(result.code).toBe(EXIT.COMPLETED_WITH_REJECTS);
    expect((await emulatorEvents(emulator.url, key)).map((e) => e.unique_id).sort()).toEqual(['view-e0', 'view-e1', 'view-e3', 'view-e4']);
    const rejects = await readRejects(await rejectsFileOf(stateDir, 'deep'));
    expect(rejects.map((r) => [r.line, r.code, r.stage])).toEqual([[3, 'VALUE_TOO_DEEP', 'extract']]);
    expect((await readCheckpointFile(stateDir, 'deep'))?.status).toBe('succeeded');
  });
});
