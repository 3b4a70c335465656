import { open } from 'node:fs/promises';
import path from 'node:path';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Alias, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { EtlError } from '../core/errors.js';
import { interpolate, type PipelineEnv } from './env.js';
import { formatPath, formatProblem, sortProblems, type PathSegment, type Problem, type ProblemCode } from './problem.js';
import { suggestKeyIn } from './suggest.js';
import { keysAt } from './schema-keys.js';
import { checkRules, PIPELINE_RULES, type PipelineRule } from './rules.js';
import { BUILTIN_COMPONENTS } from '../components/index.js';
import type { Components } from '../components/types.js';
import { pipelineSchema, type PipelineConfig } from './pipeline.js';

/** Where a pipeline came from. Relative paths inside the pipeline resolve against `dir`. */
export interface PipelineSource {
  /** The file as given by the caller (used in problems), or `<text>`. */
  file: string;
  /** Absolute directory relative paths in the pipeline resolve against. */
  dir: string;
  /** The file's text (before interpolation). */
  text: string;
}

export interface LoadResult {
  /** The validated pipeline with defaults applied; `undefined` when there is any problem. */
  config: PipelineConfig | undefined;
  /** Every problem found, sorted by line and column. Empty when the pipeline is valid. */
  problems: Problem[];
  source: PipelineSource;
}

export interface LoadOptions {
  /**
   * Environment for `${VAR}` interpolation.
   * @default process.env
   */
  env?: PipelineEnv;
  /** Rules to check after schema validation. @default PIPELINE_RULES */
  rules?: readonly PipelineRule[];
  /**
   * The state directory a run would use (`--state-dir`), to locate the default checkpoint and rejects files the
   * rules check the rejects path against. @default env.KLAVIYO_ETL_STATE_DIR
   */
  stateDir?: string;
  /** The components a pipeline may name (the schema is built from them). @default BUILTIN_COMPONENTS */
  components?: Components;
}

export interface LoadTextOptions extends LoadOptions {
  /** Name used in problems. @default "<text>" */
  file?: string;
  /** Directory relative paths resolve against. @default the directory of `file`, else the working directory */
  dir?: string;
}

