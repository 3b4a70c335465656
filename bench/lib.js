// Shared helpers of the benchmark cases (plain Node ESM; the product is imported from ../dist, built by `npm run bench`).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH_DIR, '..');
export const DATA_DIR = path.join(BENCH_DIR, 'data');
export const CLI = path.join(ROOT, 'bin', 'klaviyo-etl.js');
export const API_KEY = 'pk_bench_0000000000000000000000000000';

/** Machine facts recorded with every result. */
export function machineInfo() {
  let cpu = 'unknown';
  try {
    cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {}
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu,
    ramMb: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Generate (once) a synthetic orders CSV (or customers CSV with `profiles`) of `rows` rows in bench/data/. */
export async function ensureData(rows, { profiles = false, log = () => {} } = {}) {
  const file = path.join(DATA_DIR, `${profiles ? 'customers' : 'orders'}-${rows}.csv`);
  if (existsSync(file)) return file;
  await mkdir(DATA_DIR, { recursive: true });
  log(`generating ${file}`);
  const args = [path.join(ROOT, 'scripts', 'generate-orders.js'), '--rows', String(rows), '--out', file + '.tmp'];
  if (profiles) args.push('--profiles');
  await runProcess(process.execPath, args);
  const { rename } = await import('node:fs/promises');
  await rename(file + '.tmp', file);
  return file;
}

/** Run a process to completion; reject on a non-zero exit. */
export async function runProcess(cmd, args, options = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], ...options });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')} exited ${code}`);
  return out;
}

/**
 * Start the emulator CLI as a child process (`klaviyo-etl emulator`). Returns its URL, `state()` (GET
 * /_emulator/state) and `close()`. `args`: more emulator options (`--generate …`, `--latency 250`).
 */
export async function startEmulatorProcess({ limits = 'off', faults, processingRate, maxOldSpaceMb, warmUp = false, args: extra = [] } = {}) {
  const args = [CLI, 'emulator', '--port', '0', '--limits', String(limits), ...extra];
  if (maxOldSpaceMb) args.unshift(`--max-old-space-size=${maxOldSpaceMb}`);
  if (faults) args.push('--faults', JSON.stringify(faults));
  if (processingRate) args.push('--processing-rate', String(processingRate));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  const url = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl).trim());
    });
    child.once('exit', (code) => reject(new Error(`emulator exited ${code} before printing its URL`)));
  });
  if (warmUp) await warmUpEmulator(url);
  return {
    url,
    pid: child.pid,
    /** GET /_emulator/state, of one account (`key`) or of all. */
    async state(key) {
      const res = await fetch(`${url}/_emulator/state${key ? `?key=${encodeURIComponent(key)}` : ''}`);
      return res.json();
    },
    async reset() {
      await fetch(`${url}/_emulator/reset`, { method: 'POST' });
    },
    async close() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/**
 * Warm a fresh emulator up before a measured run, as one warms up any server before benchmarking it: its first bulk
 * requests run unoptimized code (V8 has not compiled the validation paths yet) and took 100–400 ms each instead of
 * ~10 ms, which showed up as a slow first second in the ceiling runs. Eight 1,000-event bulk requests (one event per
 * entry, and orders of three events per entry) under a key of their own (waiting out that account's window when the
 * emulator's limits are scaled down), then `POST /_emulator/reset`, so the measured run starts with an empty emulator
 * and fresh rate-limit windows.
 */
async function warmUpEmulator(url) {
  const headers = {
    authorization: `Klaviyo-API-Key ${API_KEY}warmup`,
    revision: '2026-07-15',
    'content-type': 'application/vnd.api+json',
    accept: 'application/vnd.api+json',
  };
  for (let r = 0; r < 8; r++) {
    const entries = [];
    for (let i = 0; i < 1000; ) {
      const n = r * 1000 + i;
      const per = r % 2 === 0 ? 1 : Math.min(3, 1000 - i);
      const events = Array.from({ length: per }, (_, k) => ({
        type: 'event',
        attributes: {
          properties: { OrderId: `#${n}`, Items: [{ SKU: `SKU-${k}`, Quantity: 1 }] },
          time: '2025-06-01T12:00:00Z',
          value: 19.99,
          value_currency: 'USD',
          unique_id: `warmup-${n}-${k}`,
          backfill: true,
          metric: { data: { type: 'metric', attributes: { name: 'Warm Up' } } },
        },
      }));
      entries.push({ type: 'event-bulk-create', attributes: { profile: { data: { type: 'profile', attributes: { email: `warmup${n}@example.com` } } }, events: { data: events } } });
      i += per;
    }
    const body = JSON.stringify({ data: { type: 'event-bulk-create-job', attributes: { 'events-bulk-create': { data: entries } } } });
    for (;;) {
      const res = await fetch(`${url}/api/event-bulk-create-jobs`, { method: 'POST', headers, body });
      await res.arrayBuffer();
      if (res.status === 202) break;
      // an emulator with scaled-down limits: the warm-up account waits out its own window like any client
      if (res.status !== 429) throw new Error(`emulator warm-up request answered ${res.status}`);
      await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get('retry-after') ?? 1)));
    }
  }
  const res = await fetch(`${url}/_emulator/reset`, { method: 'POST' });
  await res.arrayBuffer();
}

