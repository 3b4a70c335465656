import { RemoveFromListTransform } from '../config/schema.js';
import type { TransformDefinition } from '../components/types.js';
import { compileIdentity, identityTransformer } from './consent-rows.js';
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
    return identityTransformer(compileIdentity(config.profile, config.when), 'remove-from-list', (who) => ({
      listId: config.list,
      ...(who.email === undefined ? {} : { email: who.email }),
      ...(who.phone === undefined ? {} : { phone_number: who.phone }),
    }));
  },
};
