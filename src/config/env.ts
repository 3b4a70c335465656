/**
 * `${VAR}` interpolation inside string scalars of a pipeline file.
 *
 * - `${NAME}`: the value of the environment variable NAME; a problem when it is unset.
 * - `${NAME:-default}`: the value of NAME, or `default` when NAME is unset or empty (as in POSIX shells).
 * - `$${`: a literal `${` (no interpolation).
 *
 * Values are never echoed in messages (they may be secrets): only the variable name is.
 */

/** Environment variables available to interpolation. */
export type PipelineEnv = Readonly<Record<string, string | undefined>>;

/** Why one `${…}` could not be replaced. */
export interface InterpolationIssue {
  kind: 'missing' | 'malformed';
  /** Variable name (for `missing`). */
  name?: string;
  message: string;
}

export interface InterpolationResult {
  value: string;
  /** True when at least one variable was substituted (the value may hold a secret). */
  substituted: boolean;
  issues: InterpolationIssue[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Replace `${VAR}` / `${VAR:-default}` in one string; `$${` escapes a literal `${`. */
export function interpolate(text: string, env: PipelineEnv): InterpolationResult {
  if (!text.includes('${')) return { value: text, substituted: false, issues: [] };
  let out = '';
  let substituted = false;
  const issues: InterpolationIssue[] = [];
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      out += text[i];
      i += 1;
      continue;
    }
    const close = text.indexOf('}', i + 2);
    if (close === -1) {
      issues.push({ kind: 'malformed', message: 'unterminated "${" (write "$${" for a literal "${")' });
      out += text.slice(i);
      break;
    }
    const body = text.slice(i + 2, close);
    const sep = body.indexOf(':-');
    const name = sep === -1 ? body : body.slice(0, sep);
    const fallback = sep === -1 ? undefined : body.slice(sep + 2);
    if (!NAME.test(name)) {
      issues.push({
        kind: 'malformed',
        message: `"\${${name}}" is not a valid variable reference: names are letters, digits and "_" (write "$\${" for a literal "\${")`,
      });
      out += text.slice(i, close + 1);
      i = close + 1;
      continue;
    }
    const value = env[name];
    if (fallback !== undefined) {
      out += value === undefined || value === '' ? fallback : value;
      substituted = true;
    } else if (value === undefined) {
      issues.push({ kind: 'missing', name, message: `environment variable ${name} is not set (use \${${name}:-default} for a default)` });
    } else {
      out += value;
      substituted = true;
    }
    i = close + 1;
  }
  return { value: out, substituted, issues };
}
