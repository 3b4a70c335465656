// Exports at the rate-limit ceiling under real-world latency (issue 13): events and list members read from a
// generated emulator account (`--generate`) that answers every /api request after 250 ms and enforces Klaviyo's
// tiers (`--limits klaviyo`), once with the source's default partitioned cursors and once with one cursor
// (`concurrency: 1`, the sequential way), each into a CSV file through the CLI (child process, peak RSS polled).
// Efficiency = the least time the endpoint's tier allows for the same number of requests (fixed windows, from the
// run's first request, as in ceiling.js) / the span from the first to the last request the emulator admitted.
// The source paces L endpoints at the documented 700/min (the spec and the emulator allow 750/min), so members
// top out at 700/750 = 0.933 of the spec's least time when steady-bound.
// Before the events runs, the emulator alone (emulatorAlone below): a minimal reader making the same requests with
// the source's default number of cursors (and 8 times as many), JSON.parse only, so the report holds three times for
// the events export: the tiers' least time, the best any client can do here, and the CLI's (docs/performance.md §9).
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { defaultConcurrency } from '../../dist/extract/klaviyo.js';
import { ENDPOINTS, pacingLimits } from '../../dist/klaviyo/endpoints.js';
import { Agent } from 'undici';
import { API_KEY, admittedRequests, leastTimeFixedMs, runCli, startEmulatorProcess, writePipeline } from '../lib.js';

export const description = 'exports at the ceiling with 250 ms latency: events and list members, partitioned vs one cursor, peak RSS';

const LATENCY_MS = 250;
/** Ranges the events source reads at once by default (4: its bound on records in flight). */
const EVENTS_CURSORS = defaultConcurrency({ endpoint: 'GET /api/events', pageSize: 1000 });
/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/** CPU seconds a process has used so far (/proc/<pid>/stat utime + stime), or undefined off Linux. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return undefined;
  }
}

/** Busy and total CPU seconds of the whole machine so far (/proc/stat), or undefined off Linux. */
function machineCpu() {
  try {
    const [, ...t] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    const total = t.reduce((a, b) => a + b, 0);
    const idle = t[3] + (t[4] ?? 0);
    return { busy: (total - idle) / USER_HZ, total: total / USER_HZ };
  } catch {
    return undefined;
  }
}

/** Measures the emulator's and the machine's CPU over a span: `stop()` → shares (1 = one core; machine: of all cores). */
function cpuMeter(emu) {
  const emu0 = cpuSeconds(emu.pid);
  const machine0 = machineCpu();
  const t0 = performance.now();
  return () => {
    const secs = (performance.now() - t0) / 1000;
    const emu1 = cpuSeconds(emu.pid);
    const machine1 = machineCpu();
    return {
      emulatorCpuS: emu0 === undefined || emu1 === undefined ? undefined : Number((emu1 - emu0).toFixed(2)),
      emulatorCores: emu0 === undefined || emu1 === undefined ? undefined : Number(((emu1 - emu0) / secs).toFixed(2)),
      machineBusy: machine0 && machine1 ? Number(((machine1.busy - machine0.busy) / (machine1.total - machine0.total)).toFixed(2)) : undefined,
    };
  };
}

async function listId(emu, apiKey) {
  const res = await fetch(`${emu.url}/api/lists?filter=equals(name,"Generated list")`, {
    headers: { authorization: `Klaviyo-API-Key ${apiKey}`, revision: '2026-07-15', accept: 'application/vnd.api+json' },
  });
  const body = await res.json();
  return body.data[0].id;
}

/** Whole-second ISO form the events filter takes (as the source sends its bounds). */
const filterTime = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+00:00');

/**
 * The emulator alone: the least any client must do to read every event, so the best any client can do on this
 * machine against this emulator with as many cursors. The requests the CLI's source makes: the first and last
 * datetime (a sorted page of size 1 each), then `concurrency` workers reading time ranges of whole seconds,
 * page[size]=1000 sorted by datetime, following links.next; while a worker is idle, a range is split at the
 * middle of what is left of it (as the source splits its ranges: generated events are not spread evenly over time,
 * and fixed equal ranges left one worker reading alone at the end). Each body is JSON.parse'd only to count its
 * events and find the next link (nothing a client could skip), then dropped. Its own API key: its own account (same
 * seed) and rate-limit windows. 429s (none expected below XL's 350/s) are waited out as Retry-After says.
 */
