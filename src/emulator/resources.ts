/** JSON:API resource builders shared by route files (profiles are returned by several areas). */
import { isoMicros, isoSeconds } from './http.js';
import { pickFields } from './query.js';
import { profileAttributes, type EventRecord, type MetricRecord, type ProfileRecord } from './state.js';

export function profileResource(p: ProfileRecord, baseUrl: string, fields: Set<string> | null = null, extra?: Record<string, unknown>): Record<string, unknown> {
  const self = `${baseUrl}/api/profiles/${p.id}/`;
  const attrs = profileAttributes(p);
  delete attrs.anonymous_id; // not in Klaviyo's profile resource (kept in /_emulator/profiles)
  if (extra) Object.assign(attrs, extra);
  const picked = pickFields(attrs, fields);
  // additional fields are returned even when a sparse fieldset omits them (they were asked for explicitly)
  if (fields && extra) {
    for (const k in extra) {
      if (k !== 'subscriptions' && k !== 'predictive_analytics') continue;
      let sparse = false; // a sparse fieldset that names parts of it (`subscriptions.email.marketing`) wins
      for (const f of fields) if (f.startsWith(`${k}.`)) sparse = true;
      if (!sparse) picked[k] = extra[k];
    }
  }
  return {
    type: 'profile',
    id: p.id,
    attributes: picked,
    relationships: {
      lists: { links: { self: `${self}relationships/lists/`, related: `${self}lists/` } },
      segments: { links: { self: `${self}relationships/segments/`, related: `${self}segments/` } },
    },
    links: { self },
  };
}

export const API_INTEGRATION = { object: 'integration', id: '0rG4eQ', key: 'api', name: 'API', category: 'API' };

export function metricResource(m: MetricRecord, baseUrl: string, fields: Set<string> | null = null): Record<string, unknown> {
  return {
    type: 'metric',
    id: m.id,
    attributes: pickFields({ name: m.name, created: isoMicros(m.created), updated: isoMicros(m.updated), integration: API_INTEGRATION }, fields),
    relationships: {
      'flow-triggers': { links: { self: `${baseUrl}/api/metrics/${m.id}/relationships/flow-triggers/`, related: `${baseUrl}/api/metrics/${m.id}/flow-triggers/` } },
    },
    links: { self: `${baseUrl}/api/metrics/${m.id}/` },
  };
}

/** Klaviyo keeps `$value` and `$event_id` (the unique_id) in `event_properties`. */
export function eventProperties(e: EventRecord): Record<string, unknown> {
  const props: Record<string, unknown> = { ...e.properties };
  if (e.value !== undefined) props.$value = e.value;
  if (e.valueCurrency !== undefined) props.$value_currency = e.valueCurrency;
  if (e.uniqueId !== undefined) props.$event_id = e.uniqueId;
  if (e.backfill) props.$backfill = true;
  return props;
}

export function eventResource(e: EventRecord, baseUrl: string, fields: Set<string> | null = null): Record<string, unknown> {
  const self = `${baseUrl}/api/events/${e.id}/`;
  return {
    type: 'event',
    id: e.id,
    attributes: pickFields({ timestamp: Math.floor(e.time / 1000), event_properties: eventProperties(e), datetime: isoSeconds(e.time), uuid: e.uuid }, fields),
    relationships: {
      profile: { data: { type: 'profile', id: e.profileId }, links: { self: `${self}relationships/profile/`, related: `${self}profile/` } },
      metric: { data: { type: 'metric', id: e.metricId }, links: { self: `${self}relationships/metric/`, related: `${self}metric/` } },
    },
    links: { self },
  };
}
