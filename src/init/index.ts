/**
 * `klaviyo-etl init`: a starter pipeline from a CSV file's header and first rows, or from a PostgreSQL table.
 * Recognised columns are mapped (src/init/columns.ts); every other column is written as a commented property line,
 * so nothing is sent that the user did not choose, and nothing is left out silently. The text always validates.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import iconv from 'iconv-lite';
import type * as pg from 'pg';
import { EtlError } from '../core/errors.js';
import { lazyModule } from '../core/lazy.js';
import { guessEncoding, toUtf8, type EncodingGuess } from '../extract/encoding.js';
import { postgresTypes, quoteQualifiedName } from '../extract/postgres.js';
import { orderIdColumn, recogniseColumns, type ColumnGuess, type Role } from './columns.js';

const pgLib = lazyModule<typeof pg>('pg');

/** Options of {@link initPipeline}. */
export interface InitOptions {
  /** A CSV file whose header (and first rows, for date formats) describe the columns. */
  csv?: string;
  /** Or a PostgreSQL table (optionally schema-qualified), read with `databaseUrl`. */
  table?: string;
  /** @default $DATABASE_URL (written to the file as `${DATABASE_URL}`, never as the URL itself) */
  databaseUrl?: string;
  /** `profile` or `event` (`Placed Order`). @default event when an order id is recognised, else profile */
  type?: 'profile' | 'event';
  /** Pipeline name. @default from the file or table name */
  name?: string;
  /** Where the pipeline file will be written (the source path is written relative to it). @default the current directory */
  output?: string;
  /** Rows read for date formats. @default 50 */
  sampleRows?: number;
  env?: NodeJS.ProcessEnv;
}

/** The starter pipeline. */
export interface InitResult {
  /** The pipeline file's text (YAML with comments). */
  text: string;
  type: 'profile' | 'event';
  name: string;
  columns: ColumnGuess[];
}

interface Table {
  columns: string[];
  samples: Record<string, string>[];
  /** The source section's YAML lines (indented by two). */
  source: string[];
  what: string;
}

/** Write nothing: return the starter pipeline for a CSV file or a PostgreSQL table. */
export async function initPipeline(options: InitOptions): Promise<InitResult> {
  if ((options.csv === undefined) === (options.table === undefined)) throw new EtlError('USAGE', 'Expected a CSV file or --table (one of them)');
  const env = options.env ?? process.env;
  const outDir = path.dirname(path.resolve(options.output ?? 'pipeline.yaml'));
  const table = options.csv !== undefined ? await csvTable(options.csv, outDir, options.sampleRows ?? 50) : await postgresTable(options.table!, options.databaseUrl ?? env.DATABASE_URL, options.sampleRows ?? 50);
  const columns = recogniseColumns(table.columns, table.samples);
  // an order id by name (or Shopify's `Name`) and a date make an orders table; a bare `id` only when asked for events
  const named = orderIdColumn(columns, false);
  const type = options.type ?? (named && columns.some((c) => c.date) ? 'event' : 'profile');
  const order = type === 'event' ? (named ?? orderIdColumn(columns, true)) : undefined;
  const base = options.csv !== undefined ? path.basename(options.csv).replace(/\.(csv|tsv|txt)(\.gz)?$/i, '') : options.table!.split('.').pop()!;
  const name = options.name ?? (base.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '') || 'pipeline');
  const lines = [
    `# Starter pipeline written by \`klaviyo-etl init\` from ${table.what}.`,
    '# Recognised columns are mapped; the others are commented out: uncomment what Klaviyo should get.',
    '# Then: klaviyo-etl validate <this file>, klaviyo-etl run <this file> --dry-run, klaviyo-etl check <this file>.',
    'version: 1',
    `name: ${name}`,
    'source:',
    ...table.source,
    'transform:',
    ...(type === 'event' ? eventLines(columns, order, table.samples) : profileLines(columns)),
    'destination:',
    '  type: klaviyo',
  ];
  return { text: lines.join('\n') + '\n', type, name, columns };
}

/** A YAML scalar, plain when that is safe in block and flow context alike, else double-quoted (JSON is YAML). */
const y = (value: string): string =>
  /^[A-Za-z_][A-Za-z0-9_ ./-]*$/.test(value) && !value.endsWith(' ') && !/^(true|false|null|yes|no|on|off|y|n)$/i.test(value) ? value : JSON.stringify(value);

/** A field mapping of a recognised column (`columns`: all of them, for a phone's country column). */
function field(g: ColumnGuess, columns: readonly ColumnGuess[] = []): string {
  if (g.date) return `{ column: ${y(g.column)}, type: ${g.date.type}, format: ${y(g.date.format)}${g.date.zone ? `, zone: ${g.date.zone}` : ''} }`;
  if (g.role === 'email') return `{ column: ${y(g.column)}, type: email }`;
  if (g.role === 'phone_number') {
    const country = columns.find((c) => c.role === 'country');
    return `{ column: ${y(g.column)}, type: phone, region: US${country ? `, regionColumn: ${y(country.column)}` : ''} }`;
  }
  if (g.role === 'value') return `{ column: ${y(g.column)}, type: number }`;
  return y(g.column);
}

