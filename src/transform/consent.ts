import type { SubscriptionTransformConfig } from '../config/schema.js';
import type { Consent, SubscriptionPayload } from '../core/record.js';
import { runField, type FieldFailure } from './common.js';
import { compileField, type CompiledField, type Row } from './field/compile.js';

/*
 * Consent of one row, shared by the `subscription` transform and a `profile` transform's `subscribe:` section:
 *
 * - `when` (boolean; type `string` means `boolean`): false or empty → not subscribed. An invalid boolean fails.
 * - A channel is included when its identifier is present: email needs `email`, sms needs `phone_number`. A row for
 *   which no configured channel can be included fails (MISSING_IDENTIFIER), e.g. an sms-only row without phone.
 * - `consented_at` (datetime) is sent only with `historical_import` (Klaviyo rejects it otherwise); then it is
 *   required (MISSING_REQUIRED) and must be in the past (INVALID_DATE).
 */

/** What consent settings say (the subscription transform's, or a profile transform's `subscribe:`). */
export type ConsentConfig = Pick<SubscriptionTransformConfig, 'channels' | 'consented_at' | 'historical_import' | 'list' | 'custom_source' | 'when'>;

/** The row's identifiers (read after `when`, so a row not wanted is never rejected for them). */
type Identifiers = (failures: FieldFailure[]) => { email?: string; phone?: string };

/** The consent of one row: a subscription payload, `not-wanted` (`when` is not true), or failures pushed. */
export type ConsentOf = (row: Row, identifiers: Identifiers, failures: FieldFailure[]) => SubscriptionPayload | 'not-wanted' | undefined;

/** The channels consent settings subscribe. */
interface Channels {
  emailChannel: boolean;
  smsMarketing: boolean;
  smsTransactional: boolean;
  smsChannel: boolean;
}

function channelsOf(config: ConsentConfig): Channels {
  const smsMarketing = config.channels.sms?.marketing === true;
  const smsTransactional = config.channels.sms?.transactional === true;
  return { emailChannel: config.channels.email?.marketing === true, smsMarketing, smsTransactional, smsChannel: smsMarketing || smsTransactional };
}

/** `consented_at` of a historical import: required, and in the past. */
function consentTime(field: CompiledField | undefined, name: string, now: () => Date, row: Row, failures: FieldFailure[]): string | undefined {
  if (field === undefined) {
    failures.push({ field: name, code: 'MISSING_REQUIRED', message: `${name}: required with historical_import` });
    return undefined;
  }
  const at = runField(field, name, row, failures) as string | undefined;
  if (at !== undefined && Date.parse(at) > now().getTime()) {
    failures.push({ field: name, code: 'INVALID_DATE', message: `${name}: ${at} is in the future (historical_import needs a past consent time)` });
  }
  return at;
}

/** The consent per channel of one profile: a channel is included when its identifier is present. */
function subscriptionsOf(c: Channels, email: string | undefined, phone: string | undefined, at: string | undefined): SubscriptionPayload['profile']['subscriptions'] {
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

/**
 * Compile consent settings once. `prefix` names their fields in failures (`subscribe.` for a profile transform's
 * section); the row's email and phone number are read by the caller (its profile mapping).
 */
export function compileConsent(config: ConsentConfig, now: () => Date, prefix = ''): ConsentOf {
  const historical = config.historical_import === true;
  const consentedAt =
    historical && config.consented_at !== undefined
      ? compileField(config.consented_at, `${prefix}consented_at`, { defaultType: 'datetime', required: true })
      : undefined;
  const when = config.when === undefined ? undefined : compileField(config.when, `${prefix}when`, { defaultType: 'boolean' });
  const channels = channelsOf(config);
  const { emailChannel, smsChannel } = channels;
  const wanted = [emailChannel ? 'email (needs email)' : '', smsChannel ? 'sms (needs phone_number)' : ''].filter(Boolean).join(', ');
  return (row, identifiers, failures) => {
    if (when !== undefined) {
      const subscribe = runField(when, `${prefix}when`, row, failures);
      if (failures.length > 0) return undefined;
      if (subscribe !== true) return 'not-wanted';
    }
    const { email, phone } = identifiers(failures);
    const at = historical ? consentTime(consentedAt, `${prefix}consented_at`, now, row, failures) : undefined;
    if (failures.length > 0) return undefined;
    const subscriptions = subscriptionsOf(channels, email, phone, at);
    if (subscriptions.email === undefined && subscriptions.sms === undefined) {
      failures.push({
        field: smsChannel && !emailChannel ? 'profile.phone_number' : 'profile.email',
        code: 'MISSING_IDENTIFIER',
        message: `no channel can be subscribed: ${wanted || 'no channel configured'}`,
      });
      return undefined;
    }
    const payload: SubscriptionPayload = {
      profile: { ...(email !== undefined && { email }), ...(phone !== undefined && { phone_number: phone }), subscriptions },
      historicalImport: historical,
    };
    if (config.list !== undefined) payload.listId = config.list;
    if (config.custom_source !== undefined) payload.customSource = config.custom_source;
    return payload;
  };
}
