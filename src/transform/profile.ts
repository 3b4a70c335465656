import { ProfileTransform } from '../config/schema.js';
import type { ProfileTransformConfig } from '../config/schema.js';
import type { SourceRecord, TransformOutput } from '../core/record.js';
import { compileProfile, extractReject, failuresReject } from './common.js';
import type { FieldFailure } from './common.js';
import type { Transformer } from './types.js';
import type { TransformDefinition } from '../components/types.js';

/** Rows → Klaviyo profile attributes (one LoadItem per row). */
export const profileTransform: TransformDefinition<typeof ProfileTransform> = {
  type: 'profile',
  summary: 'One Klaviyo profile per row (email, phone_number, external_id, names, location, properties).',
  config: ProfileTransform,
  capabilities: { reads: 'rows', produces: 'profile' },
  create(config): Transformer {
    const profile = compileProfile(config.profile);
    return {
      push(record: SourceRecord): TransformOutput {
        if (record.error !== undefined) return { items: [], rejects: [extractReject(record)] };
        const failures: FieldFailure[] = [];
        const attrs = profile(record.row, failures);
        if (failures.length > 0) return { items: [], rejects: [failuresReject(record, failures)] };
        return {
          items: [{ kind: 'profile', payload: attrs, first: record.pos, last: record.pos, row: record.row }],
          rejects: [],
        };
      },
      flush: () => ({ items: [], rejects: [] }),
      held: () => undefined,
    };
  },
};
