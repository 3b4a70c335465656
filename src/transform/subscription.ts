import { SubscriptionTransform } from '../config/schema.js';
import type { SubscriptionTransformConfig } from '../config/schema.js';
import type { Consent, SourceRecord, SubscriptionPayload, TransformOutput } from '../core/record.js';
import { extractReject, failuresReject, runField } from './common.js';
import type { FieldFailure } from './common.js';
import { compileField, type CompiledField, type Row } from './field/compile.js';
import type { TransformContext, Transformer } from './types.js';
import type { TransformDefinition } from '../components/types.js';
import { KLAVIYO_SMS_REGIONS, phoneRegion } from '../klaviyo/sms-regions.js';

/*
 * Rows → subscribe payloads: `{ profile: { email?, phone_number?, subscriptions }, listId?, historicalImport,
 * customSource? }` (the loader groups them into profile-subscription-bulk-create-jobs by list / import flags).
 *
 * - `when` (boolean; type `string` means `boolean`): false or empty → the row is skipped (counted in `skipped`, no
 *   item, no reject). An invalid boolean is a reject.
 * - A channel is included when its identifier is present: email needs `email`, sms needs `phone_number`. A row for
 *   which no configured channel can be included is rejected (MISSING_IDENTIFIER), e.g. an sms-only row without phone.
 * - `consented_at` (datetime) is sent only with `historical_import` (Klaviyo rejects it otherwise); then it is
 *   required (MISSING_REQUIRED) and must be in the past (INVALID_DATE). Without it, it is read all the same for the
 *   consent guard (an opt-out newer than it holds the row back).
 * - The consent guard (`checkOptOuts` on every item unless `unsafe_resubscribe_opted_out`): the loader reads each
 *   batch's current consent and skips rows whose profile opted out since (load/consent-guard.ts).
 * - SMS: a phone number of a region outside `sms_regions` (default: every region Klaviyo SMS is available in) is
 *   rejected (SMS_REGION_UNSUPPORTED): Klaviyo answers 400 to SMS consent the account cannot send to.
 */

/** The channels a subscription transform subscribes. */
interface Channels {
  emailChannel: boolean;
  smsMarketing: boolean;
  smsTransactional: boolean;
  smsChannel: boolean;
}

function channelsOf(config: SubscriptionTransformConfig): Channels {
  const smsMarketing = config.channels.sms?.marketing === true;
  const smsTransactional = config.channels.sms?.transactional === true;
  return { emailChannel: config.channels.email?.marketing === true, smsMarketing, smsTransactional, smsChannel: smsMarketing || smsTransactional };
}

/** `consented_at`: with a historical import required, and in the past. */
function consentTime(field: CompiledField | undefined, historical: boolean, now: () => Date, row: Row, failures: FieldFailure[]): string | undefined {
  if (field === undefined) {
    if (historical) failures.push({ field: 'consented_at', code: 'MISSING_REQUIRED', message: 'consented_at: required with historical_import' });
    return undefined;
  }
  const at = runField(field, 'consented_at', row, failures) as string | undefined;
  if (historical && at !== undefined && Date.parse(at) > now().getTime()) {
    failures.push({
      field: 'consented_at',
      code: 'INVALID_DATE',
      message: `consented_at: ${at} is in the future (historical_import needs a past consent time)`,
    });
  }
  return at;
}

/** The consent per channel of one profile: a channel is included when its identifier is present. */
function subscriptionsOf(
  c: Channels,
  email: string | undefined,
  phone: string | undefined,
  at: string | undefined,
): SubscriptionPayload['profile']['subscriptions'] {
  const consent = (): Consent => (at === undefined ? { consent: 'SUBSCRIBED' } : { consent: 'SUBSCRIBED', consented_at: at });
  const subscriptions: SubscriptionPayload['profile']['subscriptions'] = {};
  if (c.emailChannel && email !== undefined) subscriptions.email = { marketing: consent() };
  if (c.smsChannel && phone !== undefined) {
    const sms: { marketing?: Consent; transactional?: Consent } = {};
    if (c.smsMarketing) sms.marketing = consent();
    if (c.smsTransactional) sms.transactional = consent();
    subscriptions.sms = sms;
  }
  return subscriptions;
}