/** Read, parse, interpolate, validate and rule-check one pipeline file. Never throws for a bad file. */
export async function loadPipelineFile(file: string, options: LoadOptions = {}): Promise<LoadResult> {
  const source = { file, dir: path.dirname(path.resolve(file)), text: '' };
  const problem = (message: string): LoadResult => ({
    config: undefined,
    problems: [{ file, line: 1, column: 1, code: 'CONFIG_INVALID', message, path: '' }],
    source,
  });
  let text: string;
  try {
    const handle = await open(file, 'r');
    try {
      // never read (nor parse) a file far larger than any pipeline: 50 MB took 19 s and 1.8 GB to parse
      const { size } = await handle.stat();
      if (size > MAX_PIPELINE_BYTES) {
        return problem(`the pipeline file is ${size} bytes: a pipeline file holds at most ${MAX_PIPELINE_BYTES} bytes (1 MiB)`);
      }
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    return problem(`cannot read the pipeline file (${(error as NodeJS.ErrnoException).code ?? 'read error'})`);
  }
  return loadPipelineText(text, { ...options, file });
}

/** Like `loadPipelineFile` for text already in memory. */
export function loadPipelineText(text: string, options: LoadTextOptions = {}): LoadResult {
  const file = options.file ?? '<text>';
  const dir = options.dir ?? (options.file === undefined ? process.cwd() : path.dirname(path.resolve(options.file)));
  const source: PipelineSource = { file, dir, text };
  const env = options.env ?? process.env;
  const problems: Problem[] = [];
  if (Buffer.byteLength(text) > MAX_PIPELINE_BYTES) {
    const message = `the pipeline text is ${Buffer.byteLength(text)} bytes: a pipeline file holds at most ${MAX_PIPELINE_BYTES} bytes`;
    return { config: undefined, problems: [{ file, line: 1, column: 1, code: 'CONFIG_INVALID', message, path: '' }], source };
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), { lineCounter, prettyErrors: false, uniqueKeys: true });
  const locate = locator(doc, lineCounter);
  const add: AddProblem = (code, message, segs, pos) =>
    problems.push({ file, line: pos.line, column: pos.column, code, message, path: formatPath(segs) });

  // phase 1: YAML syntax
  if (doc.errors.length > 0) {
    addSyntaxProblems(doc, text, lineCounter, add);
    return { config: undefined, problems: sortProblems(problems), source };
  }

  // phase 1b: aliases (an undefined one, or a "billion laughs" expansion, would make toJS throw without a position)
  for (const p of aliasProblems(doc)) {
    const pos = lineCounter.linePos(p.offset);
    add('CONFIG_YAML_SYNTAX', p.message, [], { line: pos.line, column: pos.col });
  }
  if (problems.length > 0) return { config: undefined, problems: sortProblems(problems), source };

  // phase 2: ${VAR} interpolation in string scalars (values, not keys)
  const fromEnv = interpolateScalars(doc, env, add, locate);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (error) {
    // aliasProblems() found what would throw here; this is a last guard so a file never ends in INTERNAL
    add('CONFIG_YAML_SYNTAX', `the YAML document cannot be read: ${firstLine(error instanceof Error ? error.message : String(error))}`, [], { line: 1, column: 1 });
    return { config: undefined, problems, source };
  }

  // phase 3: schema
  const components = options.components ?? BUILTIN_COMPONENTS;
  const schema = pipelineSchema(components);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) addSchemaProblems(raw, parsed.error.issues, schema, add, locate);

  // phase 4: cross-field rules (run on the raw document so they report even when the schema failed elsewhere)
  if (raw !== null && typeof raw === 'object') {
    const ruleContext = {
      raw,
      fromEnv: (segs: readonly PathSegment[]) => fromEnv.has(formatPath(segs)),
      dir,
      file: options.file === undefined ? undefined : path.resolve(options.file),
      stateDir: options.stateDir ?? env.KLAVIYO_ETL_STATE_DIR,
      components,
    };
    const violations = checkRules(ruleContext, options.rules ?? PIPELINE_RULES);
    for (const v of violations) add(v.code ?? 'CONFIG_RULE', v.message, v.path, locate(v.path, v.key === true));
  }

  const sorted = finalProblems(problems);
  // With other components than the built-in ones, the sections hold their configs (PipelineConfig names the built-in ones).
  const config = sorted.length === 0 && parsed.success ? (parsed.data as PipelineConfig) : undefined;
  return { config, problems: sorted, source };
}

/** Records one problem of the pipeline being loaded. */
type AddProblem = (code: ProblemCode, message: string, segs: readonly PathSegment[], pos: { line: number; column: number }) => void;

/** Where a path of the document is (its key's position when `key`). */
type Locate = ReturnType<typeof locator>;

