import type { PathSegment } from './problem.js';
import { transformFields } from './rules.js';

/** A source column a pipeline's mapping reads, and where the pipeline file names it. */
export interface MappedColumn {
  column: string;
  /** YAML path of the value naming it (a shorthand field, `column`, `template`, `regionColumn`, `group.by`, a `where:` condition's `column`). */
  path: PathSegment[];
}

/** Columns the compiler reads from somewhere else than the row (a grouped event's line-item number). */
const NOT_ROW_COLUMNS = new Set(['_item']);

/** `{{Column}}` placeholders of a template, as the field compiler reads them. */
function placeholders(template: string): string[] {
  return [...template.matchAll(/\{\{\s*(.+?)\s*\}\}/g)].map((m) => m[1]!);
}

/**
 * Every source column the transform of a pipeline reads (the document, raw or validated; read defensively), in
 * the order the file names them: what the pre-flight check looks for in a file's header.
 */
export function mappedColumns(doc: unknown): MappedColumn[] {
  const out: MappedColumn[] = [];
  const add = (column: unknown, path: PathSegment[]): void => {
    if (typeof column === 'string' && column !== '' && !NOT_ROW_COLUMNS.has(column)) out.push({ column, path });
  };
  for (const { path, field } of transformFields(doc)) {
    if (typeof field === 'string') {
      add(field, path);
      continue;
    }
    if (typeof field !== 'object' || field === null) continue;
    const f = field as Record<string, unknown>;
    add(f.column, [...path, 'column']);
    add(f.regionColumn, [...path, 'regionColumn']);
    if (typeof f.template === 'string') for (const column of placeholders(f.template)) add(column, [...path, 'template']);
  }
  const transform = (doc as { transform?: { group?: { by?: unknown }; where?: unknown } } | null)?.transform;
  const by = transform?.group?.by;
  if (typeof by === 'string') add(by, ['transform', 'group', 'by']);
  else if (Array.isArray(by)) by.forEach((column, i) => add(column, ['transform', 'group', 'by', i]));
  whereColumns(transform?.where, add);
  return out;
}

/** The columns of a transform's `where:` conditions (and of their `any:` lists), with their paths. */
function whereColumns(where: unknown, add: (column: unknown, path: PathSegment[]) => void): void {
  if (!Array.isArray(where)) return;
  const column = (condition: unknown): unknown => (typeof condition === 'object' && condition !== null ? (condition as { column?: unknown }).column : undefined);
  where.forEach((item, i) => {
    const any = typeof item === 'object' && item !== null ? (item as { any?: unknown }).any : undefined;
    if (Array.isArray(any)) any.forEach((c, j) => add(column(c), ['transform', 'where', i, 'any', j, 'column']));
    else add(column(item), ['transform', 'where', i, 'column']);
  });
}
