import { SuppressTransform } from '../config/schema.js';
import type { TransformDefinition } from '../components/types.js';
import { compileIdentity, identityTransformer } from './consent-rows.js';
import type { Transformer } from './types.js';

/** Rows → emails to suppress (`profile-suppression-bulk-create-jobs`; Klaviyo suppresses by email only). */
export const suppressTransform: TransformDefinition<typeof SuppressTransform> = {
  type: 'suppress',
  summary: 'Suppress profiles (by email) from email marketing, whatever their consent (reason USER_SUPPRESSED).',
  config: SuppressTransform,
  capabilities: { reads: 'rows', produces: 'suppress' },
  create(config): Transformer {
    return identityTransformer(compileIdentity(config.profile, config.when), 'suppress', (who) => ({ email: who.email! }), 'email');
  },
};