/** Phase 1: the YAML syntax errors of `doc`, one per line, at most MAX_SYNTAX_ERRORS. */
function addSyntaxProblems(doc: Document, text: string, lineCounter: LineCounter, add: AddProblem): void {
  // after the first, YAML errors mostly cascade
  const lines = new Set<number>();
  for (const error of doc.errors) {
    const pos = lineCounter.linePos(error.pos[0]);
    if (lines.has(pos.line) || lines.size >= MAX_SYNTAX_ERRORS) continue;
    lines.add(pos.line);
    const lineText = text.split('\n')[pos.line - 1] ?? '';
    const hint = lineText.includes('${') && /[{[]/.test(lineText) ? ' (quote values holding "${…}" inside { } or [ ])' : '';
    const message = error.code === 'MULTIPLE_DOCS' ? 'a pipeline file holds one YAML document (remove the second "---")' : firstLine(error.message);
    add('CONFIG_YAML_SYNTAX', message + hint, [], { line: pos.line, column: pos.col });
  }
}

/**
 * Phase 2: replace `${VAR}` in the document's string scalars (values, not keys) in place; returns the paths of the
 * scalars that took a value from the environment.
 */
function interpolateScalars(doc: Document, env: PipelineEnv, add: AddProblem, locate: Locate): Set<string> {
  const fromEnv = new Set<string>();
  walkScalars(doc.contents, [], (scalar, segs) => {
    if (typeof scalar.value !== 'string') return;
    const result = interpolate(scalar.value, env);
    scalar.value = result.value;
    if (result.substituted) fromEnv.add(formatPath(segs));
    for (const issue of result.issues) {
      add(issue.kind === 'missing' ? 'CONFIG_ENV_MISSING' : 'CONFIG_INVALID', issue.message, segs, locate(segs));
    }
  });
  return fromEnv;
}

/** Phase 3: the problems of a document the schema rejected. */
function addSchemaProblems(raw: unknown, issues: readonly Issue[], schema: z.ZodType, add: AddProblem, locate: Locate): void {
  if (raw === null || raw === undefined) {
    add('CONFIG_INVALID', 'the pipeline file is empty', [], { line: 1, column: 1 });
    return;
  }
  for (const issue of issues) {
    for (const p of describeIssue(issue, [], raw, schema)) add(p.code, p.message, p.path, locate(p.path, p.code === 'CONFIG_UNKNOWN_KEY'));
  }
}

/** The problems to report, deduplicated and sorted. */
function finalProblems(problems: Problem[]): Problem[] {
  // a scalar with a missing variable is reported once, as CONFIG_ENV_MISSING, not again for its (empty) value
  const missing = new Set(problems.filter((p) => p.code === 'CONFIG_ENV_MISSING').map((p) => p.path));
  const kept = problems.filter((p) => p.code === 'CONFIG_ENV_MISSING' || !missing.has(p.path));
  return sortProblems(dedupe(kept));
}

/** Load every file and return all their problems, sorted by file, line and column. */
export async function validatePipelineFiles(files: readonly string[], options: LoadOptions = {}): Promise<Problem[]> {
  const all: Problem[] = [];
  for (const file of files) all.push(...(await loadPipelineFile(file, options)).problems);
  return sortProblems(all);
}

/**
 * Load a pipeline file for running it: returns the config and its source, or throws an `EtlError` whose code is
 * that of the first problem, whose message lists every problem, and whose `context.problems` holds them.
 */
export async function loadPipelineFileOrThrow(
  file: string,
  options: LoadOptions = {},
): Promise<{ config: PipelineConfig; source: PipelineSource }> {
  const result = await loadPipelineFile(file, options);
  if (result.config === undefined || result.problems.length > 0) {
    const first = result.problems[0];
    const code = first?.code ?? 'CONFIG_INVALID';
    const count = result.problems.length;
    const message = `${file}: ${count} problem${count === 1 ? '' : 's'} in the pipeline file\n${result.problems.map(formatProblem).join('\n')}`;
    throw new EtlError(code, message, { context: { file, line: first?.line, column: first?.column, problems: result.problems } });
  }
  return { config: result.config, source: result.source };
}

/**
 * Where a YAML path is in a pipeline's text (`key`: the key rather than its value), for problems found after loading
 * it (the pre-flight check of the source's data). A path that does not exist points at its closest parent.
 */
export function pipelineLocator(text: string): (segs: readonly PathSegment[], key?: boolean) => { line: number; column: number } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), { lineCounter, prettyErrors: false });
  return locator(doc, lineCounter);
}

/** Resolve a path from a pipeline file against the pipeline file's directory (absolute paths are kept). */
export function resolvePipelinePath(source: Pick<PipelineSource, 'dir'>, p: string): string {
  return path.resolve(source.dir, p);
}

// ---------------------------------------------------------------- zod issues → problems

const MAX_SYNTAX_ERRORS = 5;

/** Largest pipeline file read (real ones are a few KB). */
export const MAX_PIPELINE_BYTES = 1024 * 1024;
/** Most aliases (`*name`) a pipeline file may hold. */
const MAX_ALIASES = 100;
/** Most nodes the aliases of a pipeline file may expand to, all together (a "billion laughs" file stops here). */
const MAX_ALIAS_NODES = 10_000;

/**
 * Aliases that cannot be resolved: one naming no earlier anchor, one inside the node it refers to, and those past
 * the alias limits (their count, or the nodes they expand to). Each with the offset of the alias.
 */
