import type { RuleContext, RuleViolation } from './rules.js';
import { WHERE_OPERATORS } from './where.js';
import type { PathSegment } from './problem.js';

function asObj(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** One `where:` condition's operator problem, if any. */
function conditionProblem(condition: Record<string, unknown>, path: PathSegment[]): RuleViolation | undefined {
  const given = WHERE_OPERATORS.filter((op) => condition[op] !== undefined && condition[op] !== null);
  if (given.length === 1) return undefined;
  const message =
    given.length === 0
      ? `a where condition needs one operator (${WHERE_OPERATORS.join(', ')}), got none`
      : `a where condition has exactly one operator, got ${given.length}: ${given.join(', ')} (list them as separate conditions: every condition must hold)`;
  return { path, message };
}

/** Rule `whereConditionHasOneOperator`: every `where:` condition (and each of an `any:`) has exactly one operator. */
export function whereConditionHasOneOperator(ctx: RuleContext): RuleViolation[] {
  const where = asObj(ctx.raw)?.transform;
  const list = asObj(where)?.where;
  if (!Array.isArray(list)) return [];
  const out: RuleViolation[] = [];
  list.forEach((item, i) => {
    const o = asObj(item);
    if (!o) return;
    const base: PathSegment[] = ['transform', 'where', i];
    if (Array.isArray(o.any)) {
      o.any.forEach((c, j) => {
        const condition = asObj(c);
        const problem = condition && conditionProblem(condition, [...base, 'any', j]);
        if (problem) out.push(problem);
      });
      return;
    }
    if (o.column === undefined) return; // zod reports the missing column
    const problem = conditionProblem(o, base);
    if (problem) out.push(problem);
  });
  return out;
}