async function emulatorAlone(ctx, emu, { label, concurrency, expectedRows }) {
  const apiKey = `${API_KEY}${label}`.replace(/[^A-Za-z0-9_]/g, '_');
  const headers = { authorization: `Klaviyo-API-Key ${apiKey}`, revision: '2026-07-15', accept: 'application/vnd.api+json' };
  // the CLI's HTTP client (undici, a keep-alive Agent as src/klaviyo/client.ts makes it): fetch() cost more per page
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: null });
  const get = async (pathAndQuery) => {
    for (;;) {
      const res = await agent.request({ origin: emu.url, path: pathAndQuery, method: 'GET', headers });
      if (res.statusCode === 429) {
        await res.body.dump();
        await new Promise((r) => setTimeout(r, 1000 * Number(res.headers['retry-after'] ?? 1)));
        continue;
      }
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`emulator answered ${res.statusCode} to GET ${pathAndQuery}`);
      return JSON.parse(text);
    }
  };
  const at = (event) => Date.parse(event.attributes.datetime);
  const firstPage = ({ lo, hi }) => `/api/events?page[size]=1000&sort=datetime&filter=${encodeURIComponent(`greater-or-equal(datetime,${filterTime(lo)}),less-than(datetime,${filterTime(hi)})`)}`;
  ctx.log(`${label}: events, ${concurrency} cursors, JSON.parse only`);
  const meter = cpuMeter(emu);
  const t0 = performance.now();
  const edge = async (sort) => at((await get(`/api/events?page[size]=1&sort=${sort}`)).data[0]);
  const pending = [{ lo: Math.floor((await edge('datetime')) / 1000) * 1000, hi: Math.floor((await edge('-datetime')) / 1000) * 1000 + 1000 }];
  let rows = 0;
  let active = 0;
  let idle = 0;
  let wakers = [];
  const wake = () => (wakers.splice(0).forEach((w) => w()));
  const readRange = async (range) => {
    let next = firstPage(range);
    while (next) {
      const body = await get(next);
      const data = body.data;
      // a range split while it was read ends at the split point: its next pages may hold the other half's events
      let n = data.length;
      if (n > 0 && at(data[n - 1]) >= range.hi) n = data.findIndex((e) => at(e) >= range.hi);
      rows += n;
      next = n === data.length && typeof body.links?.next === 'string' && body.links.next !== '' ? body.links.next.slice(body.links.next.indexOf('/api/')) : undefined;
      if (next && idle > 0 && pending.length === 0) {
        const mid = Math.floor((at(data[n - 1]) + range.hi) / 2000) * 1000;
        if (mid > at(data[n - 1]) && mid < range.hi) {
          pending.push({ lo: mid, hi: range.hi });
          range.hi = mid;
          wake();
        }
      }
    }
  };
  const worker = async () => {
    for (;;) {
      const range = pending.shift();
      if (range) {
        active++;
        await readRange(range).finally(() => active--);
        wake();
      } else if (active === 0) return;
      else {
        idle++;
        await new Promise((r) => wakers.push(r));
        idle--;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker)).finally(() => agent.close());
  const wallMs = performance.now() - t0;
  const cpu = meter();
  if (rows !== expectedRows) throw new Error(`${label} read ${rows} events, expected ${expectedRows}`);
  const seen = await admittedRequests(emu, apiKey, 'GET /api/events');
  const least = leastTimeFixedMs(seen.count, ENDPOINTS['GET /api/events'], seen.firstAt);
  const efficiency = least / Math.max(1, seen.spanMs);
  ctx.log(`${label}: ${rows} rows, ${seen.count} requests in ${(seen.spanMs / 1000).toFixed(1)} s (least ${(least / 1000).toFixed(1)} s) → ${efficiency.toFixed(3)}, emulator ${cpu.emulatorCores} cores, machine ${cpu.machineBusy} busy`);
  return {
    label,
    resource: 'events',
    concurrency,
    rows,
    requests: seen.count,
    leastMs: least,
    spanMs: Math.round(seen.spanMs),
    efficiency: Number(efficiency.toFixed(3)),
    wallMs: Math.round(wallMs),
    rowsPerSecond: Math.round(rows / (wallMs / 1000)),
    ...cpu,
  };
}

/**
 * One CLI export. `told`: the source states the account's allowance for the endpoint (`rateLimits`: the spec's tier,
 * which the emulator enforces), where by default the source paces L at the docs' stricter 700/min.
 */
