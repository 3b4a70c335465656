import type { ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { parseCheckpoint, type Checkpoint } from '../../src/checkpoint/index.js';
import { ROOT, spawnCli, type CliResult } from './cli.js';
import { prng } from './random.js';

/** Helpers for the crash / resume integration tests: a generated workload, its expected effect, and kill loops. */

const GENERATOR = path.join(ROOT, 'scripts', 'generate-orders.js');

interface GenerateOptions {
  rows: number;
  out: string;
  seed?: number;
  profiles?: boolean;
}

/** `scripts/generate-orders.js`'s `generate` (plain JS module, loaded at runtime). */
export async function generate(options: GenerateOptions): Promise<number> {
  const mod = (await import(GENERATOR)) as { generate: (o: GenerateOptions) => Promise<number> };
  return mod.generate(options);
}

/** A bad row seeded into an input file: its 1-based physical line and the reject code it must produce. */
export interface BadRow {
  line: number;
  code: string;
  /** The row's email (profiles). */
  email?: string;
}

/**
 * Rejects as comparable keys: `line:code`, or for an import error of a job resumed from a checkpoint (which
 * carries no source line, only the original payload) `email:code`. Sorted.
 */
export function rejectKeys(rejects: { line?: number; code: string; row?: unknown }[]): string[] {
  return rejects
    .map((r) => {
      if (r.line !== undefined) return `${r.line}:${r.code}`;
      const row = r.row as { email?: string } | undefined;
      return `${row?.email ?? '?'}:${r.code}`;
    })
    .sort();
}

/** The keys `rejectKeys` must give for these bad rows, given which import errors were reported without a line. */
export function expectedRejectKeys(bad: BadRow[], rejects: { line?: number; code: string; row?: unknown }[]): string[] {
  const unlined = new Set(rejects.filter((r) => r.line === undefined).map((r) => (r.row as { email?: string } | undefined)?.email));
  return bad
    .map((b) => (b.code === 'KLAVIYO_IMPORT_ERROR' && unlined.has(b.email) ? `${b.email}:${b.code}` : `${b.line}:${b.code}`))
    .sort();
}

/** Orders pipeline: Placed Order per order (grouped) + Ordered Product per line item. */
export function ordersPipeline(options: { name: string; path: string; eventsBatch: number; burst?: number; steady?: number; metric?: string }): string {
  return `version: 1
name: ${options.name}
source:
  type: csv
  path: ${JSON.stringify(options.path)}
transform:
  type: event
  metric: ${options.metric ?? 'Placed Order'}
  backfill: true
  unique_id: { template: "order-{{Name}}" }
  time: { column: Created at, type: datetime, format: "yyyy-MM-dd HH:mm:ss ZZZ" }
  value: { column: Total, type: number }
  value_currency: { column: Currency, uppercase: true }
  profile:
    email: { column: Email, type: email }
  properties:
    OrderId: Name
    Subtotal: { column: Subtotal, type: number }
  group:
    by: Name
    value: sum
    itemsProperty: Items
    items:
      SKU: Lineitem sku
      Quantity: { column: Lineitem quantity, type: integer }
    itemEvents:
      metric: Ordered Product
      unique_id: { template: "order-{{Name}}-{{_item}}-{{Lineitem sku}}" }
      value: { column: Lineitem price, type: number }
      properties:
        OrderId: Name
destination:
  type: klaviyo
  concurrency: 2
  batch: { events: ${options.eventsBatch} }
  rateLimits:
    "POST /api/event-bulk-create-jobs": { burst: ${options.burst ?? 1000}, steady: ${options.steady ?? 60000} }
`;
}

/** Customers pipeline: profiles through bulk import jobs. */
export function customersPipeline(options: { name: string; path: string; profilesBatch: number; burst?: number; steady?: number }): string {
  return `version: 1
name: ${options.name}
source:
  type: csv
  path: ${JSON.stringify(options.path)}
transform:
  type: profile
  profile:
    email: { column: email, type: email }
    phone_number: { column: phone, type: phone, region: US, regionColumn: country }
    first_name: first_name
    last_name: last_name
    location:
      city: city
      country: country
    properties:
      loyalty_tier: loyalty_tier
      signup_date: { column: signup_date, type: date, format: MM/dd/yyyy }
destination:
  type: klaviyo
  concurrency: 2
  batch: { profiles: ${options.profilesBatch} }
  rateLimits:
    "POST /api/profile-bulk-import-jobs": { burst: ${options.burst ?? 1000}, steady: ${options.steady ?? 60000} }
    "GET /api/profile-bulk-import-jobs/{job_id}": { burst: 1000, steady: 60000 }
    "GET /api/profile-bulk-import-jobs/{id}/import-errors": { burst: 1000, steady: 60000 }
`;
}

type Row = Record<string, string>;

async function readCsv(file: string): Promise<{ header: string; lines: string[]; rows: Row[] }> {
  const text = await readFile(file, 'utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const rows = parse(text, { columns: true }) as Row[];
  return { header: lines[0]!, lines: lines.slice(1), rows };
}

/**
 * Generate an orders file (`rows` line items) and put one bad single-row order (invalid email) in it at about
 * `badAt` of the way. Returns the expected unique_ids and the bad rows.
 */
export async function makeOrders(
  file: string,
  options: { rows: number; seed: number; badAt?: number[]; namePrefix?: string },
): Promise<{ uniqueIds: Set<string>; idsBySeq: string[][]; bad: BadRow[]; rows: number }> {
  await generate({ rows: options.rows, out: file, seed: options.seed });
  const { header, lines, rows } = await readCsv(file);
  const columns = header.split(',');
  const prefix = options.namePrefix ?? '';
  // Rename orders so that several files never share order names (unique_id is per order).
  const out: string[] = [];
  const bad: BadRow[] = [];
  const badSet = new Set((options.badAt ?? []).map((f) => Math.floor(f * lines.length)));
  for (let i = 0; i < lines.length; i++) {
    const row = rows[i]!;
    const prev = rows[i - 1];
    if (badSet.has(i) && prev && prev.Name !== row.Name) {
      // a whole order of one row with an invalid email: rejected at transform
      const name = `#${prefix}BAD${i}`;
      const cells = columns.map((c) =>
        c === 'Name' ? name : c === 'Email' ? 'not-an-email' : c === 'Id' ? '' : csvCell(row[c] ?? ''),
      );
      out.push(cells.join(','));
      bad.push({ line: out.length + 1, code: 'INVALID_EMAIL' });
    }
    out.push(prefix ? lines[i]!.replace(/^#/, `#${prefix}`) : lines[i]!);
  }
  await writeFile(file, [header, ...out].join('\n') + '\n');
  // Expected unique_ids, from the file as written; per record (seq), the ids whose item starts at that record.
  const written = (await readCsv(file)).rows;
  const uniqueIds = new Set<string>();
  const idsBySeq: string[][] = [];
  const counts = new Map<string, number>();
  for (const row of written) {
    const ids: string[] = [];
    idsBySeq.push(ids);
    if (row.Email === 'not-an-email') continue;
    const name = row.Name!;
    const n = (counts.get(name) ?? 0) + 1;
    counts.set(name, n);
    if (n === 1) ids.push(`order-${name}`);
    ids.push(`order-${name}-${n}-${row['Lineitem sku']}`);
    for (const id of ids) uniqueIds.add(id);
  }
  return { uniqueIds, idsBySeq, bad, rows: out.length };
}

function csvCell(s: string): string {
  return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

const CUSTOMER_FIELDS = ['email', 'phone', 'first_name', 'last_name', 'company', 'city', 'country', 'zip', 'loyalty_tier', 'signup_date'];

/** The expected final values of one profile. */
export interface ExpectedProfile {
  first_name: string;
  last_name: string;
  city: string;
  loyalty_tier: string;
}

/**
 * Generate a customers file, then append `updates` rows that change the tier and city of earlier customers
 * (the final values must win after any number of replays), and insert bad rows (invalid email, invalid date,
 * no identifier) at known lines.
 */
export async function makeCustomers(
  file: string,
  options: { rows: number; seed: number; updates: number },
): Promise<{ profiles: Map<string, ExpectedProfile>; emailBySeq: string[]; bad: BadRow[]; rows: number }> {
  await generate({ rows: options.rows, out: file, seed: options.seed, profiles: true });
  const { header, lines, rows } = await readCsv(file);
  const profiles = new Map<string, ExpectedProfile>();
  const out: string[] = [];
  const bad: BadRow[] = [];
  const badAt = new Map<number, { code: string; line: string }>([
    [Math.floor(lines.length * 0.1), { code: 'INVALID_EMAIL', line: 'bad-email-at-example.com,,Bad,Email,,Austin,US,78701,gold,01/02/2020' }],
    [Math.floor(lines.length * 0.45), { code: 'INVALID_DATE', line: 'bad.date@example.com,,Bad,Date,,Austin,US,78701,gold,31/31/2020' }],
    [Math.floor(lines.length * 0.8), { code: 'MISSING_IDENTIFIER', line: ',,No,Identifier,,Austin,US,78701,gold,01/02/2020' }],
    // valid for the transform, refused by Klaviyo inside the bulk import job (non-ASCII top-level domain)
    [Math.floor(lines.length * 0.3), { code: 'KLAVIYO_IMPORT_ERROR', line: 'import.error.one@example.tést,,Import,One,,Austin,US,78701,gold,01/02/2020' }],
    [Math.floor(lines.length * 0.6), { code: 'KLAVIYO_IMPORT_ERROR', line: 'import.error.two@example.tést,,Import,Two,,Austin,US,78701,gold,01/02/2020' }],
  ]);
  const phones = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const b = badAt.get(i);
    if (b) {
      out.push(b.line);
      bad.push({ line: out.length + 1, code: b.code, email: b.line.split(',')[0] });
    }
    const r = rows[i]!;
    // Random phone numbers can repeat; two customers sharing one would be merged into one profile by identity
    // resolution. Keep the first, blank the others.
    const phoneKey = r.phone!.replace(/\D/g, '').slice(-9);
    if (phoneKey !== '' && phones.has(phoneKey)) {
      r.phone = '';
      out.push(CUSTOMER_FIELDS.map((c) => csvCell(r[c] ?? '')).join(','));
    } else {
      phones.add(phoneKey);
      out.push(lines[i]!);
    }
    profiles.set(r.email!.toLowerCase(), { first_name: r.first_name!, last_name: r.last_name!, city: r.city!, loyalty_tier: r.loyalty_tier! });
  }
  const rnd = prng(options.seed + 1);
  const tiers = ['bronze', 'silver', 'gold', 'platinum', 'diamond'];
  for (let u = 0; u < options.updates; u++) {
    const r = rows[Math.floor(rnd() * rows.length)]!;
    const tier = `${tiers[u % tiers.length]}-${u}`;
    const city = `Updated City ${u}`;
    out.push(CUSTOMER_FIELDS.map((c) => csvCell(c === 'city' ? city : c === 'loyalty_tier' ? tier : (r[c] ?? ''))).join(','));
    profiles.set(r.email!.toLowerCase(), { first_name: r.first_name!, last_name: r.last_name!, city, loyalty_tier: tier });
  }
  await writeFile(file, [header, ...out].join('\n') + '\n');
  const emailBySeq = (await readCsv(file)).rows.map((r) => r.email!.toLowerCase());
  return { profiles, emailBySeq, bad, rows: out.length };
}

/** One line of `GET /_emulator/events`. */
export interface EmulatorEvent {
  metric: string;
  unique_id: string | null;
  email: string | null;
}

/** One line of `GET /_emulator/profiles`. */
export interface EmulatorProfile {
  id: string;
  email?: string | null;
  first_name?: string | null;
  last_name?: string | null;
  location?: { city?: string | null } | null;
  properties?: Record<string, unknown> | null;
}

async function ndjson<T>(url: string): Promise<T[]> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  const text = await response.text();
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

export const emulatorEvents = (base: string, key: string): Promise<EmulatorEvent[]> =>
  ndjson<EmulatorEvent>(`${base}/_emulator/events?key=${encodeURIComponent(key)}`);
export const emulatorProfiles = (base: string, key: string): Promise<EmulatorProfile[]> =>
  ndjson<EmulatorProfile>(`${base}/_emulator/profiles?key=${encodeURIComponent(key)}`);

export async function emulatorState(base: string, key: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${base}/_emulator/state?key=${encodeURIComponent(key)}`);
  return (await response.json()) as Record<string, unknown>;
}

/** One line of a rejects (or skipped) NDJSON file. */
interface ReadReject {
  line?: number;
  code: string;
  message: string;
  field?: string;
  seq: number;
  stage: string;
  source: string;
  row?: unknown;
}

/** Rejects file lines (NDJSON), parsed. */
export async function readRejects(file: string): Promise<ReadReject[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as ReadReject);
}

/** How a spawned run ended. */
export interface Exit extends CliResult {
  signal: NodeJS.Signals | null;
}

/** Spawn the CLI; `exited` resolves with its code, signal and output. */
export function start(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; exited: Promise<Exit> } {
  const child = spawnCli(args, { env });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => resolve({ code: code ?? -1, signal, stdout, stderr }));
  });
  return { child, exited };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The checkpoint of pipeline `name` under `stateDir` (parsed and validated), or undefined when there is none. */
export async function readCheckpointFile(stateDir: string, name: string): Promise<Checkpoint | undefined> {
  const file = path.join(stateDir, name, 'checkpoint.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  return parseCheckpoint(text, file);
}

/** What one crash loop saw. */
export interface LoopResult {
  kills: number;
  /** Checkpoints read right after each kill. */
  afterKill: (Checkpoint | undefined)[];
  /** Exit of each interrupted run (signal kills: code -1 and the signal). */
  interrupted: Exit[];
  final: Exit;
  runs: number;
}

/**
 * Run `args` again and again, interrupting each run with `signal` after a random delay in `[minMs, maxMs)` until
 * `kills` runs were interrupted; then let the next run finish. `onInterrupted` is called after each interrupted run.
 */
export async function interruptLoop(options: {
  args: string[];
  env: NodeJS.ProcessEnv;
  random: () => number;
  kills: number;
  minMs: number;
  maxMs: number;
  signal: NodeJS.Signals;
  onInterrupted?: (exit: Exit, index: number) => Promise<void>;
  /** Start the delay only once this resolves (e.g. the run holds its lock, so its signal handlers are set). */
  ready?: (child: ChildProcess) => Promise<void>;
}): Promise<LoopResult> {
  const result: Omit<LoopResult, 'final'> = { kills: 0, afterKill: [], interrupted: [], runs: 0 };
  for (;;) {
    const { child, exited } = start(options.args, options.env);
    result.runs++;
    if (result.kills >= options.kills) return { ...result, final: await exited };
    const delay = options.minMs + options.random() * (options.maxMs - options.minMs);
    const wait = (options.ready ? options.ready(child) : Promise.resolve()).then(() => sleep(delay));
    const early = await Promise.race([exited, wait.then(() => undefined, () => undefined)]);
    if (early) return { ...result, final: early };
    child.kill(options.signal);
    const exit = await exited;
    result.kills++;
    result.interrupted.push(exit);
    await options.onInterrupted?.(exit, result.kills - 1);
  }
}

/** Resolves once `<stateDir>/<name>/checkpoint.lock` names `pid` (the run is past start-up and holds its lock). */
export async function lockedBy(stateDir: string, name: string, pid: number, timeoutMs = 30_000): Promise<void> {
  const file = path.join(stateDir, name, 'checkpoint.lock');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const text = await readFile(file, 'utf8').catch(() => '');
    try {
      if ((JSON.parse(text) as { pid?: number }).pid === pid) return;
    } catch {
      // not there yet, or being written
    }
    await sleep(20);
  }
  throw new Error(`pid ${pid} did not take the lock ${file} within ${timeoutMs} ms`);
}

/** Wait until the emulator has no queued or processing bulk import job. */
export async function jobsSettled(base: string, key: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const state = (await emulatorState(base, key)) as { jobs?: { queued?: number; processing?: number } };
    if ((state.jobs?.queued ?? 0) === 0 && (state.jobs?.processing ?? 0) === 0) return;
    await sleep(50);
  }
  throw new Error('emulator jobs did not finish');
}

/** Poll the checkpoint of `name` until `predicate` holds. */
export async function waitForCheckpoint(
  stateDir: string,
  name: string,
  predicate: (cp: Checkpoint) => boolean,
  timeoutMs = 30_000,
): Promise<Checkpoint> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const cp = await readCheckpointFile(stateDir, name).catch(() => undefined);
    if (cp && predicate(cp)) return cp;
    await sleep(20);
  }
  throw new Error(`checkpoint of ${name} did not reach the expected state within ${timeoutMs} ms`);
}

/** The rejects file of the pipeline's last run under `stateDir`, as its checkpoint names it (each run writes its own). */
export async function rejectsFileOf(stateDir: string, name: string): Promise<string> {
  const cp = await readCheckpointFile(stateDir, name);
  if (!cp?.rejects) throw new Error(`the checkpoint of ${name} in ${stateDir} names no rejects file`);
  return cp.rejects.path;
}
