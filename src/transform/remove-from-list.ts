import { RemoveFromListTransform } from '../config/schema.js';
import type { ListRemovalPayload, SourceRecord, TransformOutput } from '../core/record.js';
import type { TransformDefinition } from '../components/types.js';
import { compileIdentity, readIdentity } from './consent-rows.js';
import type { Transformer } from './types.js';

/**
 * Rows → profiles to remove from a list (by email and/or phone number). The loader finds them among the list's
 * members and removes them by id; consent is unchanged.
 */
export const removeFromListTransform: TransformDefinition<typeof RemoveFromListTransform> = {
  type: 'remove-from-list',
  summary: 'Remove profiles (by email / phone number) from a list; their consent is unchanged.',
  config: RemoveFromListTransform,
  capabilities: { reads: 'rows', produces: 'remove-from-list' },
  create(config): Transformer {
    const fields = compileIdentity(config.profile, config.when);
    return {
      push(record: SourceRecord): TransformOutput {
        const who = readIdentity(fields, record);
        if ('output' in who) return who.output;
        const payload: ListRemovalPayload = {
          listId: config.list,
          ...(who.email === undefined ? {} : { email: who.email }),
          ...(who.phone === undefined ? {} : { phone_number: who.phone }),
        };
        return { items: [{ kind: 'remove-from-list', payload, first: record.pos, last: record.pos, row: record.row }], rejects: [] };
      },
      flush: () => ({ items: [], rejects: [] }),
      held: () => undefined,
    };
  },
};
