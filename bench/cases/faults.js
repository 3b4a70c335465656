// Faults: 100,000 events (one per customer row) against an emulator child process with injected faults — 5% 500s,
// 5% 429 bursts (the faulted request and the next 1-3 get 429, Retry-After 1), 1% connection resets, 5% slow
// responses (1.5 s) — and against a clean one (limits off both times, pacing lifted). Every row must be loaded or
// rejected with a reason, none lost (emulator event count = loaded rows), and the time overhead is recorded.
import { readFile } from 'node:fs/promises';
import { API_KEY, ensureData, runCli, signupEventsPipeline, startEmulatorProcess, UNPACED, writePipeline } from '../lib.js';

export const description = '100,000 events with 500s, 429 bursts, resets and slow responses vs a clean run: nothing lost, overhead';

const FAULTS = { seed: 4, rate500: 0.05, rate429: 0.05, resetRate: 0.01, slowRate: 0.05, slowMs: 1500 };

async function one(ctx, rows, file, faults) {
  const label = faults ? 'faulty' : 'clean';
  const name = `bench-faults-${label}`;
  const pipeline = await writePipeline(name, signupEventsPipeline(name, file, { destination: UNPACED }));
  const emu = await startEmulatorProcess({ limits: 'off', faults });
  try {
    const apiKey = `${API_KEY}${label}`;
    const cli = await runCli(pipeline, { env: { KLAVIYO_BASE_URL: emu.url }, apiKey, args: ['--report', `${pipeline}.report.json`] });
    const state = await emu.state(apiKey);
    const all = await emu.state();
    const r = cli.report;
    const rejectsFile = r.rejects.file;
    let rejectsWithReason = 0;
    if (r.rejects.count > 0) {
      const text = await readFile(rejectsFile, 'utf8').catch(() => '');
      rejectsWithReason = text.split('\n').filter((l) => l.trim() !== '' && JSON.parse(l).message).length;
    }
    ctx.log(`${label}: ${(cli.wallMs / 1000).toFixed(1)} s, ${r.status}, loaded ${r.rows.loaded}, rejected ${r.rows.rejected}, stored ${state.events}, requests ${r.requests.total} (429 ${r.requests.throttled}, retried ${r.requests.retried})`);
    return {
      label,
      faults: faults ?? null,
      wallMs: Math.round(cli.wallMs),
      status: r.status,
      rows: r.rows,
      stored: state.events,
      duplicatesIgnored: state.duplicateEventsIgnored,
      rejectsWithReason,
      requests: r.requests,
      injected: all.faults ?? null,
    };
  } finally {
    await emu.close();
  }
}

export async function run(ctx) {
  const rows = ctx.quick ? 10_000 : 100_000;
  const file = await ensureData(rows, { profiles: true, log: ctx.log });
  const clean = await one(ctx, rows, file);
  const faulty = await one(ctx, rows, file, FAULTS);
  const overhead = faulty.wallMs / clean.wallMs - 1;
  const accounted = (x) => x.rows.loaded + x.rows.rejected + x.rows.skipped === rows && x.stored === x.rows.loaded && x.rejectsWithReason === x.rows.rejected;
  return {
    config: { rows, faults: FAULTS, emulator: 'child process, --limits off', cli: 'child process, pacing lifted' },
    metrics: { clean, faulty, overhead: Number(overhead.toFixed(3)) },
    targets: [
      { name: 'clean run: every row loaded or rejected with a reason, none lost', target: rows, value: clean.stored + clean.rows.rejected, met: accounted(clean) },
      { name: 'faulty run: every row loaded or rejected with a reason, none lost', target: rows, value: faulty.stored + faulty.rows.rejected, met: accounted(faulty) && faulty.status !== 'failed' },
      { name: 'time overhead of the faults (informational)', target: 'recorded', value: `${(overhead * 100).toFixed(0)}%`, met: true },
    ],
    notes: [],
  };
}
