// Throughput with limits off: a 1,000,000-row Shopify-style orders CSV (the shopify-orders-backfill example's
// transform: Placed Order per order + Ordered Product per line item) through the CLI (child process) into the
// emulator (another child process, `--limits off`), against bare csv-parse (`columns: true`) over the same file.
// Both the CLI and the emulator are separate processes so each gets a core of the 2-core machine. The reference is the
// faster of two bare csv-parse passes, one before and one after the end-to-end run.
import path from 'node:path';
import { bareCsvParse, ensureData, fileSize, ordersPipeline, ROOT, runCli, startEmulatorProcess, UNPACED, writePipeline } from '../lib.js';

export const description = 'rows/s end to end (limits off) vs bare csv-parse over the same 1M-row orders CSV';

export async function run(ctx) {
  const rows = ctx.quick ? 100_000 : 1_000_000;
  const file = await ensureData(rows, { log: ctx.log });
  const pipeline = await writePipeline('bench-throughput', ordersPipeline('bench-throughput', file, { destination: UNPACED }));

  // Bare csv-parse is measured before AND after the end-to-end run, and the faster of the two is the reference: on a
  // shared machine, a reference taken during a busy moment would flatter the ratio.
  ctx.log('bare csv-parse (before)');
  const bareBefore = await bareCsvParse(file);
  ctx.log(`bare csv-parse: ${bareBefore.rowsPerSecond} rows/s`);

  const emu = await startEmulatorProcess({ limits: 'off', maxOldSpaceMb: 8192, warmUp: true });
  let cli;
  let state;
  try {
    ctx.log(`klaviyo-etl run (${rows} rows) → ${emu.url}`);
    cli = await runCli(pipeline, { env: { KLAVIYO_BASE_URL: emu.url } });
    state = await emu.state();
  } finally {
    await emu.close();
  }
  ctx.log('bare csv-parse (after)');
  const bareAfter = await bareCsvParse(file);
  ctx.log(`bare csv-parse: ${bareAfter.rowsPerSecond} rows/s`);
  const bare = bareAfter.rowsPerSecond > bareBefore.rowsPerSecond ? bareAfter : bareBefore;
  const r = cli.report;
  const e2e = Math.round((r.rows.read * 1000) / cli.wallMs);
  ctx.log(`end to end: ${e2e} rows/s, ${r.items.events} events, peak RSS ${cli.peakRssMb} MB`);
  const ratio = e2e / bare.rowsPerSecond;
  return {
    config: { rows, file: path.relative(ROOT, file), bytes: await fileSize(file), emulator: 'child process, --limits off', cli: 'child process', pacing: 'lifted (destination.rateLimits)' },
    metrics: {
      bareCsvParse: bare,
      bareCsvParseRuns: [bareBefore, bareAfter],
      endToEnd: { status: r.status, exitCode: cli.exitCode, wallMs: Math.round(cli.wallMs), runDurationMs: r.durationMs, rowsPerSecond: e2e, eventsPerSecond: Math.round((r.items.events * 1000) / cli.wallMs), rows: r.rows, events: r.items.events, requests: r.requests.total, peakRssMb: cli.peakRssMb },
      emulatorEvents: state.events,
      ratio: Number(ratio.toFixed(3)),
    },
    targets: [
      { name: 'end to end ≥ 50% of bare csv-parse rows/s', target: '≥ 0.50', value: Number(ratio.toFixed(3)), met: ratio >= 0.5 },
      { name: 'every event arrived', target: `${r.items.events}`, value: state.events, met: state.events === r.items.events && r.status === 'succeeded' },
    ],
    notes: [`wall time of the CLI process includes Node start-up and pipeline loading; ${ctx.machine.nproc} cores shared by the CLI and the emulator`],
  };
}
