/**
 * `--emulator`: a run wrapped in an embedded Klaviyo emulator on a free loopback port. The emulator module is
 * loaded only when a run uses it. Components that declare `readsKlaviyo` / `writesKlaviyo` talk to it instead of
 * Klaviyo; the report carries what it holds at the end.
 */
import type { Logger } from '../core/logger.js';
import type { KlaviyoTarget } from '../destinations/types.js';
import type { EmulatorOptions } from '../emulator/index.js';
import type { RunReport } from './report.js';

/** The API key of the embedded emulator's demo account, used when KLAVIYO_API_KEY is not set. */
export const EMULATOR_DEMO_KEY = 'pk_emulator_demo_key_0000000000';

/** The embedded emulator as the components see it. */
export interface EmbeddedKlaviyo {
  /** Where destinations declaring `writesKlaviyo` write. */
  target: KlaviyoTarget;
  /** The environment of a source declaring `readsKlaviyo`: KLAVIYO_BASE_URL and KLAVIYO_API_KEY point here. */
  env(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
}

/** The rate-limit scale of an emulator's `limits` (`off`: practically unlimited). */
function rateScale(limits: EmulatorOptions['limits']): number | undefined {
  return limits === 'off' ? 1000 : typeof limits === 'number' ? limits : undefined;
}

/**
 * Run `body` against an embedded emulator when `options` asks for one (`true`, or emulator options), else against
 * the real API (`body(undefined)`). The emulator is closed when the run ends; its final state goes in the report.
 */
export async function withEmulator(
  options: boolean | EmulatorOptions | undefined,
  ctx: { env: NodeJS.ProcessEnv; logger: Logger },
  body: (klaviyo: EmbeddedKlaviyo | undefined) => Promise<RunReport>,
): Promise<RunReport> {
  if (!options) return body(undefined);
  const { startEmulator } = await import('../emulator/index.js');
  const emulatorOptions = typeof options === 'object' ? options : {};
  const emulator = await startEmulator({ port: 0, host: '127.0.0.1', ...emulatorOptions });
  ctx.logger.info('embedded emulator started', { url: emulator.url });
  const apiKey = ctx.env.KLAVIYO_API_KEY ?? EMULATOR_DEMO_KEY;
  try {
    const report = await body({
      target: { baseUrl: emulator.url, apiKey, rateScale: rateScale(emulatorOptions.limits) },
      env: (env) => ({ ...env, KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: apiKey }),
    });
    report.emulator = { url: emulator.url, state: emulator.snapshot() };
    return report;
  } finally {
    await emulator.close();
  }
}
