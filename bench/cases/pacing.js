// Pacing against Klaviyo as it really answers (issue 12): latency on every answer, and an account whose limits are
// lower than the documented tier (another integration, custom limits) with the loader not told.
//
// - latency, burst-bound: 90 bulk event requests at Klaviyo's own limits (M tier, 10/s, 150/min), the emulator adding
//   250 ms to every answer (`--faults slowRate=1,slowMs=250`); target ≥ 0.90 of the least time.
// - latency, steady-bound: 100 requests with the tiers × 0.5 (5/s, 75/min) on both sides, 250 ms latency; target
//   ≥ 0.97.
// - half limits: 100 requests, the emulator at `--limits 0.5`, the loader given no rateLimits (it paces at the
//   documented tier until the answers tell it otherwise); target < 3% of requests throttled (29% before issue 12).
//
// Efficiency is measured on the run's whole duration: least time / the run report's `durationMs` (from the run's
// start, pipeline loading and the first batch included, to its end, the last answer included). The span from the
// first to the last arrival at the emulator and the CLI's wall time are recorded alongside.
import { ENDPOINTS } from '../../dist/klaviyo/endpoints.js';
import { API_KEY, ensureData, leastTimeMs, runCli, scaledLimits, signupEventsPipeline, startEmulatorProcess, watchEndpoint, writePipeline } from '../lib.js';

export const description = 'pacing with 250 ms latency (burst- and steady-bound) and with the account at half the tier, the loader not told';

const EVENTS = 'POST /api/event-bulk-create-jobs';

async function one(ctx, { label, rows, factor, told, faults }) {
  const file = await ensureData(rows, { profiles: true, log: ctx.log });
  const name = `bench-pacing-${label}`;
  const destination = told ? scaledLimits(factor, Object.keys(ENDPOINTS), ENDPOINTS) : '';
  const pipeline = await writePipeline(name, signupEventsPipeline(name, file, { destination }));
  const apiKey = `${API_KEY}${label}`.replace(/[^A-Za-z0-9_]/g, '_');
  const emu = await startEmulatorProcess({ limits: factor, faults, warmUp: true });
  try {
    ctx.log(`${label}: ${rows} events, emulator limits × ${factor}${faults ? `, faults ${JSON.stringify(faults)}` : ''}, loader ${told ? 'told' : 'not told'}`);
    const watch = watchEndpoint(emu, apiKey, EVENTS);
    const cli = await runCli(pipeline, { env: { KLAVIYO_BASE_URL: emu.url }, apiKey });
    const seen = await watch.stop();
    const state = await emu.state(apiKey);
    const tier = { burst: Math.max(1, Math.floor(ENDPOINTS[EVENTS].burst * factor)), steady: Math.max(1, Math.floor(ENDPOINTS[EVENTS].steady * factor)) };
    const n = (state.requests.byEndpoint[EVENTS] ?? 0) - state.requests.throttled;
    const least = leastTimeMs(n, tier);
    const durationMs = cli.report.durationMs;
    const r = {
      label,
      rows,
      factor,
      told,
      faults: faults ?? null,
      tier,
      requests: n,
      leastMs: least,
      durationMs,
      efficiency: Number((least / durationMs).toFixed(3)),
      spanMs: Math.round(seen.spanMs),
      spanEfficiency: Number((least / Math.max(1, seen.spanMs)).toFixed(3)),
      wallMs: Math.round(cli.wallMs),
      requestsTotal: state.requests.total,
      throttled: state.requests.throttled,
      throttledShare: Number((state.requests.throttled / Math.max(1, state.requests.total)).toFixed(4)),
      stored: state.events,
      loaded: cli.report.rows.loaded,
      rejected: cli.report.rows.rejected,
      status: cli.report.status,
    };
    ctx.log(`${label}: ${n} requests in ${(durationMs / 1000).toFixed(2)} s (least ${(least / 1000).toFixed(2)} s) → ${r.efficiency}, 429s ${r.throttled}/${r.requestsTotal}`);
    return r;
  } finally {
    await emu.close();
  }
}

export async function run(ctx) {
  const q = ctx.quick ? 0.2 : 1;
  const latency = { seed: 1, slowRate: 1, slowMs: 250 };
  const runs = [
    await one(ctx, { label: 'latency-burst', rows: Math.round(90_000 * q), factor: 1, told: true, faults: latency }),
    await one(ctx, { label: 'latency-steady', rows: Math.round(100_000 * q), factor: 0.5, told: true, faults: latency }),
    await one(ctx, { label: 'half-limits', rows: Math.round(100_000 * q), factor: 0.5, told: false }),
  ];
  const [burst, steady, half] = runs;
  const stored = (r) => r.stored === r.loaded && r.loaded + r.rejected === r.rows && r.status === 'succeeded';
  const targets = [
    { name: `latency 250 ms, burst-bound: least time / run duration (${burst.requests} requests)`, target: '≥ 0.90', value: burst.efficiency, met: burst.efficiency >= 0.9 },
    { name: `latency 250 ms, steady-bound: least time / run duration (${steady.requests} requests)`, target: '≥ 0.97', value: steady.efficiency, met: steady.efficiency >= 0.97 },
    ...[burst, steady].map((r) => ({ name: `${r.label}: requests answered 429`, target: '< 1%', value: `${(r.throttledShare * 100).toFixed(2)}%`, met: r.throttledShare < 0.01 })),
    { name: 'limits at half the tier, loader not told: requests answered 429', target: '< 3%', value: `${(half.throttledShare * 100).toFixed(2)}%`, met: half.throttledShare < 0.03 },
    ...runs.map((r) => ({ name: `${r.label}: every loaded event stored, run succeeded`, target: r.rows, value: r.stored, met: stored(r) })),
  ];
  return {
    config: { emulator: 'child process, --limits <factor> [--faults slowRate=1,slowMs=250]', cli: 'child process; rateLimits = tiers × factor when told, none otherwise', sampleMs: 20 },
    metrics: { runs },
    targets,
    notes: [
      'efficiency = least time of the sliding form of the tier / the run report durationMs (whole run); spanEfficiency uses first to last arrival at the emulator',
      'the steady-bound run can beat the sliding least time: a steady token comes back when the server\'s fixed window ends (RateLimit-Reset), which the sliding form does not allow for',
    ],
  };
}
