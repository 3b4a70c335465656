// Ceiling efficiency with Klaviyo-style limits on: how close the loader paces to what the tiers allow.
//
// The emulator runs as a child process with `--limits <factor>`; the CLI (child process) gets the same tiers
// multiplied by the same factor through `destination.rateLimits` (exactly what `rateScale` does when `run()` starts its
// own emulator). "Actual time" is the span from the first to the last request of the bulk endpoint the emulator let
// through its rate limits (its `requests.admitted` times); the least time is that of the same number of requests under
// the tier's fixed windows (Klaviyo's, aligned as the emulator's are), the first one counted when the run's first one
// was (see leastTimeFixedMs in ../lib.js). Until 2026-12-02 the least time was the sliding form's (request k no earlier
// than k-burst + 1 s and k-steady + 60 s), which a client pacing at the fixed windows can beat; it is recorded as
// `leastSlidingMs`. The end-to-end wall time (start-up, transform, profile job polling tail) is recorded alongside.
import { ENDPOINTS } from '../../dist/klaviyo/endpoints.js';
import { API_KEY, admittedRequests, ensureData, leastTimeFixedMs, leastTimeMs, runCli, scaledLimits, signupEventsPipeline, customersPipeline, startEmulatorProcess, writePipeline } from '../lib.js';

export const description = 'pacing efficiency at the rate-limit ceiling (events and profile bulk endpoints), 429 share';

const EVENTS = 'POST /api/event-bulk-create-jobs';
const PROFILES = 'POST /api/profile-bulk-import-jobs';

async function one(ctx, { label, kind, rows, factor, endpoint }) {
  const file = await ensureData(rows, { profiles: true, log: ctx.log });
  const name = `bench-ceiling-${label}`;
  // Every endpoint the loader may call (bulk, job polls, import-errors) gets the tier × factor the emulator enforces.
  const limits = scaledLimits(factor, Object.keys(ENDPOINTS), ENDPOINTS);
  const yaml = kind === 'event' ? signupEventsPipeline(name, file, { destination: limits }) : customersPipeline(name, file, { destination: limits });
  const pipeline = await writePipeline(name, yaml);
  const apiKey = `${API_KEY}${label}`.replace(/[^A-Za-z0-9_]/g, '_');
  const emu = await startEmulatorProcess({ limits: factor, processingRate: 200_000, warmUp: kind === 'event' });
  try {
    ctx.log(`${label}: ${rows} ${kind}s at limits × ${factor}`);
    const cli = await runCli(pipeline, { env: { KLAVIYO_BASE_URL: emu.url }, apiKey });
    const seen = await admittedRequests(emu, apiKey, endpoint);
    const state = await emu.state(apiKey);
    const tier = { burst: Math.max(1, Math.floor(ENDPOINTS[endpoint].burst * factor)), steady: Math.max(1, Math.floor(ENDPOINTS[endpoint].steady * factor)) };
    const n = seen.count;
    const least = leastTimeFixedMs(n, tier, seen.firstAt);
    const efficiency = least / Math.max(1, seen.spanMs);
    const throttledShare = state.requests.throttled / Math.max(1, state.requests.total);
    const stored = kind === 'event' ? state.events : state.profiles;
    ctx.log(`${label}: ${n} requests in ${(seen.spanMs / 1000).toFixed(2)} s (least ${(least / 1000).toFixed(2)} s) → ${efficiency.toFixed(3)}, 429s ${state.requests.throttled}/${state.requests.total}`);
    return {
      label,
      kind,
      rows,
      factor,
      endpoint,
      tier,
      requests: n,
      leastMs: least,
      leastSlidingMs: leastTimeMs(n, tier),
      firstPhaseMs: { inSecond: seen.firstAt % 1000, inMinute: seen.firstAt % 60_000 },
      spanMs: Math.round(seen.spanMs),
      efficiency: Number(efficiency.toFixed(3)),
      wallMs: Math.round(cli.wallMs),
      wallEfficiency: Number((least / cli.wallMs).toFixed(3)),
      requestsTotal: state.requests.total,
      throttled: state.requests.throttled,
      throttledShare: Number(throttledShare.toFixed(4)),
      byEndpoint: state.requests.byEndpoint,
      stored,
      loaded: cli.report.rows.loaded,
      rejected: cli.report.rows.rejected,
      status: cli.report.status,
    };
  } finally {
    await emu.close();
  }
}

export async function run(ctx) {
  const q = ctx.quick ? 0.1 : 1;
  const runs = [
    // Burst-bound: 100 requests fit in one steady window, so only the 1 s window limits them (least time 9 s, less
    // where the first request fell in its second).
    await one(ctx, { label: 'events-x1', kind: 'event', rows: 100_000 * q, factor: 1, endpoint: EVENTS }),
    // Steady-bound: limits × 0.5 (burst 5/s, steady 75/min): 100 requests need the second steady window.
    await one(ctx, { label: 'events-x0.5', kind: 'event', rows: 100_000 * q, factor: 0.5, endpoint: EVENTS }),
    // Profiles: 20 jobs of 10,000 fit Klaviyo's M tier in 2 s, less than the transform takes, so the tier is
    // scaled × 0.1 (burst 1/s, steady 15/min): the 16th job waits for the second steady window.
    await one(ctx, { label: 'profiles-x0.1', kind: 'profile', rows: 200_000 * q, factor: 0.1, endpoint: PROFILES }),
  ];
  const targets = [];
  for (const r of runs) {
    targets.push({ name: `${r.label}: least time / actual time (${r.requests} × ${r.endpoint})`, target: '≥ 0.95', value: r.efficiency, met: r.efficiency >= 0.95 });
    targets.push({ name: `${r.label}: requests answered 429`, target: '< 1%', value: `${(r.throttledShare * 100).toFixed(2)}%`, met: r.throttledShare < 0.01 });
    if (r.kind === 'event') {
      targets.push({ name: `${r.label}: every loaded event stored`, target: r.loaded, value: r.stored, met: r.stored === r.loaded && r.loaded + r.rejected === r.rows && r.status === 'succeeded' });
    } else {
      // Generated customers share some phone numbers, so the emulator merges those rows into one profile.
      targets.push({ name: `${r.label}: every row loaded or rejected (run succeeded)`, target: r.rows, value: r.loaded + r.rejected, met: r.loaded + r.rejected === r.rows && r.status === 'succeeded' });
    }
  }
  return {
    config: { emulator: 'child process, --limits <factor>', cli: 'child process, destination.rateLimits = tiers × factor', sampleMs: 20 },
    metrics: { runs },
    targets,
    notes: [
      'profiles stored < rows: the generated customers share ~250 phone numbers, and the emulator merges such rows into one profile (identity by phone)',
      'actual time = first to last request of the bulk endpoint let through the emulator\'s rate limits (requests.admitted); least time = the tier\'s fixed windows from the first one (leastSlidingMs: the sliding form used before 2026-12-02); wallEfficiency uses the whole CLI wall time instead',
    ],
  };
}
