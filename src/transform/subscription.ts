import { SubscriptionTransform } from '../config/schema.js';
import type { SourceRecord, TransformOutput } from '../core/record.js';
import { extractReject, failuresReject, runField } from './common.js';
import type { FieldFailure } from './common.js';
import { compileConsent, consentOutput } from './consent.js';
import { compileField } from './field/compile.js';
import type { TransformContext, Transformer } from './types.js';
import type { TransformDefinition } from '../components/types.js';

/*
 * Rows → subscribe payloads: `{ profile: { email?, phone_number?, subscriptions }, listId?, historicalImport,
 * customSource?, consentedAt?, checkOptOuts? }` (the loader groups them into profile-subscription-bulk-create-jobs by
 * list / import flags). The consent of each row is built by transform/consent.ts (shared with a profile transform's
 * `subscribe:`): `when`, channels by identifier, `consented_at`, the consent guard and `sms_regions`.
 *
 * - `when` false or empty → the row is skipped (counted in `skipped`, no item, no reject).
 * - A phone number outside `sms_regions` rejects the row's SMS consent (SMS_REGION_UNSUPPORTED, the row in the
 *   rejects file); its email consent, when it has one, is subscribed all the same.
 */

export const subscriptionTransform: TransformDefinition<typeof SubscriptionTransform> = {
  type: 'subscription',
  summary: 'Subscribe profiles (email / SMS marketing consent), optionally into a list, optionally as historical import.',
  config: SubscriptionTransform,
  capabilities: { reads: 'rows', produces: 'subscription' },
  create(config, ctx: TransformContext): Transformer {
    const email = config.profile.email === undefined ? undefined : compileField(config.profile.email, 'profile.email', { defaultType: 'email' });
    const phone =
      config.profile.phone_number === undefined
        ? undefined
        : compileField(config.profile.phone_number, 'profile.phone_number', { defaultType: 'phone' });
    const consent = compileConsent(config, ctx.now ?? (() => new Date()), { prefix: '', email: 'profile.email', phone: 'profile.phone_number' });
    return {
      push(record: SourceRecord): TransformOutput {
        if (record.error !== undefined) return { items: [], rejects: [extractReject(record)] };
        const row = record.row;
        const failures: FieldFailure[] = [];
        const identifiers = (f: FieldFailure[]) => ({
          email: runField(email, 'profile.email', row, f) as string | undefined,
          phone: runField(phone, 'profile.phone_number', row, f) as string | undefined,
        });
        const result = consent(row, identifiers, failures);
        if (result === undefined) return { items: [], rejects: [failuresReject(record, failures)] };
        if (!result.wanted) return { items: [], rejects: [], skipped: 1, skipReason: 'when: not true' };
        return consentOutput(record, result, result.payload ? "the row's email consent is subscribed" : '');
      },
      flush: () => ({ items: [], rejects: [] }),
      held: () => undefined,
    };
  },
};
