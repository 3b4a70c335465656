import path from 'node:path';
import { csvDelimiter, CsvDestination } from '../config/schema.js';
import type { DestinationDefinition } from '../components/types.js';
import { EXPORT_ROW, expandExportPath, exportDestination } from './export-file.js';

/** The `csv` destination: export rows to a local CSV file, published (renamed into place) when the run completes. */
export const csvDestination: DestinationDefinition<typeof CsvDestination> = {
  type: 'csv',
  summary: 'Export rows to a local CSV file (`.gz` compresses), written atomically and resumably.',
  config: CsvDestination,
  capabilities: { accepts: [EXPORT_ROW] },
  create(dest, ctx) {
    const file = path.resolve(ctx.baseDir, expandExportPath(dest.path, ctx.run));
    return exportDestination({ type: 'file', path: file }, { format: 'csv', delimiter: csvDelimiter(dest.delimiter) }, ctx);
  },
};