function aliasProblems(doc: Document): Array<{ offset: number; message: string }> {
  const out: Array<{ offset: number; message: string }> = [];
  const sizes = new Map<unknown, number>();
  const inProgress = new Set<unknown>();
  // nodes a value expands to (aliases followed); Infinity for an alias inside what it refers to
  const size = (node: unknown): number => {
    if (isAlias(node)) return size(node.resolve(doc));
    if (!isMap(node) && !isSeq(node)) return 1;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    if (inProgress.has(node)) return Infinity;
    inProgress.add(node);
    let n = 1;
    for (const item of node.items) n += isPair(item) ? size(item.key) + size(item.value) : size(item);
    inProgress.delete(node);
    sizes.set(node, Math.min(n, Number.MAX_SAFE_INTEGER));
    return n;
  };
  let count = 0;
  let expanded = 0;
  visit(doc, {
    Alias(_key, node: Alias) {
      const offset = node.range?.[0] ?? 0;
      count++;
      const target = node.resolve(doc);
      if (target === undefined) {
        out.push({ offset, message: `undefined alias "*${node.source}": no anchor "&${node.source}" before it` });
        return undefined;
      }
      if (count > MAX_ALIASES) {
        out.push({ offset, message: `more than ${MAX_ALIASES} aliases in one pipeline file` });
        return visit.BREAK;
      }
      const n = size(target);
      if (n === Infinity) {
        out.push({ offset, message: `alias "*${node.source}" is inside the node it refers to` });
        return visit.BREAK;
      }
      expanded += n;
      if (expanded > MAX_ALIAS_NODES) {
        out.push({ offset, message: `aliases expand to more than ${MAX_ALIAS_NODES} values (an alias bomb?)` });
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return out;
}

interface IssueProblem {
  code: ProblemCode;
  message: string;
  path: PathSegment[];
}

type Issue = z.core.$ZodIssue;

function valueAt(root: unknown, segs: readonly PathSegment[]): unknown {
  let node = root;
  for (const seg of segs) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PathSegment, unknown>)[seg];
  }
  return node;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object') return 'mapping';
  return typeof value;
}

function expectedName(expected: string): string {
  return expected === 'object' ? 'mapping' : expected === 'array' ? 'list' : expected;
}

function toSegs(p: readonly PropertyKey[]): PathSegment[] {
  return p.map((s) => (typeof s === 'number' ? s : String(s)));
}

/** Turn one zod issue into located problems, with messages that say what is wrong without echoing values. */
function describeIssue(issue: Issue, prefix: PathSegment[], raw: unknown, schema: z.ZodType): IssueProblem[] {
  const segs = [...prefix, ...toSegs(issue.path)];
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const guess = suggestKeyIn(key, keysAt(schema, raw, segs), schemaKeys(schema));
        const message = `unknown key "${key}"${guess === undefined ? '' : ` (did you mean "${guess}"?)`}`;
        return { code: 'CONFIG_UNKNOWN_KEY', message, path: [...segs, key] };
      });
    case 'invalid_union': {
      if ('discriminator' in issue || (issue as { note?: string }).note === 'No matching discriminator') {
        const value = valueAt(raw, segs);
        const options = ((issue as { options?: unknown[] }).options ?? []).map((o) => JSON.stringify(o)).join(', ');
        const message = value === undefined ? `missing required key "${String(segs.at(-1))}": one of ${options}` : `must be one of ${options}`;
        return [{ code: 'CONFIG_INVALID', message, path: segs }];
      }
      const branches = issue.errors;
      const matching = branches.filter((b) => !b.some((i) => i.code === 'invalid_type' && i.path.length === 0));
      if (matching.length > 0) {
        const best = matching.reduce((a, b) => (b.length < a.length ? b : a));
        return best.flatMap((i) => describeIssue(i, segs, raw, schema));
      }
      const value = valueAt(raw, segs);
      if (value === undefined) return [{ code: 'CONFIG_INVALID', message: `missing required key "${String(segs.at(-1))}"`, path: segs }];
      const expected = [...new Set(branches.flatMap((b) => b.map((i) => (i.code === 'invalid_type' ? expectedName(i.expected) : 'value'))))];
      return [{ code: 'CONFIG_INVALID', message: `expected ${expected.join(' or ')}, got a ${kindOf(value)}`, path: segs }];
    }
    case 'invalid_type': {
      const value = valueAt(raw, segs);
      if (value === undefined) return [{ code: 'CONFIG_INVALID', message: `missing required key "${String(segs.at(-1))}"`, path: segs }];
      return [{ code: 'CONFIG_INVALID', message: `expected ${expectedName(issue.expected)}, got ${value === null ? 'null (empty value)' : `a ${kindOf(value)}`}`, path: segs }];
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => JSON.stringify(v)).join(', ');
      return [{ code: 'CONFIG_INVALID', message: issue.values.length === 1 ? `must be ${values}` : `must be one of ${values}`, path: segs }];
    }
    default:
      return [{ code: 'CONFIG_INVALID', message: lowerFirst(issue.message), path: segs }];
  }
}

