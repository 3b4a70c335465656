import { SuppressTransform } from '../config/schema.js';
import type { SourceRecord, TransformOutput } from '../core/record.js';
import type { TransformDefinition } from '../components/types.js';
import { compileIdentity, readIdentity } from './consent-rows.js';
import type { Transformer } from './types.js';

/** Rows → emails to suppress (`profile-suppression-bulk-create-jobs`; Klaviyo suppresses by email only). */
export const suppressTransform: TransformDefinition<typeof SuppressTransform> = {
  type: 'suppress',
  summary: 'Suppress profiles (by email) from email marketing, whatever their consent (reason USER_SUPPRESSED).',
  config: SuppressTransform,
  capabilities: { reads: 'rows', produces: 'suppress' },
  create(config): Transformer {
    const fields = compileIdentity(config.profile, config.when);
    return {
      push(record: SourceRecord): TransformOutput {
        const who = readIdentity(fields, record, 'email');
        if ('output' in who) return who.output;
        const payload = { email: who.email! };
        return { items: [{ kind: 'suppress', payload, first: record.pos, last: record.pos, row: record.row }], rejects: [] };
      },
      flush: () => ({ items: [], rejects: [] }),
      held: () => undefined,
    };
  },
};