async function one(ctx, emu, { label, resource, concurrency, told = false }) {
  const apiKey = `${API_KEY}${label}`.replace(/[^A-Za-z0-9_]/g, '_');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'klaviyo-etl-bench-export-'));
  const endpoint = resource === 'events' ? 'GET /api/events' : 'GET /api/lists/{id}/profiles';
  const tier = { burst: ENDPOINTS[endpoint].burst, steady: ENDPOINTS[endpoint].steady };
  try {
    const options = `${concurrency ? `, concurrency: ${concurrency}` : ''}${told ? `, rateLimits: {${JSON.stringify(endpoint)}: {burst: ${tier.burst}, steady: ${tier.steady}}}` : ''}`;
    const source =
      resource === 'events'
        ? `{type: klaviyo, resource: events, incremental: false${options}}`
        : `{type: klaviyo, list: ${await listId(emu, apiKey)}, incremental: false${options}}`;
    const columns = resource === 'events' ? '{id: id, datetime: datetime, metric: metric.id, profile: profile.id}' : '{id: id, email: email, joined_group_at: joined_group_at}';
    const name = `bench-export-${label}`;
    const pipeline = await writePipeline(name, `version: 1\nname: ${name}\nsource: ${source}\ntransform: {type: export, columns: ${columns}}\ndestination: {type: csv, path: ${JSON.stringify(path.join(dir, 'out.csv'))}}\n`);
    ctx.log(`${label}: ${resource}, concurrency ${concurrency ?? 'default'}`);
    const cli = await runCli(pipeline, { env: { KLAVIYO_BASE_URL: emu.url }, apiKey });
    const seen = await admittedRequests(emu, apiKey, endpoint);
    const least = leastTimeFixedMs(seen.count, tier, seen.firstAt);
    const efficiency = least / Math.max(1, seen.spanMs);
    // the least time at the allowance the source paces at (told: the spec's tier; else pacingLimits: L at 700/min)
    const leastPaced = told ? least : leastTimeFixedMs(seen.count, pacingLimits(endpoint) ?? tier, seen.firstAt);
    const rows = cli.report.rows.loaded;
    ctx.log(`${label}: ${rows} rows, ${seen.count} requests in ${(seen.spanMs / 1000).toFixed(1)} s (least ${(least / 1000).toFixed(1)} s, at the paced tier ${(leastPaced / 1000).toFixed(1)} s) → ${efficiency.toFixed(3)}, peak RSS ${cli.peakRssMb} MB, ${cli.report.requests.throttled} × 429`);
    return {
      label,
      resource,
      concurrency: concurrency ?? 'default',
      told,
      rows,
      requests: seen.count,
      throttled: cli.report.requests.throttled,
      leastMs: least,
      leastPacedMs: leastPaced,
      efficiencyPaced: Number((leastPaced / Math.max(1, seen.spanMs)).toFixed(3)),
      spanMs: Math.round(seen.spanMs),
      efficiency: Number(efficiency.toFixed(3)),
      wallMs: Math.round(cli.wallMs),
      rowsPerSecond: Math.round(rows / (cli.wallMs / 1000)),
      peakRssMb: cli.peakRssMb,
      status: cli.report.status,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function run(ctx) {
  const q = ctx.quick ? 0.1 : 1;
  const sizes = { events: Math.round(1_000_000 * q), members: Math.round(200_000 * q), profiles: Math.round(200_000 * q) };
  const emu = await startEmulatorProcess({
    limits: 'klaviyo',
    args: ['--generate', `profiles=${sizes.profiles},events=${sizes.events},members=${sizes.members},seed=1,end=2026-01-01T00:00:00Z`, '--latency', String(LATENCY_MS)],
  });
  const runs = [];
  try {
    // the emulator alone first, with as many ranges as the CLI's default cursors, then the CLI the same way
    runs.push(await emulatorAlone(ctx, emu, { label: 'events-emulator-alone', concurrency: EVENTS_CURSORS, expectedRows: sizes.events }));
    // and with 8 times as many: what the emulator serves when 250 ms per answer no longer bounds the cursors
    runs.push(await emulatorAlone(ctx, emu, { label: 'events-emulator-alone-wide', concurrency: 8 * EVENTS_CURSORS, expectedRows: sizes.events }));
    for (const events of [{ label: 'events-partitioned' }, { label: 'events-one-cursor', concurrency: 1 }]) {
      const meter = cpuMeter(emu);
      runs.push({ ...(await one(ctx, emu, { ...events, resource: 'events' })), ...meter() });
    }
    runs.push(await one(ctx, emu, { label: 'members-partitioned', resource: 'members' }));
    runs.push(await one(ctx, emu, { label: 'members-partitioned-told', resource: 'members', told: true }));
    runs.push(await one(ctx, emu, { label: 'members-one-cursor', resource: 'members', concurrency: 1 }));
  } finally {
    await emu.close();
  }
  const by = Object.fromEntries(runs.map((r) => [r.label, r]));
  const cli = runs.filter((r) => r.peakRssMb !== undefined);
  const alone = by['events-emulator-alone'];
  const partitioned = by['events-partitioned'];
  // the three times of the events export: what the tiers allow, what this machine's emulator serves, what the CLI takes
  const events = {
    cursors: EVENTS_CURSORS,
    leastMs: partitioned.leastMs,
    emulatorAloneMs: alone.spanMs,
    cliMs: partitioned.spanMs,
    cliVsTiers: partitioned.efficiency,
    emulatorAloneVsTiers: alone.efficiency,
    cliVsEmulatorAlone: Number((alone.spanMs / Math.max(1, partitioned.spanMs)).toFixed(3)),
  };
  ctx.log(`events: least ${(events.leastMs / 1000).toFixed(1)} s, emulator alone ${(events.emulatorAloneMs / 1000).toFixed(1)} s (${events.emulatorAloneVsTiers}), CLI ${(events.cliMs / 1000).toFixed(1)} s → ${events.cliVsTiers} of the tiers, ${events.cliVsEmulatorAlone} of the emulator alone`);
  return {
    config: { latencyMs: LATENCY_MS, limits: 'klaviyo (spec tiers)', sizes, pageSize: 'resource maximum (events 1000, members 100)', eventsCursors: EVENTS_CURSORS },
    metrics: { events, runs },
    targets: [
      { name: 'events partitioned ≥ 0.90 of the least time', target: 0.9, value: by['events-partitioned'].efficiency, met: by['events-partitioned'].efficiency >= 0.9 },
      { name: 'members partitioned ≥ 0.90 of the least time', target: 0.9, value: by['members-partitioned'].efficiency, met: by['members-partitioned'].efficiency >= 0.9 },
      { name: 'members partitioned, told the spec tier (rateLimits), ≥ 0.90 of the least time', target: 0.9, value: by['members-partitioned-told'].efficiency, met: by['members-partitioned-told'].efficiency >= 0.9 },
      { name: 'peak RSS < 256 MB', target: 256, value: Math.max(...cli.map((r) => r.peakRssMb)), met: cli.every((r) => r.peakRssMb < 256) },
    ],
    notes: [
      'Every run reads the whole resource (incremental: false) into a CSV file through the CLI; each run uses its own API key, so its own emulator account (generated from the same seed) and rate-limit windows.',
      'One cursor at 250 ms per answer cannot pass 4 requests/s whatever the tier: the partitioned run is what reaches the ceiling.',
      `events-emulator-alone is no CLI run: the least a client must do (the same requests, ${EVENTS_CURSORS} ranges at once, each body JSON.parse'd and dropped), so its time is the best any client can do with as many cursors on this machine against this emulator; cliVsEmulatorAlone = its span / the CLI's.`,
      'members-partitioned-told: the source states the spec tier (rateLimits: L at 75/s, 750/min, what the emulator enforces); by default it paces L at the docs\' stricter 700/min, so a run whose requests just exceed a whole number of 700-request minute windows needs one window more than the least time (750/min) counts. leastPacedMs / efficiencyPaced: the least time at the allowance the source paces at.',
      'emulatorCores: CPU seconds of the emulator process per second of the run (1 = one core); machineBusy: share of all cores busy over the run (other processes included).',
    ],
  };
}

/**
 * The members runs alone at `members` members (a reduced size that still crosses minute windows, e.g. 100,000: ~1,000
 * requests where L allows 700–750 a minute), partitioned and, with `oneCursor`, one cursor: for measuring a change
 * to the source's pacing without the full case. The efficiency depends on where in a minute the first request
 * falls (a short first window holds fewer requests): compare runs at several phases, or many.
 */
export async function runMembers(ctx, { members, oneCursor = false, told = false }) {
  const emu = await startEmulatorProcess({
    limits: 'klaviyo',
    args: ['--generate', `profiles=${members},events=0,members=${members},seed=1,end=2026-01-01T00:00:00Z`, '--latency', String(LATENCY_MS)],
  });
  const runs = [];
  try {
    runs.push(await one(ctx, emu, { label: 'members-partitioned', resource: 'members' }));
    if (told) runs.push(await one(ctx, emu, { label: 'members-partitioned-told', resource: 'members', told: true }));
    if (oneCursor) runs.push(await one(ctx, emu, { label: 'members-one-cursor', resource: 'members', concurrency: 1 }));
  } finally {
    await emu.close();
  }
  return { config: { latencyMs: LATENCY_MS, limits: 'klaviyo (spec tiers)', members }, metrics: { runs } };
}

// `node bench/cases/export.js --members=100000 [--told] [--one-cursor]` (after `npm run build`): the members runs alone
// at that size (`--told`: also with the source told the spec's tier), the result on stdout (no result file).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const members = Number(process.argv.find((a) => a.startsWith('--members='))?.slice('--members='.length));
  if (!(members > 0)) {
    process.stderr.write('usage: node bench/cases/export.js --members=<count> [--told] [--one-cursor]\n');
    process.exit(2);
  }
  const log = (m) => process.stderr.write(`[bench export ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
  const result = await runMembers({ log }, { members, oneCursor: process.argv.includes('--one-cursor'), told: process.argv.includes('--told') });
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}
