import path from 'node:path';
import { NdjsonDestination } from '../config/schema.js';
import type { DestinationDefinition } from '../components/types.js';
import { EXPORT_ROW, expandExportPath, exportDestination } from './export-file.js';

/**
 * The `ndjson` destination: export rows to a local NDJSON file (one JSON object per row, JSON types kept), published
 * (renamed into place) when the run completes.
 */
export const ndjsonDestination: DestinationDefinition<typeof NdjsonDestination> = {
  type: 'ndjson',
  summary: 'Export rows to a local NDJSON file (`.gz` compresses), one JSON object per row, written atomically and resumably.',
  config: NdjsonDestination,
  capabilities: { accepts: [EXPORT_ROW] },
  create(dest, ctx) {
    const file = path.resolve(ctx.baseDir, expandExportPath(dest.path, ctx.run));
    return exportDestination({ type: 'file', path: file }, { format: 'ndjson' }, ctx);
  },
};