/** A property line: mapped, or commented when not recognised or when its date format is ambiguous. */
function propertyLine(g: ColumnGuess, indent: string): string {
  const key = y(g.column);
  if (g.date?.ambiguous) {
    return `${indent}# ${key}: ${field(g)}   # the samples also fit format ${y(g.date.ambiguous)}: pick the right one and uncomment`;
  }
  const note = g.date ? `   # ${g.date.type}, format detected from the sample rows${g.date.zone ? '; zone assumed (the values carry no offset)' : ''}` : '';
  return g.date ? `${indent}${key}: ${field(g)}${note}` : `${indent}# ${key}: ${key}`;
}

const PROFILE_ROLES: Role[] = ['email', 'phone_number', 'external_id', 'first_name', 'last_name', 'organization', 'title'];
const LOCATION_ROLES: Partial<Record<Role, string>> = { address1: 'address1', address2: 'address2', city: 'city', region: 'region', country: 'country', zip: 'zip' };

function profileLines(columns: ColumnGuess[]): string[] {
  const lines = ['  type: profile', '  profile:'];
  for (const role of PROFILE_ROLES) {
    const g = columns.find((c) => c.role === role);
    if (g) lines.push(`    ${role}: ${field(g, columns)}${role === 'phone_number' ? '   # region: for numbers without a +country code' : ''}`);
  }
  if (!columns.some((c) => c.role === 'email' || c.role === 'phone_number' || c.role === 'external_id')) {
    lines.push('    # no email, phone or customer id column was recognised: a profile needs one of them');
    lines.push(`    external_id: ${y(columns[0]?.column ?? 'id')}`);
  }
  const location = columns.filter((c) => c.role && LOCATION_ROLES[c.role]);
  if (location.length > 0) lines.push('    location:', ...location.map((g) => `      ${LOCATION_ROLES[g.role!]}: ${y(g.column)}`));
  const rest = columns.filter((c) => !c.role || c.role === 'order_id' || c.role === 'value' || c.role === 'value_currency' || c.role === 'line_item');
  lines.push(...propertiesBlock(rest, '    '));
  return lines;
}

/** `properties:` with the mapped (dated) columns and the others commented; commented whole when nothing is mapped. */
function propertiesBlock(rest: ColumnGuess[], indent: string): string[] {
  if (rest.length === 0) return [];
  const mapped = rest.some((g) => g.date && !g.date.ambiguous);
  return [`${indent}${mapped ? '' : '# '}properties:`, ...rest.map((g) => propertyLine(g, `${indent}  `))];
}

function eventLines(columns: ColumnGuess[], order: ColumnGuess | undefined, samples: Record<string, string>[]): string[] {
  const time = columns.find((c) => c.date && !c.date.ambiguous && /creat|placed|order|date|time/i.test(c.column)) ?? columns.find((c) => c.date && !c.date.ambiguous);
  const email = columns.find((c) => c.role === 'email');
  const phone = columns.find((c) => c.role === 'phone_number');
  const value = columns.find((c) => c.role === 'value');
  const currency = columns.find((c) => c.role === 'value_currency');
  const idColumn = order?.column ?? columns[0]?.column ?? 'id';
  const lines = ['  type: event', '  metric: Placed Order', `  unique_id: { template: ${y(`order-{{${idColumn}}}`)} }`];
  if (time) lines.push(`  time: ${field(time)}`);
  else lines.push('  # time: { column: <order date>, type: datetime, format: iso }   # no date column was recognised: Klaviyo uses the time it receives the event');
  if (value) lines.push(`  value: ${field(value)}`);
  if (currency) lines.push(`  value_currency: ${y(currency.column)}`);
  lines.push('  profile:');
  if (email) lines.push(`    email: ${field(email)}`);
  if (phone) lines.push(`    phone_number: ${field(phone, columns)}`);
  if (!email && !phone) lines.push('    # no email or phone column was recognised: an event needs a profile', `    external_id: ${y(idColumn)}`);
  const used = new Set([time, email, phone, value, currency].filter(Boolean).map((g) => g!.column));
  const repeats = order !== undefined && samples.some((r, i) => i > 0 && r[order.column] !== '' && r[order.column] === samples[i - 1]![order.column]);
  lines.push('  properties:', `    OrderId: ${y(idColumn)}`);
  used.add(idColumn);
  const items = columns.filter((c) => c.role === 'line_item');
  for (const g of columns.filter((c) => !used.has(c.column) && !(repeats && c.role === 'line_item'))) lines.push(propertyLine(g, '    '));
  if (repeats && items.length > 0) {
    lines.push(`  group:   # consecutive rows with the same ${idColumn} are one order (one row per line item)`, `    by: ${y(idColumn)}`, '    items:');
    for (const g of items) lines.push(`      ${y(g.column)}: ${y(g.column)}`);
  }
  return lines;
}