/** A phone number whose region is not one the account can text: rejected (SMS_REGION_UNSUPPORTED), not sent. */
function checkSmsRegion(phone: string, regions: ReadonlySet<string>, configured: boolean, failures: FieldFailure[]): void {
  const region = phoneRegion(phone);
  if (region !== undefined && regions.has(region)) return;
  const where = configured ? `sms_regions (${[...regions].join(', ')})` : 'the regions Klaviyo SMS is available in (set sms_regions to your sending numbers\' regions)';
  failures.push({
    field: 'profile.phone_number',
    code: 'SMS_REGION_UNSUPPORTED',
    message: `profile.phone_number: ${region ?? 'no region'} is not among ${where}; Klaviyo refuses SMS consent it cannot send to`,
  });
}

export const subscriptionTransform: TransformDefinition<typeof SubscriptionTransform> = {
  type: 'subscription',
  summary: 'Subscribe profiles (email / SMS marketing consent), optionally into a list, optionally as historical import.',
  config: SubscriptionTransform,
  capabilities: { reads: 'rows', produces: 'subscription' },
  create(config, ctx: TransformContext): Transformer {
    const now = ctx.now ?? (() => new Date());
    const historical = config.historical_import === true;
    const email = config.profile.email === undefined ? undefined : compileField(config.profile.email, 'profile.email', { defaultType: 'email' });
    const phone =
      config.profile.phone_number === undefined
        ? undefined
        : compileField(config.profile.phone_number, 'profile.phone_number', { defaultType: 'phone' });
    const consentedAt =
      config.consented_at !== undefined ? compileField(config.consented_at, 'consented_at', { defaultType: 'datetime', required: historical }) : undefined;
    const smsRegions = new Set(config.sms_regions ?? KLAVIYO_SMS_REGIONS);
    const when = config.when === undefined ? undefined : compileField(config.when, 'when', { defaultType: 'boolean' });
    const channels = channelsOf(config);
    const { emailChannel, smsChannel } = channels;
    const wanted = [emailChannel ? 'email (needs email)' : '', smsChannel ? 'sms (needs phone_number)' : '']
      .filter(Boolean)
      .join(', ');

    const run = runField;

    return {
      push(record: SourceRecord): TransformOutput {
        if (record.error !== undefined) return { items: [], rejects: [extractReject(record)] };
        const row = record.row;
        const failures: FieldFailure[] = [];
        if (when !== undefined) {
          const subscribe = run(when, 'when', row, failures);
          if (failures.length > 0) return { items: [], rejects: [failuresReject(record, failures)] };
          if (subscribe !== true) return { items: [], rejects: [], skipped: 1, skipReason: 'when: not true' };
        }
        const e = run(email, 'profile.email', row, failures) as string | undefined;
        const p = run(phone, 'profile.phone_number', row, failures) as string | undefined;
        const at = consentTime(consentedAt, historical, now, row, failures);
        if (smsChannel && p !== undefined) checkSmsRegion(p, smsRegions, config.sms_regions !== undefined, failures);
        if (failures.length > 0) return { items: [], rejects: [failuresReject(record, failures)] };

        const subscriptions = subscriptionsOf(channels, e, p, historical ? at : undefined);
        if (subscriptions.email === undefined && subscriptions.sms === undefined) {
          failures.push({
            field: smsChannel && !emailChannel ? 'profile.phone_number' : 'profile.email',
            code: 'MISSING_IDENTIFIER',
            message: `no channel can be subscribed: ${wanted || 'no channel configured'}`,
          });
          return { items: [], rejects: [failuresReject(record, failures)] };
        }
        const payload: SubscriptionPayload = {
          profile: { ...(e !== undefined && { email: e }), ...(p !== undefined && { phone_number: p }), subscriptions },
          historicalImport: historical,
          ...(at === undefined ? {} : { consentedAt: at }),
          ...(config.unsafe_resubscribe_opted_out ? {} : { checkOptOuts: true }),
        };
        if (config.list !== undefined) payload.listId = config.list;
        if (config.custom_source !== undefined) payload.customSource = config.custom_source;
        return {
          items: [
            {
              kind: 'subscription',
              payload,
              first: record.pos,
              last: record.pos,
              row,
            },
          ],
          rejects: [],
        };
      },
      flush: () => ({ items: [], rejects: [] }),
      held: () => undefined,
    };
  },
};
