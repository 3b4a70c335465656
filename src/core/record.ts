/**
 * The record model shared by every layer. Extractors yield SourceRecords; transforms turn them into
 * LoadItems (or Rejects); loaders acknowledge items by their sequence span. Positions are what
 * checkpoints and rejects are made of.
 */

import { EtlError } from './errors.js';

/** Where a record came from. `seq` is its 0-based index in the run's record stream. */
export interface SourcePosition {
  /** 0-based index of the record in this run's stream (stable across resumes for the same input). */
  seq: number;
  /** File path, `s3://bucket/key`, `postgres:<table or query name>`, `klaviyo:list/<id>`. */
  source: string;
  /** 1-based line of the record's first line in the file (CSV/NDJSON). */
  line?: number;
  /** Byte offset of the record's first byte in the (decompressed) file. */
  offset?: number;
  /** Cursor values for database / API sources (keyset values of this row, page cursor). */
  cursor?: Record<string, unknown>;
}

/** A raw record from a source, before transformation. */
export interface SourceRecord {
  pos: SourcePosition;
  /** Column name to value. Strings for CSV; typed values for PostgreSQL / NDJSON. */
  row: Record<string, unknown>;
  /** Set when the source could not parse this record (ragged row, bad quote…). `row` holds what was read. */
  error?: { code: RecordErrorCode; message: string };
  /** The raw text of the record, when the source has it (for the rejects file). */
  raw?: string;
  /**
   * Output part of an exported record (a source read as several ranges at once): a key that sorts in output order,
   * e.g. the ISO start of the record's time range. Export destinations write each part separately and publish the
   * parts joined in ascending key order, so the published output does not depend on which range answered first.
   */
  part?: string;
}

export type RecordErrorCode = string;

/** A record that was rejected, with everything needed to find and fix it. */
export interface Reject {
  stage: 'extract' | 'transform' | 'load';
  code: string;
  message: string;
  source: string;
  line?: number;
  offset?: number;
  seq: number;
  /**
   * The last record of the rows the rejected item came from, when it came from several (a grouped order's event):
   * every record from `seq` to `lastSeq` is a rejected row. Absent for a one-row item.
   */
  lastSeq?: number;
  /** JSON pointer or field name inside the record / payload that was wrong. */
  field?: string;
  row?: Record<string, unknown>;
  raw?: string;
}

/** Profile attributes in Klaviyo's wire names (email, phone_number, external_id, first_name, …, properties, location). */
export type ProfileAttributes = Record<string, unknown>;

/** The attributes of one event (Klaviyo wire names); the loader wraps them into the JSON:API bulk structure. */
export interface EventAttributes {
  /** Metric name, or `{name}`. */
  metric: string | { name: string };
  properties?: Record<string, unknown>;
  time?: string;
  value?: number;
  value_currency?: string;
  unique_id?: string;
  backfill?: boolean;
}

/** The payload of an event item: the event and the profile it belongs to. */
export interface EventPayload {
  profile: ProfileAttributes;
  event: EventAttributes;
}

/** One channel's consent. */
export interface Consent {
  consent: 'SUBSCRIBED';
  consented_at?: string;
}

/** The payload of a subscription item: one profile to subscribe, and the job-level options that group them. */
export interface SubscriptionPayload {
  /** Profile attributes: email and/or phone_number, and the consent per channel. */
  profile: {
    email?: string;
    phone_number?: string;
    subscriptions: {
      email?: { marketing: Consent };
      sms?: { marketing?: Consent; transactional?: Consent };
    };
  };
  /** List to subscribe into. */
  listId?: string;
  /** Job-level `historical_import`. @default false */
  historicalImport?: boolean;
  /** Job-level `custom_source`. */
  customSource?: string;
  /**
   * When the row's consent was given (ISO 8601), whether or not it is sent (Klaviyo takes `consented_at` only with
   * `historical_import`): the consent guard compares opt-outs with it.
   */
  consentedAt?: string;
  /** Read the profile's current consent first and hold the row back if it opted out since (see load/consent-guard.ts). */
  checkOptOuts?: boolean;
}

/** One channel's unsubscription. */
export interface Unsubscription {
  consent: 'UNSUBSCRIBED';
}

/**
 * The payload of an unsubscribe item: one profile to unsubscribe (`profile-subscription-bulk-delete-jobs`), and the
 * job-level options that group them.
 */