/** Peak resident set (VmHWM, kB) of a live process, or undefined once it has exited. */
function readHwmKb(pid) {
  try {
    const m = /VmHWM:\s*(\d+)\s*kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Run `klaviyo-etl run <pipeline> --json` as a child process with `env`, polling its peak RSS (VmHWM) every
 * 100 ms. Returns `{report, wallMs, peakRssMb}`.
 */
export async function runCli(pipelineFile, { env = {}, args = [], apiKey = API_KEY, nodeFlags = [] } = {}) {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'klaviyo-etl-bench-'));
  const started = performance.now();
  const child = spawn(process.execPath, [...nodeFlags, CLI, 'run', pipelineFile, '--json', '--restart', '--state-dir', stateDir, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, KLAVIYO_API_KEY: apiKey, ...env },
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  let peakKb = 0;
  const poll = setInterval(() => {
    const kb = readHwmKb(child.pid);
    if (kb !== undefined && kb > peakKb) peakKb = kb;
  }, 100);
  const [code] = await once(child, 'exit');
  clearInterval(poll);
  const wallMs = performance.now() - started;
  await rm(stateDir, { recursive: true, force: true });
  let report;
  try {
    report = JSON.parse(out);
  } catch {
    throw new Error(`klaviyo-etl run exited ${code} without a JSON report: ${out.slice(0, 500)}`);
  }
  return { report, exitCode: code, wallMs, peakRssMb: Math.round(peakKb / 1024) };
}

/** Write a pipeline file into a temp dir (the cases' pipelines are built in code: absolute source paths). */
export async function writePipeline(name, yamlText) {
  const dir = path.join(DATA_DIR, 'pipelines');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(file, yamlText);
  return file;
}

/** Bare csv-parse (`columns: true`) over a file: rows and seconds. */
export async function bareCsvParse(file) {
  const started = performance.now();
  let rows = 0;
  const parser = createReadStream(file, { highWaterMark: 256 * 1024 }).pipe(parse({ columns: true }));
  for await (const _ of parser) rows++;
  const secs = (performance.now() - started) / 1000;
  return { rows, seconds: secs, rowsPerSecond: Math.round(rows / secs) };
}

/**
 * The least time (ms) a tier allows for `n` requests under its sliding form: request k may start no earlier than
 * request k-burst + 1 s and request k-steady + 60 s. Time from the first request's start to the last one's start.
 * Recorded for comparison with the figures before 2026-12-02; Klaviyo's windows are fixed (see leastTimeFixedMs).
 */
export function leastTimeMs(n, { burst, steady }) {
  const t = new Array(n).fill(0);
  for (let k = 1; k < n; k++) {
    t[k] = Math.max(t[k - 1], k >= burst ? t[k - burst] + 1000 : 0, k >= steady ? t[k - steady] + 60_000 : 0);
  }
  return n > 0 ? t[n - 1] : 0;
}

/**
 * The least time (ms) a tier allows for `n` requests under Klaviyo's fixed windows ("a fixed-window rate limiting
 * algorithm with two distinct windows: burst (1-second window) and steady (1-minute window)", Klaviyo's rate-limit
 * guide) aligned as the emulator aligns them (whole seconds and minutes of the clock), the first request counted at
 * `firstAt` (epoch ms): every request as early as both windows allow (which is the fastest any client can do from
 * that first request on). Time from the first request's count to the last one's. A run cannot beat it, so least /
 * actual ≤ 1.
 */
export function leastTimeFixedMs(n, { burst, steady }, firstAt) {
  let t = firstAt;
  let burstWindow = -1;
  let inBurst = 0;
  let steadyWindow = -1;
  let inSteady = 0;
  for (let k = 0; k < n; ) {
    const b = Math.floor(t / 1000);
    const s = Math.floor(t / 60_000);
    if (b !== burstWindow) [burstWindow, inBurst] = [b, 0];
    if (s !== steadyWindow) [steadyWindow, inSteady] = [s, 0];
    if (inSteady >= steady) t = (s + 1) * 60_000;
    else if (inBurst >= burst) t = (b + 1) * 1000;
    else {
      inBurst++;
      inSteady++;
      k++;
    }
  }
  return n > 0 ? t - firstAt : 0;
}

/**
 * When the emulator let an endpoint's requests through its rate limits (`requests.admitted` of GET /_emulator/state,
 * the emulator's clock, which is this machine's): `{count, firstAt, lastAt, spanMs}`.
 */
export async function admittedRequests(emu, apiKey, endpoint) {
  const a = (await emu.state(apiKey)).requests.admitted?.[endpoint];
  if (!a) return { count: 0, firstAt: undefined, lastAt: undefined, spanMs: 0 };
  return { count: a.count, firstAt: a.first, lastAt: a.last, spanMs: a.last - a.first };
}

/**
 * An example pipeline of `pipelines/examples/` with its own name, an absolute source path and extra destination lines:
 * the bench runs exactly the example's transform. The examples end with `destination:\n  type: klaviyo\n`.
 */
function fromExample(example, name, csvFile, destination) {
  const text = readFileSync(path.join(ROOT, 'pipelines', 'examples', example), 'utf8');
  const out = text
    .replace(/^name: .*$/m, `name: ${name}`)
    .replace(/^(  path: ).*$/m, `$1${JSON.stringify(csvFile)}`);
  if (out === text || !out.endsWith('destination:\n  type: klaviyo\n')) throw new Error(`unexpected shape of pipelines/examples/${example}`);
  return out + destination;
}

/** The shopify-orders-backfill example pipeline with an absolute source path. */
export function ordersPipeline(name, csvFile, { destination = '' } = {}) {
  return fromExample('shopify-orders-backfill.yaml', name, csvFile, destination);
}

/** The customers-csv example pipeline with an absolute source path. */
export function customersPipeline(name, csvFile, { destination = '' } = {}) {
  return fromExample('customers-csv.yaml', name, csvFile, destination);
}

/** Customers CSV → one event per row (exactly one event per input row: the ceiling, SDK and fault cases). */
export function signupEventsPipeline(name, csvFile, { destination = '' } = {}) {
  return `version: 1
name: ${name}
source:
  type: csv
  path: ${JSON.stringify(csvFile)}
transform:
  type: event
  metric: Bench Signup
  unique_id: { template: "signup-{{email}}" }
  profile:
    email: { column: email, type: email }
  properties:
    tier: loyalty_tier
    city: city
destination:
  type: klaviyo
${destination}`;
}

/** `rateLimits` lines of a destination: the Klaviyo tiers of `keys` multiplied by `factor` (as the loader's `rateScale`). */
export function scaledLimits(factor, keys, tiers) {
  const lines = keys.map((k) => {
    const t = tiers[k];
    return `    "${k}": { burst: ${Math.max(1, Math.floor(t.burst * factor))}, steady: ${Math.max(1, Math.floor(t.steady * factor))} }`;
  });
  return `  rateLimits:\n${lines.join('\n')}\n`;
}

/** Destination lines lifting the client-side pacing (for runs against an emulator with limits off). */
export const UNPACED = `  rateLimits:
    "POST /api/event-bulk-create-jobs": { burst: 1000000, steady: 60000000 }
    "POST /api/profile-bulk-import-jobs": { burst: 1000000, steady: 60000000 }
    "GET /api/profile-bulk-import-jobs/{job_id}": { burst: 1000000, steady: 60000000 }
`;

export async function fileSize(file) {
  return (await stat(file)).size;
}