/** Every key any object of the pipeline schema accepts (for "did you mean" hints). */
function schemaKeys(schema: unknown, keys = new Set<string>(), seen = new Set<unknown>()): Set<string> {
  const def = (schema as { _zod?: { def?: Record<string, unknown> } } | null)?._zod?.def;
  if (!def || seen.has(schema)) return keys;
  seen.add(schema);
  for (const [name, value] of Object.entries(def)) {
    if (name === 'shape' && value && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) {
        keys.add(key);
        schemaKeys(child, keys, seen);
      }
    } else if (Array.isArray(value)) {
      for (const item of value) schemaKeys(item, keys, seen);
    } else {
      schemaKeys(value, keys, seen);
    }
  }
  return keys;
}

function lowerFirst(s: string): string {
  return s.length > 0 ? s[0].toLowerCase() + s.slice(1) : s;
}

function firstLine(s: string): string {
  return s.split('\n')[0].trim();
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.line}:${p.column}:${p.code}:${p.path}:${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

// ---------------------------------------------------------------- YAML AST helpers

function keyString(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

/** Visit every scalar in value position with its path. */
function walkScalars(node: unknown, segs: PathSegment[], visit: (scalar: import('yaml').Scalar, segs: PathSegment[]) => void): void {
  if (isScalar(node)) visit(node, segs);
  else if (isMap(node)) {
    for (const pair of node.items) walkScalars(pair.value, [...segs, keyString(pair.key)], visit);
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => walkScalars(item, [...segs, i], visit));
  }
}

/**
 * Map a path to a line/column: the value node (or, with `key`, the key itself). A path that does not exist (a
 * missing required key) points at its closest existing parent's key, else the document start.
 */
function locator(doc: Document, lineCounter: LineCounter) {
  const pos = (offset: number | undefined) => {
    const p = lineCounter.linePos(offset ?? 0);
    return { line: p.line, column: p.col };
  };
  const start = (node: unknown) => (node && typeof node === 'object' && 'range' in node ? (node as Node).range?.[0] : undefined);
  return (segs: readonly PathSegment[], key = false): { line: number; column: number } => {
    let node: unknown = doc.contents;
    let fallback: number | undefined = start(node) ?? 0;
    for (let i = 0; i < segs.length; i++) {
      if (isAlias(node)) node = node.resolve(doc);
      const seg = segs[i];
      const last = i === segs.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && keyString(p.key) === String(seg));
        if (!pair) return pos(fallback);
        const keyStart = start(pair.key);
        if (last && key) return pos(keyStart ?? fallback);
        fallback = keyStart ?? fallback;
        node = pair.value;
        if (node === null || start(node) === undefined) return pos(fallback);
        // a mapping or list value is best shown by its key (`profile:`), a scalar by the value itself
        if (last) return pos(isMap(node) || isSeq(node) ? fallback : start(node));
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (item === undefined || start(item) === undefined) return pos(fallback);
        node = item;
        fallback = start(item);
        if (last) return pos(fallback);
      } else {
        return pos(fallback);
      }
    }
    return pos(start(node) ?? fallback);
  };
}
