#!/usr/bin/env node
// Deterministic synthetic data generator (plain Node ESM, no build needed).
//
//   node scripts/generate-orders.js --rows 1000000 --out /tmp/orders.csv [--seed 42] [--format csv|ndjson] [--profiles]
//
// Orders: a Shopify-style export with one row per line item; only the first row of an order carries the
// order-level fields (same columns as fixtures/orders/shopify-orders.csv). `--rows` counts rows (line items).
// `--profiles`: a customers file instead (same columns as fixtures/customers.csv), one row per customer.
// Output is streamed in ~256 KB chunks with back-pressure (constant memory); the same seed gives the same bytes.
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';

export const ORDER_COLUMNS = [
  'Name',
  'Email',
  'Financial Status',
  'Paid at',
  'Fulfillment Status',
  'Accepts Marketing',
  'Currency',
  'Subtotal',
  'Shipping',
  'Taxes',
  'Total',
  'Discount Code',
  'Discount Amount',
  'Created at',
  'Lineitem quantity',
  'Lineitem name',
  'Lineitem price',
  'Lineitem sku',
  'Billing Name',
  'Billing Phone',
  'Billing City',
  'Billing Zip',
  'Billing Country',
  'Id',
];

export const CUSTOMER_COLUMNS = [
  'email',
  'phone',
  'first_name',
  'last_name',
  'company',
  'city',
  'country',
  'zip',
  'loyalty_tier',
  'signup_date',
];

const FIRST = ['Ava', 'Liam', 'Olivia', 'Noah', 'Emma', 'Oliver', 'Sophia', 'Elijah', 'Amelia', 'James', 'Isla', 'Harry', 'Mia', 'George', 'Chloé', 'José', 'Zoë', 'Freya', 'Arthur', 'Grace'];
const LAST = ['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Taylor', 'Wilson', "O'Brien", 'Evans', 'Thomas', 'Roberts', 'Müller', 'Walker', 'Wright', 'Hughes', 'Green', 'Hall'];
const PRODUCTS = [
  ['Organic Cotton Tee - Black / M', 'TEE-BLK-M', 28],
  ['Organic Cotton Tee - White / L', 'TEE-WHT-L', 28],
  ['Merino Beanie', 'BEANIE-MER', 35],
  ['Canvas Tote, Large', 'TOTE-CNV-L', 42],
  ['Ceramic Pour-Over Set', 'POUR-CER', 64],
  ['Cold Brew Coffee 1kg', 'COF-CB-1KG', 24.5],
  ['Trail Socks (3 pack)', 'SOCK-TRL-3', 19.99],
  ['Waxed "Field" Jacket', 'JKT-WAX-FLD', 189],
  ['Gift Card $50', 'GC-50', 50],
  ['Leather Card Holder', 'LTH-CARD', 45],
  ['Linen Napkins x4', 'LIN-NAP-4', 32],
  ['Stainless Water Bottle 750ml', 'BTL-SS-750', 29.95],
];
const PLACES = [
  ['US', 'Brooklyn', '11211', '+1', 'USD', '-0500'],
  ['US', 'Austin', '78701', '+1', 'USD', '-0600'],
  ['US', 'Portland', '97205', '+1', 'USD', '-0800'],
  ['GB', 'London', 'SW1A 1AA', '+44', 'GBP', '+0000'],
  ['GB', 'Manchester', 'M1 1AE', '+44', 'GBP', '+0000'],
  ['US', 'Chicago', '60601', '+1', 'USD', '-0600'],
];
const STATUSES = ['paid', 'paid', 'paid', 'paid', 'refunded', 'partially_refunded', 'pending'];
const TIERS = ['bronze', 'silver', 'gold', 'platinum'];
const COMPANIES = ['', '', 'Acme Corp', 'Globex', 'Initech', 'Umbrella Ltd', 'Wayne Enterprises'];

