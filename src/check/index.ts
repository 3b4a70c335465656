/**
 * `klaviyo-etl check <pipeline>`: reach every service a pipeline names before the night does: the Klaviyo key and
 * its scopes, the lists and segments named, the source (files, PostgreSQL query plan, S3 prefix), where it writes
 * (export file or S3 object, checkpoint store, state directory) and Redis. One line per check, each failure with a
 * fix; nothing is loaded and no row is read (PostgreSQL is only asked for the plan of the run's query).
 */
import path from 'node:path';
import { BUILTIN_COMPONENTS } from '../components/index.js';
import type { Components } from '../components/types.js';
import { loadPipelineFileOrThrow } from '../config/load.js';
import type { PipelineConfig } from '../config/pipeline.js';
import type { EmulatorOptions } from '../emulator/index.js';
import { EMULATOR_DEMO_KEY } from '../runner/emulator.js';
import { componentsOf } from '../runner/wiring.js';
import { checkKlaviyo, type KlaviyoCheckTarget } from './klaviyo.js';
import { checkDestination, checkRedis, checkSource, checkState } from './services.js';

/** One check: what was checked, whether it passed, and for a failure how to fix it. */
export interface CheckResult {
  /** The service or part checked: `klaviyo`, `postgres`, `s3`, `redis`, `files`, `state`. */
  target: string;
  /** What was checked, e.g. `key`, `scope events:write`, `list Xy12Ab`, `query plan`. */
  check: string;
  /** `skip`: not checked, and why is in `detail` (never counted as a failure, never hidden). */
  status: 'ok' | 'fail' | 'skip';
  detail: string;
  /** What to do about a failure. */
  fix?: string;
}

/** The answer of {@link checkPipeline}. */
export interface CheckReport {
  pipeline: { name: string; file: string };
  /** True when no check failed. */
  ok: boolean;
  checks: CheckResult[];
}

/** Options of {@link checkPipeline} (the `check` command is a thin wrapper). */
export interface CheckOptions {
  pipelineFile: string;
  /** Environment for `${VAR}`, the API key, KLAVIYO_BASE_URL, AWS_*. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Check Klaviyo against an embedded emulator (`true`, or its options: a seed with the lists the pipeline names). */
  emulator?: boolean | EmulatorOptions;
  /** As for run: where checkpoints and default rejects files go. @default $KLAVIYO_ETL_STATE_DIR */
  stateDir?: string;
  /** Redis shared by runs for rate limits. @default $KLAVIYO_ETL_REDIS_URL */
  redisUrl?: string;
  /** How long one network check may take, in ms. @default 10000 */
  timeoutMs?: number;
  components?: Components;
}

/** What each check module gets. */
export interface CheckContext {
  config: PipelineConfig;
  baseDir: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** Whether the Klaviyo checks go to an embedded emulator. */
  emulator: boolean;
  stateDir?: string;
  /** The item kind the transform produces (`profile`, `event`, …). */
  itemKind: string;
  /** The source reads Klaviyo / the destination writes Klaviyo. */
  readsKlaviyo: boolean;
  writesKlaviyo: boolean;
}

/**
 * Check a pipeline's services. Throws only for an invalid pipeline file (CONFIG_*); every failure of a service is a
 * `fail` line of the report.
 */
export async function checkPipeline(options: CheckOptions): Promise<CheckReport> {
  const env = options.env ?? process.env;
  const components = options.components ?? BUILTIN_COMPONENTS;
  const file = path.resolve(options.pipelineFile);
  const { config, source } = await loadPipelineFileOrThrow(file, { env, components, stateDir: options.stateDir });
  const parts = componentsOf(config, components);
  const ctx: CheckContext = {
    config,
    baseDir: source.dir,
    env,
    timeoutMs: options.timeoutMs ?? 10_000,
    emulator: Boolean(options.emulator),
    stateDir: options.stateDir ?? env.KLAVIYO_ETL_STATE_DIR,
    itemKind: parts.transform.capabilities.produces,
    readsKlaviyo: Boolean(parts.source.capabilities.readsKlaviyo),
    writesKlaviyo: Boolean(parts.destination.capabilities.writesKlaviyo),
  };
  const checks: CheckResult[] = [];
  checks.push(...(await checkSource(ctx)));
  if (ctx.readsKlaviyo || ctx.writesKlaviyo) checks.push(...(await withKlaviyoTarget(ctx, options.emulator, (target) => checkKlaviyo(ctx, target))));
  checks.push(...(await checkDestination(ctx)));
  checks.push(...(await checkState(ctx)));
  checks.push(...(await checkRedis(ctx, options.redisUrl ?? env.KLAVIYO_ETL_REDIS_URL)));
  return { pipeline: { name: config.name, file: options.pipelineFile }, ok: !checks.some((c) => c.status === 'fail'), checks };
}

/** The Klaviyo the checks talk to: an embedded emulator (closed afterwards), or the configured API. */
async function withKlaviyoTarget(
  ctx: CheckContext,
  emulator: CheckOptions['emulator'],
  body: (target: KlaviyoCheckTarget) => Promise<CheckResult[]>,
): Promise<CheckResult[]> {
  const dest = ctx.config.destination as { apiKeyEnv?: string; baseUrl?: string; revision?: string };
  const apiKeyEnv = ctx.writesKlaviyo ? (dest.apiKeyEnv ?? 'KLAVIYO_API_KEY') : 'KLAVIYO_API_KEY';
  if (!emulator) {
    const baseUrl = (ctx.writesKlaviyo ? dest.baseUrl : undefined) ?? ctx.env.KLAVIYO_BASE_URL ?? 'https://a.klaviyo.com';
    return body({ baseUrl, apiKey: ctx.env[apiKeyEnv], apiKeyEnv, revision: dest.revision });
  }
  const { startEmulator } = await import('../emulator/index.js');
  const handle = await startEmulator({ port: 0, host: '127.0.0.1', ...(typeof emulator === 'object' ? emulator : {}) });
  try {
    return await body({ baseUrl: handle.url, apiKey: ctx.env.KLAVIYO_API_KEY ?? EMULATOR_DEMO_KEY, apiKeyEnv: 'KLAVIYO_API_KEY', revision: dest.revision, emulator: true });
  } finally {
    await handle.close();
  }
}

const MARK = { ok: 'ok  ', fail: 'FAIL', skip: 'skip' } as const;

/** One line per check (`ok  `/`FAIL`/`skip`, target, check, detail, `→ fix: …`), then a closing line. */
export function formatCheckReport(report: CheckReport): string {
  const width = Math.max(...report.checks.map((c) => `${c.target} ${c.check}`.length), 10);
  const lines = report.checks.map((c) => {
    const what = `${c.target} ${c.check}`.padEnd(width);
    return `${MARK[c.status]}  ${what}  ${c.detail}${c.status === 'fail' && c.fix ? ` → fix: ${c.fix}` : ''}`;
  });
  const failed = report.checks.filter((c) => c.status === 'fail').length;
  lines.push(
    failed === 0
      ? `${report.pipeline.name}: every check passed (${report.checks.filter((c) => c.status === 'ok').length} ok)`
      : `${report.pipeline.name}: ${failed} of ${report.checks.length} checks failed`,
  );
  return lines.join('\n');
}
