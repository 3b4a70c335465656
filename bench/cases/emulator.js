// Emulator throughput (issue 3: "with `--limits off` the emulator accepts at least 50,000 events/s in bulk requests
// on this machine"). `klaviyo-etl emulator --limits off` runs as a child process; a load generator runs as a second
// child process (this same file, run directly) and sends pre-serialized 1,000-event `POST /api/event-bulk-create-jobs`
// bodies over keep-alive connections (undici Pool, a few requests in flight). Events/s accepted = events in 202
// answers / the generator's wall time from the first request to the last answer. The stored count is checked
// through `/_emulator/state`.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { API_KEY, startEmulatorProcess } from '../lib.js';

export const description = 'events/s the emulator accepts with --limits off (1,000-event bulk requests, keep-alive, load generator in its own process)';

const SELF = fileURLToPath(import.meta.url);
const EVENTS_PER_REQUEST = 1000;

/** One pre-serialized bulk body: 1,000 events with distinct profiles and unique ids (request `r`). */
function bulkBody(r) {
  const entries = [];
  for (let i = 0; i < EVENTS_PER_REQUEST; i++) {
    const n = r * EVENTS_PER_REQUEST + i;
    entries.push({
      type: 'event-bulk-create',
      attributes: {
        profile: { data: { type: 'profile', attributes: { email: `bench${n % 200_000}@example.com` } } },
        events: {
          data: [
            {
              type: 'event',
              attributes: {
                properties: { OrderId: `#${n}`, Sku: `SKU-${n % 997}`, Quantity: 1 + (n % 3) },
                time: '2025-06-01T12:00:00+00:00',
                value: 19.99,
                unique_id: `bench-${n}`,
                metric: { data: { type: 'metric', attributes: { name: 'Bench Emulator' } } },
              },
            },
          ],
        },
      },
    });
  }
  return JSON.stringify({ data: { type: 'event-bulk-create-job', attributes: { 'events-bulk-create': { data: entries } } } });
}

/** The load generator (child process): argv url, requests, concurrency; prints a JSON result line. */
async function generate(url, requests, concurrency) {
  const { Pool } = await import('undici');
  const pool = new Pool(url, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  // Every body is serialized before the clock starts; each request has its own unique ids, so every event is stored.
  const bodies = [];
  for (let r = 0; r < requests; r++) bodies.push(Buffer.from(bulkBody(r)));
  const headers = {
    authorization: `Klaviyo-API-Key ${API_KEY}`,
    revision: '2026-07-15',
    'content-type': 'application/vnd.api+json',
    accept: 'application/vnd.api+json',
  };
  let next = 0;
  let accepted = 0;
  const statuses = {};
  const started = performance.now();
  const worker = async () => {
    while (next < requests) {
      const body = bodies[next++];
      const res = await pool.request({ path: '/api/event-bulk-create-jobs', method: 'POST', headers, body });
      await res.body.text();
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      if (res.statusCode === 202) accepted += EVENTS_PER_REQUEST;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ms = performance.now() - started;
  await pool.close();
  process.stdout.write(JSON.stringify({ requests, accepted, ms, statuses }) + '\n');
}

export async function run(ctx) {
  const requests = ctx.quick ? 30 : 300;
  const concurrency = 4;
  const emu = await startEmulatorProcess({ limits: 'off', maxOldSpaceMb: 8192 });
  let gen;
  let state;
  try {
    ctx.log(`load generator: ${requests} requests × ${EVENTS_PER_REQUEST} events, ${concurrency} connections → ${emu.url}`);
    const child = spawn(process.execPath, [SELF, emu.url, String(requests), String(concurrency)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const [code] = await once(child, 'exit');
    if (code !== 0) throw new Error(`load generator exited ${code}`);
    gen = JSON.parse(out.trim());
    state = await emu.state();
  } finally {
    await emu.close();
  }
  const eventsPerSecond = Math.round((gen.accepted * 1000) / gen.ms);
  ctx.log(`emulator: ${eventsPerSecond} events/s accepted (${gen.accepted} in ${Math.round(gen.ms)} ms), stored ${state.events}`);
  return {
    config: { requests, eventsPerRequest: EVENTS_PER_REQUEST, connections: concurrency, emulator: 'child process, --limits off', generator: 'child process, undici Pool keep-alive, bodies serialized before timing' },
    metrics: { eventsPerSecond, accepted: gen.accepted, wallMs: Math.round(gen.ms), statuses: gen.statuses, emulatorEvents: state.events },
    targets: [
      { name: 'emulator accepts ≥ 50,000 events/s in bulk requests (--limits off)', target: '≥ 50000', value: eventsPerSecond, met: eventsPerSecond >= 50_000 },
      { name: 'every accepted event is stored (/_emulator/state)', target: `${gen.accepted}`, value: state.events, met: state.events === gen.accepted && gen.accepted === requests * EVENTS_PER_REQUEST },
    ],
    notes: ['the generator and the emulator each have a core of the 2-core machine; events/s is measured by the generator from the first request to the last answer'],
  };
}

if (process.argv[1] === SELF) {
  await generate(process.argv[2], Number(process.argv[3]), Number(process.argv[4]));
}