export interface UnsubscribePayload {
  profile: {
    email?: string;
    phone_number?: string;
    subscriptions: {
      email?: { marketing: Unsubscription };
      sms?: { marketing?: Unsubscription; transactional?: Unsubscription };
    };
  };
  /** List to unsubscribe from (Klaviyo unsubscribes a profile that is not in it globally). */
  listId?: string;
  /** With `listId`: read the list's membership first and skip the rows whose profile is not in it (NOT_IN_LIST). */
  membersOnly?: boolean;
}

/** The payload of a suppression item: the email to suppress (`profile-suppression-bulk-create-jobs`). */
export interface SuppressPayload {
  email: string;
}

/** The payload of a list-removal item: the profile (by email / phone number) to remove from a list. */
export interface ListRemovalPayload {
  listId: string;
  email?: string;
  phone_number?: string;
}

/** One row of an export file: column → value, every configured column present, in configuration order. */
export type ExportRow = Record<string, unknown>;

/** What every item carries besides its payload: its kind and the records it was made from. */
export interface ItemSpan<K extends ItemKind = ItemKind> {
  kind: K;
  /** The record span this item was made from (grouped events span several rows). */
  first: SourcePosition;
  last: SourcePosition;
  /** The original row(s), kept only so load-stage rejects can show them. */
  row?: Record<string, unknown>;
  /**
   * The source text of the (first) record, when the source keeps it (CSV, NDJSON). A loader may keep this instead of
   * `row` for its rejects: one string costs the garbage collector far less than a row object and its field strings.
   */
  raw?: string;
}

/** A Klaviyo profile to import (`payload`: its attributes). */
export interface ProfileItem extends ItemSpan<'profile'> {
  payload: ProfileAttributes;
  /**
   * Fields marked `clear: true` whose value is empty in the row (`phone_number`, `location.city`, `properties.tier`):
   * the loader clears them in Klaviyo (the bulk import ignores empty values).
   */
  clear?: string[];
}

/** A Klaviyo event to create. */
export interface EventItem extends ItemSpan<'event'> {
  payload: EventPayload;
}

/** A profile to subscribe. */
export interface SubscriptionItem extends ItemSpan<'subscription'> {
  payload: SubscriptionPayload;
}

/** A profile to unsubscribe. */
export interface UnsubscribeItem extends ItemSpan<'unsubscribe'> {
  payload: UnsubscribePayload;
}

/** An email to suppress. */
export interface SuppressItem extends ItemSpan<'suppress'> {
  payload: SuppressPayload;
}

/** A profile to remove from a list. */
export interface ListRemovalItem extends ItemSpan<'remove-from-list'> {
  payload: ListRemovalPayload;
}

/** A row of an export (a Klaviyo profile exported into a file): not a profile loaded into Klaviyo. */
export interface ExportRowItem extends ItemSpan<'export-row'> {
  payload: ExportRow;
  /** The record's output part ({@link SourceRecord.part}); absent for a source read as one range. */
  part?: string;
}

/**
 * One unit for a destination, discriminated by `kind`; the payload of a Klaviyo item is already in Klaviyo's wire
 * schema (snake_case JSON:API attributes).
 */
export type LoadItem = ProfileItem | EventItem | SubscriptionItem | UnsubscribeItem | SuppressItem | ListRemovalItem | ExportRowItem;

/** Every kind of item. */
export type ItemKind = LoadKind | 'export-row';

/** The kinds of item loaded into Klaviyo. */
export type LoadKind = 'profile' | 'event' | 'subscription' | 'unsubscribe' | 'suppress' | 'remove-from-list';

/** What a transform gives back for each record pushed into it. */
export type TransformOutput = {
  items: LoadItem[];
  rejects: Reject[];
  /** Records deliberately not loaded (e.g. a subscription row whose `when` is false): counted, neither item nor reject. */
  skipped?: number;
  /** Why they were skipped, e.g. `where[0]: Financial Status in ["refunded"]` (counted per reason in the report). */
  skipReason?: string;
};

/** Checks that an item handed to a destination is of the kind it loads (a wiring error otherwise). */
export function assertItemKind<K extends ItemKind>(item: LoadItem, kind: K): asserts item is Extract<LoadItem, { kind: K }> {
  if (item.kind !== kind) throw new EtlError('INTERNAL', `Expected a \`${kind}\` item, got \`${item.kind}\``);
}
