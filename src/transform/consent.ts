import type { SubscriptionTransformConfig } from '../config/schema.js';
import type { Consent, Reject, SourceRecord, SubscriptionItem, SubscriptionPayload } from '../core/record.js';
import { KLAVIYO_SMS_REGIONS, phoneRegion } from '../klaviyo/sms-regions.js';
import { failuresReject, runField, type FieldFailure } from './common.js';
import { compileField, type CompiledField, type Row } from './field/compile.js';

/*
 * Consent of one row, the one builder of the `subscription` transform and a `profile` transform's `subscribe:`
 * section (profiles and consent from one file):
 *
 * - `when` (boolean; type `string` means `boolean`): false or empty → not subscribed. An invalid boolean fails.
 * - A channel is included when its identifier is present: email needs `email`, sms needs `phone_number`. A row for
 *   which no configured channel can be included fails (MISSING_IDENTIFIER), e.g. an sms-only row without phone.
 * - `consented_at` (datetime) is sent only with `historical_import` (Klaviyo rejects it otherwise); then it is
 *   required (MISSING_REQUIRED) and must be in the past (INVALID_DATE). Without it, it is read all the same for the
 *   consent guard (an opt-out newer than it holds the row back).
 * - The consent guard (`checkOptOuts` on every payload unless `unsafe_resubscribe_opted_out`): the loader reads each
 *   batch's current consent and skips rows whose profile opted out since (load/consent-guard.ts).
 * - SMS: a phone number of a region outside `sms_regions` (default: every region Klaviyo SMS is available in) cannot
 *   be given SMS consent (Klaviyo answers 400 to SMS consent the account cannot send to): only the SMS consent is
 *   refused (`smsRefused`, SMS_REGION_UNSUPPORTED), the row's email consent is subscribed all the same.
 */

/** What consent settings say (the subscription transform's, or a profile transform's `subscribe:`). */
export type ConsentConfig = Pick<
  SubscriptionTransformConfig,
  'channels' | 'consented_at' | 'historical_import' | 'list' | 'custom_source' | 'when' | 'sms_regions' | 'unsafe_resubscribe_opted_out'
>;

/** The row's identifiers (read after `when`, so a row not wanted is never rejected for them). */
type Identifiers = (failures: FieldFailure[]) => { email?: string; phone?: string };

/**
 * The consent of one row: `wanted: false` (`when` is not true), or the payload to subscribe (absent when no channel
 * is left once the SMS consent was refused) and the refused SMS consent. Undefined: the row failed (failures pushed).
 */
export type RowConsent = { wanted: false } | { wanted: true; payload?: SubscriptionPayload; smsRefused?: FieldFailure };

export type ConsentOf = (row: Row, identifiers: Identifiers, failures: FieldFailure[]) => RowConsent | undefined;

/** How failures name the fields: `prefix` before `consented_at` / `when`, and the identifiers' names. */
export interface ConsentNames {
  prefix: string;
  email: string;
  phone: string;
}

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

