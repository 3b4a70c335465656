import { ProfileTransform } from '../config/schema.js';
import type { ProfileTransformConfig } from '../config/schema.js';
import type { ProfileItem, SourceRecord, TransformOutput } from '../core/record.js';
import { compileProfile, extractReject, failuresReject } from './common.js';
import type { FieldFailure } from './common.js';
import { compileConsent, consentOutput } from './consent.js';
import type { TransformContext, Transformer } from './types.js';
import type { TransformDefinition } from '../components/types.js';

/** The paths of the fields marked `clear: true` (`phone_number`, `location.city`, `properties.tier`). */
function clearPaths(mapping: ProfileTransformConfig['profile']): string[] {
  const marked = (field: unknown): boolean => typeof field === 'object' && field !== null && (field as { clear?: boolean }).clear === true;
  const paths: string[] = [];
  for (const [key, field] of Object.entries(mapping)) {
    if (key === 'location' || key === 'properties') {
      for (const [sub, f] of Object.entries((field ?? {}) as Record<string, unknown>)) if (marked(f)) paths.push(`${key}.${sub}`);
    } else if (marked(field)) paths.push(key);
  }
  return paths;
}

function valueAt(attrs: Record<string, unknown>, path: string): unknown {
  const dot = path.indexOf('.');
  if (dot < 0) return attrs[path];
  const parent = attrs[path.slice(0, dot)] as Record<string, unknown> | undefined;
  return parent?.[path.slice(dot + 1)];
}

/**
 * Rows → Klaviyo profile attributes (one LoadItem per row). A field marked `clear: true` whose value is empty is named
 * in the item's `clear` (the loader clears it in Klaviyo). With `subscribe:`, a row also yields a subscription item
 * for the same profile (its email / phone number), which the klaviyo destination sends only once the profile's import
 * was processed (src/load/klaviyo-profile-consent.ts): attributes and consent from one file, profile first. The
 * consent is built as the subscription transform's (transform/consent.ts): the same consent guard (`checkOptOuts`,
 * unless `unsafe_resubscribe_opted_out`) and `sms_regions` check, whose refused SMS consent rejects the row while its
 * profile is imported and its email consent subscribed.
 */
export const profileTransform: TransformDefinition<typeof ProfileTransform> = {
  type: 'profile',
  summary: 'One Klaviyo profile per row (email, phone_number, external_id, names, location, properties), optionally subscribed too.',
  config: ProfileTransform,
  capabilities: { reads: 'rows', produces: 'profile' },
  alsoProduces: (config) => (config.subscribe === undefined ? [] : ['subscription']),
  create(config, ctx: TransformContext): Transformer {
    const profile = compileProfile(config.profile);
    const clearable = clearPaths(config.profile);
    const names = { prefix: 'subscribe.', email: 'email', phone: 'phone_number' };
    const consent = config.subscribe === undefined ? undefined : compileConsent(config.subscribe, ctx.now ?? (() => new Date()), names);
    return {
      push(record: SourceRecord): TransformOutput {
        if (record.error !== undefined) return { items: [], rejects: [extractReject(record)] };
        const failures: FieldFailure[] = [];
        const attrs = profile(record.row, failures);
        if (failures.length > 0) return { items: [], rejects: [failuresReject(record, failures)] };
        const clear = clearable.filter((path) => valueAt(attrs, path) === undefined);
        const item: ProfileItem = { kind: 'profile', payload: attrs, first: record.pos, last: record.pos, row: record.row };
        if (clear.length > 0) item.clear = clear;
        if (!consent) return { items: [item], rejects: [] };
        const ids = () => ({ email: attrs.email as string | undefined, phone: attrs.phone_number as string | undefined });
        const result = consent(record.row, ids, failures);
        if (result === undefined) return { items: [], rejects: [failuresReject(record, failures)] };
        if (!result.wanted) return { items: [item], rejects: [] };
        const sent = result.payload ? 'its profile is imported and its email consent subscribed' : 'its profile is imported';
        const subscription = consentOutput(record, result, sent);
        return { items: [item, ...subscription.items], rejects: subscription.rejects };
      },
      flush: () => ({ items: [], rejects: [] }),
      held: () => undefined,
    };
  },
};
