/**
 * What the consent-removing transforms (`unsubscribe`, `suppress`, `remove-from-list`) share: a row's `when` and the
 * profile it names by email and/or phone number, compiled once per pipeline, and the transformer making one item a
 * row of them ({@link identityTransformer}).
 */
import type { FieldInput } from '../config/field.js';
import type { LoadItem, SourceRecord, TransformOutput } from '../core/record.js';
import { extractReject, failuresReject, runField, type FieldFailure } from './common.js';
import { compileField, type CompiledField } from './field/compile.js';
import type { Transformer } from './types.js';

/** The compiled identifier fields and `when` of a consent-removing transform. */
export interface RowIdentity {
  email?: CompiledField;
  phone?: CompiledField;
  when?: CompiledField;
}

export function compileIdentity(profile: { email?: FieldInput; phone_number?: FieldInput }, when: FieldInput | undefined): RowIdentity {
  return {
    ...(profile.email === undefined ? {} : { email: compileField(profile.email, 'profile.email', { defaultType: 'email' }) }),
    ...(profile.phone_number === undefined ? {} : { phone: compileField(profile.phone_number, 'profile.phone_number', { defaultType: 'phone' }) }),
    ...(when === undefined ? {} : { when: compileField(when, 'when', { defaultType: 'boolean' }) }),
  };
}

/** A row's identifiers, or the transform's output when the row is skipped (`when` not true) or rejected. */
type IdentityOf = { email?: string; phone?: string } | { output: TransformOutput };

/**
 * Read a row: an unparsed record or a failing field is rejected; a row whose `when` is not true is skipped; a row with
 * neither identifier is rejected (MISSING_IDENTIFIER), naming `needs`.
 */
function readIdentity(fields: RowIdentity, record: SourceRecord, needs = 'email or phone_number'): IdentityOf {
  if (record.error !== undefined) return { output: { items: [], rejects: [extractReject(record)] } };
  const failures: FieldFailure[] = [];
  if (fields.when !== undefined) {
    const go = runField(fields.when, 'when', record.row, failures);
    if (failures.length > 0) return { output: { items: [], rejects: [failuresReject(record, failures)] } };
    if (go !== true) return { output: { items: [], rejects: [], skipped: 1 } };
  }
  const email = runField(fields.email, 'profile.email', record.row, failures) as string | undefined;
  const phone = runField(fields.phone, 'profile.phone_number', record.row, failures) as string | undefined;
  if (failures.length === 0 && email === undefined && phone === undefined) {
    const field = fields.email === undefined && fields.phone !== undefined ? 'profile.phone_number' : 'profile.email';
    failures.push({ field, code: 'MISSING_IDENTIFIER', message: `the row names no profile: ${needs} needed` });
  }
  if (failures.length > 0) return { output: { items: [], rejects: [failuresReject(record, failures)] } };
  return { ...(email === undefined ? {} : { email }), ...(phone === undefined ? {} : { phone }) };
}

/** The items a consent-removing transform makes. */
type IdentityKind = 'unsubscribe' | 'suppress' | 'remove-from-list';
type PayloadOf<K extends IdentityKind> = Extract<LoadItem, { kind: K }>['payload'];

/**
 * The transformer of a consent-removing transform: one `kind` item a row, with the payload `payloadOf` makes of the
 * row's identifiers (or the output it returns instead: a reject). Rows {@link readIdentity} skips or rejects are so.
 */
export function identityTransformer<K extends IdentityKind>(
  fields: RowIdentity,
  kind: K,
  payloadOf: (who: { email?: string; phone?: string }, record: SourceRecord) => PayloadOf<K> | { output: TransformOutput },
  needs?: string,
): Transformer {
  return {
    push(record: SourceRecord): TransformOutput {
      const who = readIdentity(fields, record, needs);
      if ('output' in who) return who.output;
      const payload = payloadOf(who, record);
      if ('output' in payload) return payload.output;
      const item = { kind, payload, first: record.pos, last: record.pos, row: record.row } as Extract<LoadItem, { kind: K }>;
      return { items: [item], rejects: [] };
    },
    flush: () => ({ items: [], rejects: [] }),
    held: () => undefined,
  };
}
