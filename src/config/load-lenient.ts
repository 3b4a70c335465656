import { EtlError } from '../core/errors.js';
import { loadPipelineFile, loadPipelineFileOrThrow, type LoadOptions, type PipelineSource } from './load.js';
import type { PipelineConfig } from './pipeline.js';

/** The variable a CONFIG_ENV_MISSING problem names (src/config/env.ts writes the message). */
const MISSING = /^environment variable ([A-Za-z_][A-Za-z0-9_]*) is not set/;

/**
 * Load a pipeline file for a command that does not use every section (`status` reads no source, `test` neither
 * source nor destination): a `${VAR}` that is unset in one of the `unused` sections only (the source's
 * `${DATABASE_URL}`) is replaced by a placeholder instead of failing; every other problem throws as for a run.
 * Returns the names of the variables that were left unset.
 */
export async function loadPipelineIgnoringEnvOf(
  file: string,
  unused: readonly string[],
  options: LoadOptions & { env: NodeJS.ProcessEnv },
): Promise<{ config: PipelineConfig; source: PipelineSource; unset: string[] }> {
  const first = await loadPipelineFile(file, options);
  const missing = first.problems.filter((p) => p.code === 'CONFIG_ENV_MISSING');
  const tolerable = missing.length > 0 && missing.every((p) => unused.some((section) => p.path === section || p.path.startsWith(section + '.') || p.path.startsWith(section + '[')));
  if (first.config !== undefined || !tolerable) return { ...(await loadPipelineFileOrThrow(file, options)), unset: [] };
  const unset = [...new Set(missing.map((p) => MISSING.exec(p.message)?.[1]).filter((n): n is string => n !== undefined))];
  const env = { ...options.env, ...Object.fromEntries(unset.map((name) => [name, `<${name} unset>`])) };
  const second = await loadPipelineFile(file, { ...options, env });
  if (second.config === undefined) {
    // a placeholder that does not fit (a URL the schema checks): the problems as a run would report them
    await loadPipelineFileOrThrow(file, options);
    throw new EtlError('INTERNAL', `${file}: could not be loaded without ${unset.join(', ')}`);
  }
  return { config: second.config, source: second.source, unset };
}
