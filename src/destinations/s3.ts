import path from 'node:path';
import { S3Destination } from '../config/schema.js';
import type { DestinationDefinition } from '../components/types.js';
import { createS3Client } from '../s3/client.js';
import { EXPORT_ROW, expandExportPath, exportDestination } from './export-file.js';

/** The `s3` destination: export rows staged in a local file, uploaded as one object when the run completes. */
export const s3Destination: DestinationDefinition<typeof S3Destination> = {
  type: 's3',
  summary: 'Export rows as a CSV object in S3 (`.gz` compresses), staged locally and uploaded when the run completes.',
  config: S3Destination,
  capabilities: { accepts: [EXPORT_ROW] },
  create(dest, ctx) {
    const s3 = createS3Client({ region: dest.region, endpoint: dest.endpoint, forcePathStyle: dest.forcePathStyle, env: ctx.env });
    const key = expandExportPath(dest.key, ctx.run);
    const stagingPath = path.join(ctx.run.stateDir, `export-${ctx.run.id}${/\.gz$/i.test(key) ? '.csv.gz' : '.csv'}.partial`);
    return exportDestination({ type: 's3', client: s3, bucket: dest.bucket, key, stagingPath }, ',', ctx, () => s3.destroy());
  },
};