/** `consented_at`: with a historical import required, and in the past. */
function consentTime(field: CompiledField | undefined, name: string, historical: boolean, now: () => Date, row: Row, failures: FieldFailure[]): string | undefined {
  if (field === undefined) {
    if (historical) failures.push({ field: name, code: 'MISSING_REQUIRED', message: `${name}: required with historical_import` });
    return undefined;
  }
  const at = runField(field, name, row, failures) as string | undefined;
  if (historical && at !== undefined && Date.parse(at) > now().getTime()) {
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

/** Why a phone number cannot be given SMS consent (its region is not one the account can text), or undefined. */
function smsRegionRefusal(phone: string, regions: ReadonlySet<string>, configured: boolean, field: string): FieldFailure | undefined {
  const region = phoneRegion(phone);
  if (region !== undefined && regions.has(region)) return undefined;
  const where = configured ? `sms_regions (${[...regions].join(', ')})` : 'the regions Klaviyo SMS is available in (set sms_regions to your sending numbers\' regions)';
  return {
    field,
    code: 'SMS_REGION_UNSUPPORTED',
    message: `${field}: ${region ?? 'no region'} is not among ${where}; Klaviyo refuses SMS consent it cannot send to`,
  };
}

/** Compile consent settings once; the row's email and phone number are read by the caller (its profile mapping). */
export function compileConsent(config: ConsentConfig, now: () => Date, names: ConsentNames): ConsentOf {
  const historical = config.historical_import === true;
  const atName = `${names.prefix}consented_at`;
  const consentedAt = config.consented_at === undefined ? undefined : compileField(config.consented_at, atName, { defaultType: 'datetime', required: historical });
  const when = config.when === undefined ? undefined : compileField(config.when, `${names.prefix}when`, { defaultType: 'boolean' });
  const smsRegions = new Set(config.sms_regions ?? KLAVIYO_SMS_REGIONS);
  const channels = channelsOf(config);
  const { emailChannel, smsChannel } = channels;
  const wanted = [emailChannel ? 'email (needs email)' : '', smsChannel ? 'sms (needs phone_number)' : ''].filter(Boolean).join(', ');
  return (row, identifiers, failures) => {
    if (when !== undefined) {
      const subscribe = runField(when, `${names.prefix}when`, row, failures);
      if (failures.length > 0) return undefined;
      if (subscribe !== true) return { wanted: false };
    }
    const { email, phone } = identifiers(failures);
    const at = consentTime(consentedAt, atName, historical, now, row, failures);
    if (failures.length > 0) return undefined;
    const smsRefused = smsChannel && phone !== undefined ? smsRegionRefusal(phone, smsRegions, config.sms_regions !== undefined, names.phone) : undefined;
    const sendPhone = smsRefused === undefined ? phone : undefined; // no SMS consent: the phone number is not sent
    const subscriptions = subscriptionsOf(channels, email, sendPhone, historical ? at : undefined);
    if (subscriptions.email === undefined && subscriptions.sms === undefined) {
      if (smsRefused !== undefined) return { wanted: true, smsRefused };
      failures.push({
        field: smsChannel && !emailChannel ? names.phone : names.email,
        code: 'MISSING_IDENTIFIER',
        message: `no channel can be subscribed: ${wanted || 'no channel configured'}`,
      });
      return undefined;
    }
    const payload: SubscriptionPayload = {
      profile: { ...(email !== undefined && { email }), ...(sendPhone !== undefined && { phone_number: sendPhone }), subscriptions },
      historicalImport: historical,
      ...(at === undefined ? {} : { consentedAt: at }),
      ...(config.unsafe_resubscribe_opted_out ? {} : { checkOptOuts: true }),
    };
    if (config.list !== undefined) payload.listId = config.list;
    if (config.custom_source !== undefined) payload.customSource = config.custom_source;
    return { wanted: true, payload, ...(smsRefused && { smsRefused }) };
  };
}

/**
 * A row's consent as transform output: its subscription item (if any channel is left) and, for an SMS consent that
 * cannot be given, a reject of the row naming what of it was sent all the same (`sent`: e.g. "its email consent is
 * subscribed"), so the user can fix the phone number and send the row again.
 */
export function consentOutput(record: SourceRecord, consent: { payload?: SubscriptionPayload; smsRefused?: FieldFailure }, sent: string): { items: SubscriptionItem[]; rejects: Reject[] } {
  const items: SubscriptionItem[] = consent.payload ? [{ kind: 'subscription', payload: consent.payload, first: record.pos, last: record.pos, row: record.row }] : [];
  if (consent.smsRefused === undefined) return { items, rejects: [] };
  const note = sent === '' ? '' : `; only the SMS consent is rejected: ${sent}`;
  return { items, rejects: [failuresReject(record, [{ ...consent.smsRefused, message: consent.smsRefused.message + note }])] };
}