/** mulberry32: a tiny, fast, seedable PRNG. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function csvField(value) {
  const s = String(value);
  if (s === '') return '';
  if (/[",\r\n]/.test(s)) return '"' + s.replace(/"/g, '""') + '"';
  return s;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// Area codes / mobile prefixes that libphonenumber considers valid (the 555 exchange and Ofcom's drama range
// 07700 900xxx are not), so generated profiles are rejected only when a test wants them to be.
const US_AREAS = ['212', '213', '305', '312', '404', '415', '503', '512', '617', '646', '702', '720', '206', '214', '303', '310', '619', '808'];
const GB_MOBILE = ['7912', '7400', '7387', '7123', '7956'];

function phoneFor(place, r, national) {
  if (place[3] === '+1') {
    const area = US_AREAS[Math.floor(r() * US_AREAS.length)];
    let exchange = 200 + Math.floor(r() * 800);
    if (exchange === 555 || exchange % 100 === 11) exchange++;
    const line = String(Math.floor(r() * 10000)).padStart(4, '0');
    return national ? `(${area}) ${exchange}-${line}` : `+1${area}${exchange}${line}`;
  }
  const prefix = GB_MOBILE[Math.floor(r() * GB_MOBILE.length)];
  const rest = String(Math.floor(r() * 1000000)).padStart(6, '0');
  return national ? `0${prefix} ${rest}` : `+44${prefix}${rest}`;
}

/** Yields rows (arrays in column order) of an orders export. */
function* orderRows(rows, seed) {
  const r = rng(seed);
  const pick = (arr) => arr[Math.floor(r() * arr.length)];
  let produced = 0;
  let orderNo = 1001;
  let time = Date.UTC(2024, 0, 1, 8, 0, 0);
  // Orders are ~10 minutes apart at most, closer for big files so the last one is still before 2026: Klaviyo refuses
  // event times more than a year ahead, and a big file must not turn into a file of rejects. (2.5 rows per order.)
  const maxStep = Math.min(600_000, Math.floor((2 * (Date.UTC(2026, 0, 1) - time)) / (rows / 2.5)));
  while (produced < rows) {
    const items = 1 + Math.floor(r() * 4);
    const first = pick(FIRST);
    const last = pick(LAST);
    const place = pick(PLACES);
    const customer = Math.floor(r() * Math.max(50, rows / 3));
    const email = `${first.toLowerCase().normalize('NFD').replace(/[^a-z]/g, '')}.${customer}@example.com`;
    time += Math.floor(r() * maxStep);
    const d = new Date(time);
    const created = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ${place[5]}`;
    const lines = [];
    let subtotal = 0;
    for (let i = 0; i < items; i++) {
      const p = pick(PRODUCTS);
      const qty = 1 + Math.floor(r() * 3);
      subtotal += p[2] * qty;
      lines.push([qty, p[0], p[2].toFixed(2), p[1]]);
    }
    const shipping = subtotal > 100 ? 0 : 7.5;
    const hasDiscount = r() < 0.2;
    const discount = hasDiscount ? Math.round(subtotal * 10) / 100 : 0;
    const taxes = Math.round((subtotal - discount) * 8) / 100;
    const total = subtotal - discount + shipping + taxes;
    const status = pick(STATUSES);
    for (let i = 0; i < items && produced < rows; i++, produced++) {
      const [qty, name, price, sku] = lines[i];
      if (i === 0) {
        yield [
          `#${orderNo}`,
          email,
          status,
          status === 'pending' ? '' : created,
          r() < 0.8 ? 'fulfilled' : 'unfulfilled',
          r() < 0.6 ? 'yes' : 'no',
          place[4],
          subtotal.toFixed(2),
          shipping.toFixed(2),
          taxes.toFixed(2),
          total.toFixed(2),
          hasDiscount ? 'WELCOME10' : '',
          discount.toFixed(2),
          created,
          qty,
          name,
          price,
          sku,
          `${first} ${last}`,
          phoneFor(place, r, r() < 0.5),
          place[1],
          place[2],
          place[0],
          String(5_000_000_000 + orderNo),
        ];
      } else {
        yield [`#${orderNo}`, email, '', '', '', '', '', '', '', '', '', '', '', created, qty, name, price, sku, '', '', '', '', '', ''];
      }
    }
    orderNo++;
  }
}

