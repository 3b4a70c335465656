// Against what users write today: the same 5,000 events sent (a) by a script on the official `klaviyo-api` SDK — one
// `createEvent` per row, 10 at a time with p-limit, the SDK's built-in retries (RetryWithExponentialBackoff defaults:
// 429/503/504/524, 3 attempts) — and (b) by klaviyo-etl (CLI child process, bulk endpoint), both against one emulator
// child process with full Klaviyo limits (XL 350/s + 3500/min for POST /api/events; M for the bulk endpoint). Each
// side uses its own API key, i.e. its own emulator account and rate-limit windows. Not scaled.
import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { ApiKeySession, EventsApi } from 'klaviyo-api';
import pLimit from 'p-limit';
import { API_KEY, ensureData, runCli, signupEventsPipeline, startEmulatorProcess, writePipeline } from '../lib.js';

export const description = '5,000 events: official klaviyo-api SDK script (createEvent ×10 in flight) vs klaviyo-etl, Klaviyo limits';

async function sdkScript(url, apiKey, rows) {
  const session = new ApiKeySession(apiKey);
  const events = new EventsApi(session);
  events.basePath = url; // how the SDK is pointed elsewhere (every *Api has a basePath)
  const limit = pLimit(10);
  let failed = 0;
  const errors = {};
  await Promise.all(
    rows.map((row) =>
      limit(async () => {
        try {
          await events.createEvent({
            data: {
              type: 'event',
              attributes: {
                properties: { tier: row.loyalty_tier, city: row.city },
                uniqueId: `signup-${row.email}`,
                metric: { data: { type: 'metric', attributes: { name: 'Bench Signup' } } },
                profile: { data: { type: 'profile', attributes: { email: row.email } } },
              },
            },
          });
        } catch (err) {
          failed++;
          const status = String(err?.response?.status ?? err?.code ?? 'error');
          errors[status] = (errors[status] ?? 0) + 1;
        }
      }),
    ),
  );
  return { failed, errors };
}

export async function run(ctx) {
  const n = ctx.quick ? 1_000 : 5_000;
  const file = await ensureData(n, { profiles: true, log: ctx.log });
  const rows = parse(await readFile(file), { columns: true }).filter((r) => r.email);
  const emu = await startEmulatorProcess({ limits: 'klaviyo' });
  try {
    const sdkKey = `${API_KEY}sdk`;
    ctx.log(`SDK script: ${rows.length} createEvent calls, 10 in flight`);
    const t0 = performance.now();
    const sdk = await sdkScript(emu.url, sdkKey, rows);
    const sdkMs = performance.now() - t0;
    const sdkState = await emu.state(sdkKey);
    ctx.log(`SDK: ${(sdkMs / 1000).toFixed(1)} s, ${sdkState.events} events stored, ${sdk.failed} calls failed, ${sdkState.requests.throttled} 429s`);

    const etlKey = `${API_KEY}etl`;
    const pipeline = await writePipeline('bench-sdk', signupEventsPipeline('bench-sdk', file));
    const cli = await runCli(pipeline, { env: { KLAVIYO_BASE_URL: emu.url }, apiKey: etlKey });
    const etlState = await emu.state(etlKey);
    ctx.log(`klaviyo-etl: ${(cli.wallMs / 1000).toFixed(1)} s, ${etlState.events} events stored, ${etlState.requests.total} requests`);
    const ratio = sdkMs / cli.wallMs;
    return {
      config: { events: rows.length, emulator: 'child process, --limits klaviyo', sdk: 'in the bench process, klaviyo-api defaults, p-limit 10', etl: 'CLI child process (includes Node start-up)' },
      metrics: {
        sdk: { wallMs: Math.round(sdkMs), stored: sdkState.events, failedCalls: sdk.failed, errors: sdk.errors, requests: sdkState.requests.total, throttled: sdkState.requests.throttled },
        etl: { wallMs: Math.round(cli.wallMs), stored: etlState.events, requests: etlState.requests.total, throttled: etlState.requests.throttled, status: cli.report.status },
        speedup: Number(ratio.toFixed(1)),
      },
      targets: [
        { name: 'klaviyo-etl stores all events', target: rows.length, value: etlState.events, met: etlState.events === rows.length },
        { name: 'SDK script time / klaviyo-etl time (informational)', target: '> 1', value: Number(ratio.toFixed(1)), met: ratio > 1 },
      ],
      notes: [sdk.failed > 0 ? `the SDK script lost ${sdk.failed} events: its default 3 attempts give up while the 60 s window is exhausted` : 'the SDK script stored every event'],
    };
  } finally {
    await emu.close();
  }
}
