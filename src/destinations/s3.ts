import path from 'node:path';
import { S3Destination } from '../config/schema.js';
import type { DestinationDefinition } from '../components/types.js';
import { createS3Client } from '../s3/client.js';
import { EXPORT_ROW, expandExportPath, exportDestination } from './export-file.js';

/** The `s3` destination: export rows staged in a local file, uploaded as one object when the run completes. */
export const s3Destination: DestinationDefinition<typeof S3Destination> = {
  type: 's3',
  summary: 'Export rows as a CSV or NDJSON object in S3 (`.gz` compresses), staged locally and uploaded when the run completes.',
  config: S3Destination,
  capabilities: { accepts: [EXPORT_ROW] },
  create(dest, ctx) {
    if (ctx.run.emulatorOutputDir) {
      // --emulator: the object is written as a local file, never to the real bucket
      const file = path.join(ctx.run.emulatorOutputDir, 's3', dest.bucket, expandExportPath(dest.key, ctx.run));
      ctx.logger.warn('--emulator run: the S3 export is written to a local file instead of the bucket', { file });
      return exportDestination({ type: 'file', path: file }, { format: dest.format }, ctx);
    }
    const s3 = createS3Client({ region: dest.region, endpoint: dest.endpoint, forcePathStyle: dest.forcePathStyle, env: ctx.env });
    const key = expandExportPath(dest.key, ctx.run);
    const stagingPath = path.join(ctx.run.stateDir, `export-${ctx.run.id}.${dest.format}${/\.gz$/i.test(key) ? '.gz' : ''}.partial`);
    return exportDestination({ type: 's3', client: s3, bucket: dest.bucket, key, stagingPath }, { format: dest.format }, ctx, () => s3.destroy());
  },
};
