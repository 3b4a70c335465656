import { UnsubscribeTransform } from '../config/schema.js';
import type { UnsubscribeTransformConfig } from '../config/schema.js';
import type { UnsubscribePayload, Unsubscription } from '../core/record.js';
import type { TransformDefinition } from '../components/types.js';
import { failuresReject } from './common.js';
import { compileIdentity, identityTransformer } from './consent-rows.js';
import type { Transformer } from './types.js';

/*
 * Rows → unsubscribe payloads (`profile-subscription-bulk-delete-jobs`): `{ profile: { email?, phone_number?,
 * subscriptions }, listId?, membersOnly }`.
 *
 * - A channel is included when its identifier is present: email needs `email`, sms needs `phone_number`. A row for
 *   which no configured channel can be included is rejected (MISSING_IDENTIFIER).
 * - `list` + `notInList: skip` (the default): the loader reads the list's membership of each batch and skips the rows
 *   whose profile is not in the list (NOT_IN_LIST), because Klaviyo unsubscribes those globally.
 */

type Subscriptions = UnsubscribePayload['profile']['subscriptions'];

function subscriptionsOf(config: UnsubscribeTransformConfig, email: string | undefined, phone: string | undefined): Subscriptions {
  const off = (): Unsubscription => ({ consent: 'UNSUBSCRIBED' });
  const subscriptions: Subscriptions = {};
  if (config.channels.email?.marketing === true && email !== undefined) subscriptions.email = { marketing: off() };
  const sms = config.channels.sms;
  if (sms !== undefined && phone !== undefined && (sms.marketing || sms.transactional === true)) {
    subscriptions.sms = { ...(sms.marketing ? { marketing: off() } : {}), ...(sms.transactional === true ? { transactional: off() } : {}) };
  }
  return subscriptions;
}

export const unsubscribeTransform: TransformDefinition<typeof UnsubscribeTransform> = {
  type: 'unsubscribe',
  summary: 'Unsubscribe profiles from email / SMS marketing, globally or from one list (never globally by accident).',
  config: UnsubscribeTransform,
  capabilities: { reads: 'rows', produces: 'unsubscribe' },
  create(config): Transformer {
    const fields = compileIdentity(config.profile, config.when);
    const emailChannel = config.channels.email?.marketing === true;
    const smsChannel = config.channels.sms !== undefined && (config.channels.sms.marketing || config.channels.sms.transactional === true);
    const wanted = [emailChannel ? 'email (needs email)' : '', smsChannel ? 'sms (needs phone_number)' : ''].filter(Boolean).join(', ');
    const membersOnly = config.list !== undefined && config.notInList === 'skip';
    return identityTransformer(fields, 'unsubscribe', (who, record) => {
      const subscriptions = subscriptionsOf(config, who.email, who.phone);
      if (subscriptions.email === undefined && subscriptions.sms === undefined) {
        const field = smsChannel && !emailChannel ? 'profile.phone_number' : 'profile.email';
        const message = `no channel can be unsubscribed: ${wanted || 'no channel configured'}`;
        return { output: { items: [], rejects: [failuresReject(record, [{ field, code: 'MISSING_IDENTIFIER', message }])] } };
      }
      return {
        profile: { ...(who.email === undefined ? {} : { email: who.email }), ...(who.phone === undefined ? {} : { phone_number: who.phone }), subscriptions },
        ...(config.list === undefined ? {} : { listId: config.list, membersOnly }),
      };
    });
  },
};
