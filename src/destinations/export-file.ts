/** What the file export destinations (csv, ndjson, s3) share: output paths, and a Destination over an export loader. */
import { EtlError } from '../core/errors.js';
import type { ExportFormat } from '../load/export-format.js';
import { createExportLoader, type ExportTarget } from '../load/file-export.js';
import type { Destination, DestinationContext, RunInfo } from './types.js';

/** The item kind export destinations take: one output row (column → value) per exported member. */
export const EXPORT_ROW = 'export-row';

/** Replace `{runId}` and `{date}` in an output path or key. */
export function expandExportPath(template: string, run: Pick<RunInfo, 'id' | 'startedAt'>): string {
  return template.replaceAll('{runId}', run.id).replaceAll('{date}', run.startedAt.toISOString().slice(0, 10));
}

/** How an export file is written: its format, and CSV's delimiter. */
export interface ExportEncoding {
  format: ExportFormat;
  /** CSV field delimiter. @default "," */
  delimiter?: string;
}

/** A destination writing export rows to `target` (`release` frees what the target holds, e.g. an S3 client). */
export function exportDestination(target: ExportTarget, encoding: ExportEncoding, ctx: DestinationContext, release: () => void = () => {}): Destination {
  const columns = ctx.items.columns;
  if (!columns) throw new EtlError('USAGE', `an export destination needs a transform with output columns (got items of kind ${ctx.items.kind})`);
  const loader = createExportLoader(
    {
      target,
      columns,
      format: encoding.format,
      delimiter: encoding.delimiter,
      resume: ctx.run.resumed ? { afterSeq: ctx.run.startAfter?.seq } : undefined,
      interrupted: ctx.run.interrupted,
    },
    { logger: ctx.logger, stats: ctx.stats, signal: ctx.signal, dryRun: ctx.dryRun, onAck: ctx.onAck, onReject: ctx.onReject },
  );
  return {
    write: (items) => loader.write(items),
    close: async () => {
      try {
        await loader.close();
      } finally {
        release();
      }
    },
    abort: async () => {
      await loader.abort();
      release();
    },
    pendingJobs: () => [],
    output: () => loader.published,
  };
}
