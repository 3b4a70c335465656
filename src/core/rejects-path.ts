/**
 * Where a run's rejects go: `rejects.path` (relative to the pipeline file) or the default in the pipeline's state
 * directory, with `{runId}` and `{date}` (the UTC day the run started, `YYYY-MM-DD`) replaced. A run never replaces
 * the rejects of an earlier run: when the file is there already, this run writes `<name>-2<ext>` (`-3`, …) beside it.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';

/** The default rejects file of a run, in the pipeline's state directory. */
export const DEFAULT_REJECTS_PATH = 'rejects/{date}-{runId}.ndjson';
/** The default rejects file of a dry run. */
export const DEFAULT_DRY_RUN_REJECTS_PATH = 'rejects/{date}-{runId}.dry-run.ndjson';

/** Values that stand for the placeholders where no run is at hand (the config rules check a path's shape). */
export const SAMPLE_RUN = { runId: '00000000-0000-4000-8000-000000000000', date: new Date(Date.UTC(2026, 0, 1)) };

/** `{runId}` and `{date}` replaced in a rejects path. */
export function expandRejectsPath(template: string, run: { runId: string; date: Date }): string {
  const day = run.date.toISOString().slice(0, 10);
  return template.replaceAll('{runId}', run.runId).replaceAll('{date}', day);
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** `file` when nothing is there yet, else the first free `<name>-<n><ext>` beside it (n from 2). */
export async function unusedRejectsPath(file: string): Promise<string> {
  if (!(await exists(file))) return file;
  const ext = /\.(ndjson|csv|jsonl|json|txt)(\.gz)?$/i.exec(file)?.[0] ?? path.extname(file);
  const stem = file.slice(0, file.length - ext.length);
  for (let n = 2; ; n++) {
    const candidate = `${stem}-${n}${ext}`;
    if (!(await exists(candidate))) return candidate;
  }
}
