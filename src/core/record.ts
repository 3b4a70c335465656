/**
 * The record model shared by every layer. Extractors yield SourceRecords; transforms turn them into
 * LoadItems (or Rejects); loaders acknowledge items by their sequence span. Positions are what
 * checkpoints and rejects are made of.
 */

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
  /** JSON pointer or field name inside the record / payload that was wrong. */
  field?: string;
  row?: Record<string, unknown>;
  raw?: string;
}

export type LoadKind = 'profile' | 'event' | 'subscription';

/**
 * One unit to send to Klaviyo. `payload` is already in Klaviyo's wire schema (snake_case JSON:API attributes):
 * - profile: the `attributes` of a profile (email, phone_number, external_id, first_name, …, properties, location)
 * - event: `{ profile: <profile attributes>, event: <event attributes incl. metric name, properties, time, value, unique_id> }`
 * - subscription: `{ profile: <attributes incl. subscriptions>, listId?: string }`
 */
export interface LoadItem<P = Record<string, unknown>> {
  kind: LoadKind;
  payload: P;
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

/** What a transform gives back for each record pushed into it. */
export type TransformOutput = {
  items: LoadItem[];
  rejects: Reject[];
  /** Records deliberately not loaded (e.g. a subscription row whose `when` is false): counted, neither item nor reject. */
  skipped?: number;
};