/** Bytes read from the start of a CSV file to tell its encoding and its delimiter. */
const HEAD_BYTES = 1024 * 1024;

/**
 * Header and first rows of a CSV file, decoded as the csv source will read it ({@link encodingLines}); delimiter: the
 * most frequent of `,` `;` tab `|` in the decoded header line.
 */
async function csvTable(file: string, outDir: string, sampleRows: number): Promise<Table> {
  const abs = path.resolve(file);
  const rows: string[][] = [];
  try {
    const head = await readHead(abs, HEAD_BYTES);
    const guess = guessEncoding(head, head.length === HEAD_BYTES);
    const first = iconv.decode(head, guess.encoding).split(/\r?\n/)[0] ?? '';
    const delimiter = [',', ';', '\t', '|'].map((d) => ({ d, n: first.split(d).length })).sort((a, b) => b.n - a.n)[0]!.d;
    const bytes = createReadStream(abs);
    const text = guess.encoding === 'utf8' ? bytes : Readable.from(toUtf8(bytes, guess.encoding));
    const parser = text.pipe(parse({ delimiter, bom: true, relax_column_count: true, to_line: sampleRows + 1, skip_empty_lines: true }));
    try {
      for await (const row of parser) rows.push(row as string[]);
    } finally {
      bytes.destroy();
    }
    const [header = [], ...data] = rows;
    if (header.length === 0) throw new EtlError('SOURCE_READ', `${file} has no header line`);
    const samples = data.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
    const rel = path.relative(outDir, abs).split(path.sep).join('/');
    const source = ['  type: csv', `  path: ${y(rel)}   # relative to this file`, ...encodingLines(guess)];
    if (delimiter !== ',') source.push(`  delimiter: ${y(delimiter)}`);
    const encoding = guess.encoding === 'utf8' ? '' : `, ${guess.encoding}`;
    return { columns: header, samples, source, what: `${path.basename(file)} (${header.length} columns, ${samples.length} sample rows${encoding})` };
  } catch (error) {
    if (error instanceof EtlError) throw error;
    throw new EtlError('SOURCE_NOT_FOUND', `Cannot read ${file}: ${(error as Error).message}`);
  }
}

/** The source's `encoding:` line (none for UTF-8, the default), saying where it comes from. */
function encodingLines(guess: EncodingGuess): string[] {
  if (guess.encoding === 'utf8') return [];
  if (guess.by === 'bom') return [`  encoding: ${guess.encoding}   # the file starts with a ${guess.encoding.toUpperCase()} byte order mark`];
  return [
    '  # encoding guessed: the file is not UTF-8, so it is taken for Windows-1252 (what Excel on Windows writes).',
    '  # If accented letters look wrong in `klaviyo-etl run <this file> --dry-run --show 5`, set the encoding the file',
    '  # was saved in instead (latin1, iso-8859-15, utf-16le… any name iconv-lite knows), or save it as UTF-8 and remove the line.',
    `  encoding: ${guess.encoding}`,
  ];
}

/** The first `n` bytes of a file (all of it when shorter). */
async function readHead(file: string, n: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(n);
    const { bytesRead } = await handle.read(buffer, 0, n, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Columns and first rows of a PostgreSQL table, as the postgres source would read them. */
async function postgresTable(table: string, url: string | undefined, sampleRows: number): Promise<Table> {
  if (!url) throw new EtlError('USAGE', 'Set DATABASE_URL (or give --database-url) to read a PostgreSQL table');
  const client = new (pgLib().Client)({ connectionString: url, types: postgresTypes('string'), application_name: 'klaviyo-etl-init' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const result = await client.query(`SELECT * FROM ${quoteQualifiedName(table)} LIMIT ${Math.max(1, Math.floor(sampleRows))}`);
    const columns = result.fields.map((f) => f.name);
    const samples = result.rows.map((r: Record<string, unknown>) => Object.fromEntries(columns.map((c) => [c, r[c] == null ? '' : String(r[c])])));
    const norm = (c: string) => c.toLowerCase();
    const updated = columns.find((c) => /^(updated_at|modified_at|updated|last_modified|updatedat)$/.test(norm(c)));
    const id = columns.find((c) => norm(c) === 'id');
    const source = ['  type: postgres', '  url: ${DATABASE_URL}', `  table: ${y(table)}`];
    source.push(updated && id ? `  cursor: [${y(updated)}, ${y(id)}]   # nightly runs read only rows changed since the last run` : '  # cursor: [updated_at, id]   # a change timestamp and a key make nightly runs incremental');
    return { columns, samples, source, what: `the PostgreSQL table ${table} (${columns.length} columns, ${samples.length} sample rows)` };
  } catch (error) {
    if (error instanceof EtlError) throw error;
    throw new EtlError('SOURCE_READ', `Cannot read the PostgreSQL table ${table}: ${(error as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
