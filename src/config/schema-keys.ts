/**
 * The keys a zod schema accepts at a path of a document, for "did you mean" hints ranked by the section the typo is
 * in: the object at `segs` (of a discriminated union, the member the document's `type` names). Reads zod's schema
 * definitions; an unknown shape gives no keys.
 */

interface Def {
  type?: string;
  shape?: Record<string, unknown>;
  innerType?: unknown;
  in?: unknown;
  options?: unknown[];
  discriminator?: string;
  element?: unknown;
  valueType?: unknown;
  values?: unknown[];
}

const defOf = (schema: unknown): Def | undefined => (schema as { _zod?: { def?: Def } } | null)?._zod?.def;

const WRAPPERS = new Set(['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch', 'nonoptional']);

function unwrap(schema: unknown): unknown {
  let s = schema;
  for (let i = 0; i < 20; i++) {
    const def = defOf(s);
    if (def?.type && WRAPPERS.has(def.type)) s = def.innerType;
    else if (def?.type === 'pipe') s = def.in;
    else return s;
  }
  return s;
}

/** The object members of a (discriminated) union that fit `value`. */
function members(def: Def, value: unknown): unknown[] {
  const objects = (def.options ?? []).map(unwrap).filter((o) => defOf(o)?.type === 'object');
  const tag = def.discriminator !== undefined && value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[def.discriminator] : undefined;
  if (tag !== undefined) {
    const fit = objects.filter((o) => defOf(defOf(o)?.shape?.[def.discriminator!])?.values?.includes(tag));
    if (fit.length > 0) return fit;
  }
  return objects;
}

export function keysAt(schema: unknown, root: unknown, segs: readonly (string | number)[]): string[] {
  let s = unwrap(schema);
  let value = root;
  for (const seg of segs) {
    const def = defOf(s);
    const child = value !== null && typeof value === 'object' ? (value as Record<string | number, unknown>)[seg] : undefined;
    if (def?.type === 'object') s = def.shape?.[String(seg)];
    else if (def?.type === 'union') s = members(def, value).map((o) => defOf(o)?.shape?.[String(seg)]).find((x) => x !== undefined);
    else if (def?.type === 'array') s = def.element;
    else if (def?.type === 'record') s = def.valueType;
    else return [];
    s = unwrap(s);
    value = child;
  }
  const def = defOf(s);
  if (def?.type === 'object') return Object.keys(def.shape ?? {});
  if (def?.type === 'union') return [...new Set(members(def, value).flatMap((o) => Object.keys(defOf(o)?.shape ?? {})))];
  return [];
}