/** Yields rows of a customers file. */
function* customerRows(rows, seed) {
  const r = rng(seed);
  const pick = (arr) => arr[Math.floor(r() * arr.length)];
  for (let n = 0; n < rows; n++) {
    const first = pick(FIRST);
    const last = pick(LAST);
    const place = pick(PLACES);
    const email = `${first.toLowerCase().normalize('NFD').replace(/[^a-z]/g, '')}.${last.toLowerCase().normalize('NFD').replace(/[^a-z]/g, '')}.${n}@example.com`;
    const y = 2019 + Math.floor(r() * 6);
    yield [
      email,
      phoneFor(place, r, r() < 0.5),
      first,
      last,
      pick(COMPANIES),
      place[1],
      place[0],
      place[2],
      pick(TIERS),
      `${pad(1 + Math.floor(r() * 12))}/${pad(1 + Math.floor(r() * 28))}/${y}`,
    ];
  }
}

/**
 * Write a generated file. Returns the number of rows written.
 * @param {{rows: number, out: string, seed?: number, format?: 'csv'|'ndjson', profiles?: boolean}} options
 */
export async function generate({ rows, out, seed = 1, format = 'csv', profiles = false }) {
  await mkdir(dirname(out), { recursive: true });
  const file = createWriteStream(out);
  let sink = file;
  if (out.endsWith('.gz')) {
    sink = createGzip();
    sink.pipe(file);
  }
  const columns = profiles ? CUSTOMER_COLUMNS : ORDER_COLUMNS;
  const source = profiles ? customerRows(rows, seed) : orderRows(rows, seed);
  let buffer = format === 'csv' ? columns.map(csvField).join(',') + '\n' : '';
  let count = 0;
  for (const row of source) {
    if (format === 'csv') {
      let line = csvField(row[0]);
      for (let i = 1; i < row.length; i++) line += ',' + csvField(row[i]);
      buffer += line + '\n';
    } else {
      const obj = {};
      for (let i = 0; i < columns.length; i++) obj[columns[i]] = row[i];
      buffer += JSON.stringify(obj) + '\n';
    }
    count++;
    if (buffer.length > 262_144) {
      if (!sink.write(buffer)) await once(sink, 'drain');
      buffer = '';
    }
  }
  sink.end(buffer);
  await once(file, 'finish');
  return count;
}

function parseArgs(argv) {
  const args = { rows: 1000, seed: 1, format: 'csv', profiles: false, out: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`Expected a value after ${a}`);
      return v;
    };
    if (a === '--rows') args.rows = Number.parseInt(next(), 10);
    else if (a === '--out') args.out = next();
    else if (a === '--seed') args.seed = Number.parseInt(next(), 10);
    else if (a === '--format') args.format = next();
    else if (a === '--profiles') args.profiles = true;
    else if (a === '--help' || a === '-h') args.help = true;
    else throw new Error(`Unknown argument ${a}`);
  }
  if (args.help) return args;
  if (!Number.isInteger(args.rows) || args.rows < 0) throw new Error(`Expected \`--rows\` to be a non-negative integer, got \`${args.rows}\``);
  if (!Number.isInteger(args.seed)) throw new Error(`Expected \`--seed\` to be an integer, got \`${args.seed}\``);
  if (args.format !== 'csv' && args.format !== 'ndjson') throw new Error(`Expected \`--format\` to be csv or ndjson, got \`${args.format}\``);
  if (!args.out) throw new Error('Expected `--out <path>`');
  return args;
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  try {
    const args = parseArgs(process.argv.slice(2));
    if (args.help) {
      process.stdout.write('usage: generate-orders.js --rows N --out path [--seed S] [--format csv|ndjson] [--profiles]\n');
    } else {
      const started = process.hrtime.bigint();
      const n = await generate(args);
      const secs = Number(process.hrtime.bigint() - started) / 1e9;
      process.stderr.write(`wrote ${n} rows to ${args.out} in ${secs.toFixed(2)}s (${Math.round(n / secs)} rows/s)\n`);
    }
  } catch (error) {
    process.stderr.write(`generate-orders: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  }
}
