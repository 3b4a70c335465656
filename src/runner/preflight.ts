/**
 * The pre-flight check of a pipeline against its data: before a run sends its first request (and in `klaviyo-etl
 * validate --with-data`), the start of every input of the source (a CSV file's header, the keys of an NDJSON file's
 * first rows, the columns of a PostgreSQL query, the start of the S3 objects the run will read: the source's
 * `inspect`) is compared with the columns the mapping reads (its fields, templates, `group.by` and `where:` conditions).
 *
 * Problems (a run fails with the first one's code, `validate` exits 2), located at the pipeline's line:col:
 * - SOURCE_COLUMN_MISSING: a column the mapping reads is not in a CSV header (did-you-mean from the real header);
 * - SOURCE_HEADER_INVALID: a header with the same name twice (a row would keep only the last value) or an empty name;
 * - SOURCE_DELIMITER: a header that parsed as one column holding `;`, `,`, tab or `|`: the delimiter to set;
 * - SOURCE_NOT_FOUND / SOURCE_READ: no input, or its start cannot be read (a header that is not UTF-8).
 * Warnings (a run reports them and goes on): SOURCE_COLUMN_UNSEEN (a key in none of an NDJSON file's first rows),
 * SOURCE_NOT_UTF8 (the first rows of a CSV file read as UTF-8 hold bytes that are not UTF-8),
 * and for `validate` SOURCE_FILE_EMPTY / SOURCE_FILE_NO_ROWS (a run reports those as it reads).
 */
import type { Components } from '../components/types.js';
import { mappedColumns, type MappedColumn } from '../config/columns.js';
import { loadPipelineFile, pipelineLocator, type LoadOptions, type PipelineSource } from '../config/load.js';
import type { PipelineConfig } from '../config/pipeline.js';
import { formatPath, formatProblem, sortProblems, type PathSegment, type Problem, type ProblemCode } from '../config/problem.js';
import { closest } from '../config/suggest.js';
import { EtlError, isEtlError, type WarningCode } from '../core/errors.js';
import type { SourceSample } from '../extract/types.js';
import { BUILTIN_COMPONENTS } from '../components/index.js';

/** A warning of the pre-flight check: a problem's shape, with a warning code. */
export interface DataWarning extends Omit<Problem, 'code'> {
  code: WarningCode;
}

/** What the pre-flight check found. */
export interface DataCheck {
  problems: Problem[];
  warnings: DataWarning[];
}

/** Delimiters a one-column header is looked at for. */
const DELIMITERS = [',', ';', '\t', '|'];
/** Files named in one message before "and N more". */
const FILES_SHOWN = 3;
/** Header columns listed in a message. */
const COLUMNS_SHOWN = 12;

/** What {@link checkSourceData} checks. */
export interface DataCheckInput {
  config: PipelineConfig;
  source: PipelineSource;
  components?: Components;
  env?: NodeJS.ProcessEnv;
  /** The watermark the run reads with (inputs already loaded are not checked). */
  watermark?: unknown;
}

/** How a delimiter is written in a pipeline file. */
const delimiterSetting = (d: string): string => (d === '\t' ? 'tab' : JSON.stringify(d));

function list(items: readonly string[], shown: number): string {
  const head = items.slice(0, shown).map((c) => JSON.stringify(c));
  return items.length > shown ? `${head.join(', ')} and ${items.length - shown} more` : head.join(', ');
}

/** Whether a mapped column is in a sample's columns (sampled keys: a dotted path by its first key too). */
function present(column: string, sample: SourceSample, columns: ReadonlySet<string>): boolean {
  if (columns.has(column)) return true;
  return (sample.certainty === 'sampled' || sample.paths === true) && column.includes('.') && columns.has(column.split('.')[0]!);
}

/** The delimiter a one-column header says the file uses (the most frequent other one), if any. */
function delimiterHint(sample: SourceSample): { delimiter: string; count: number } | undefined {
  const text = sample.headerText;
  if (text === undefined) return undefined;
  let best: { delimiter: string; count: number } | undefined;
  for (const d of DELIMITERS) {
    if (d === sample.delimiter) continue;
    const count = text.split(d).length - 1;
    if (count > 0 && (best === undefined || count > best.count)) best = { delimiter: d, count };
  }
  return best;
}

/** Duplicate and empty names of a header. */
function headerFaults(columns: readonly string[]): string[] {
  const faults: string[] = [];
  const seen = new Map<string, number>();
  const empty: number[] = [];
  columns.forEach((name, i) => {
    if (name.trim() === '') empty.push(i + 1);
    else if (seen.has(name)) faults.push(`"${name}" is the name of columns ${seen.get(name)} and ${i + 1} (a row would keep only the last one's value)`);
    else seen.set(name, i + 1);
  });
  if (empty.length > 0) {
    faults.push(
      `column${empty.length === 1 ? '' : 's'} ${empty.join(', ')} ${empty.length === 1 ? 'has' : 'have'} no name (delimiters at the end of every line, as Excel writes for formatted empty columns?)`,
    );
  }
  return faults;
}

/** Compare the samples with the mapped columns. */
function compare(samples: SourceSample[], mapped: MappedColumn[], problem: Add<ProblemCode>, warn: Add<WarningCode>): void {
  const missing = new Map<string, { mapped: MappedColumn; files: string[]; header: string[]; certain: boolean; file: boolean }>();
  for (const sample of samples) {
    const setting = sample.setting ?? 'path';
    if (sample.error) {
      problem(sample.error.code === 'SOURCE_NOT_FOUND' ? 'SOURCE_NOT_FOUND' : 'SOURCE_READ', sample.error.message, ['source', sample.error.key ?? setting]);
      continue;
    }
    if (sample.bytes === 0) {
      warn('SOURCE_FILE_EMPTY', `${sample.source} is empty (0 bytes): a run reads no rows from it`, ['source', setting]);
      continue;
    }
    if (sample.notUtf8Line !== undefined) {
      warn(
        'SOURCE_NOT_UTF8',
        `line ${sample.notUtf8Line} of ${sample.source} holds bytes that are not UTF-8: its rows with such bytes would be rejected (INVALID_ENCODING); set \`encoding\` on the source (\`windows-1252\` for a CSV saved by Excel on Windows)`,
        ['source', 'encoding'],
      );
    }
    if (!sample.rows) warn('SOURCE_FILE_NO_ROWS', `${sample.source} holds no rows (a header alone?): a run reads nothing from it`, ['source', setting]);
    const columns = sample.columns;
    if (columns === undefined) continue;
    const hint = delimiterHint(sample);
    if (hint) {
      const what = hint.delimiter === '\t' ? 'tab' : `"${hint.delimiter}"`;
      problem(
        'SOURCE_DELIMITER',
        `the header of ${sample.source} is one column holding ${what} ${hint.count === 1 ? 'once' : `${hint.count} times`}: set \`delimiter: ${delimiterSetting(hint.delimiter)}\` on the source`,
        ['source', 'delimiter'],
      );
      continue;
    }
    if (sample.certainty === 'header') {
      for (const fault of headerFaults(columns)) problem('SOURCE_HEADER_INVALID', `the header of ${sample.source}: ${fault}`, ['source', setting]);
    }
    const names = new Set(columns);
    for (const m of mapped) {
      if (present(m.column, sample, names)) continue;
      const key = `${m.column}\n${JSON.stringify(m.path)}`;
      const entry = missing.get(key) ?? { mapped: m, files: [], header: columns, certain: false, file: sample.bytes !== undefined };
      entry.files.push(sample.source);
      entry.certain ||= sample.certainty === 'header';
      missing.set(key, entry);
    }
  }
  for (const { mapped: m, files, header, certain, file } of missing.values()) {
    const guess = closest(m.column, header);
    const mean = guess === undefined ? '' : ` (did you mean "${guess}"?)`;
    const where = files.length > FILES_SHOWN ? `${files.slice(0, FILES_SHOWN).join(', ')} and ${files.length - FILES_SHOWN} more files` : files.join(', ');
    if (certain) {
      const message = file
        ? `column "${m.column}" is not in the header of ${where}${mean}; the header has ${list(header, COLUMNS_SHOWN)}`
        : `column "${m.column}" is not among the columns of ${where}${mean}; they are ${list(header, COLUMNS_SHOWN)}`;
      problem('SOURCE_COLUMN_MISSING', message, m.path);
    } else {
      warn('SOURCE_COLUMN_UNSEEN', `"${m.column}" is in none of the first rows of ${where}${mean}; their keys are ${list(header, COLUMNS_SHOWN)}`, m.path);
    }
  }
}

type Add<C> = (code: C, message: string, path: PathSegment[]) => void;

/**
 * Check the source's data against the mapping of a loaded pipeline (nothing is sent anywhere). A source without
 * `inspect` (Klaviyo) is not checked.
 */
export async function checkSourceData(input: DataCheckInput): Promise<DataCheck> {
  const { config, source } = input;
  const components = input.components ?? BUILTIN_COMPONENTS;
  const out: DataCheck = { problems: [], warnings: [] };
  const definition = components.sources.find((s) => s.type === config.source.type);
  if (!definition?.inspect) return out;
  // the pipeline's text is parsed again only to locate a problem or warning (most runs have none)
  let locate: ReturnType<typeof pipelineLocator> | undefined;
  const at = (path: PathSegment[]) => ({ file: source.file, ...(locate ??= pipelineLocator(source.text))(path), path: formatPath(path) });
  const problem: Add<ProblemCode> = (code, message, path) => out.problems.push({ ...at(path), code, message });
  const warn: Add<WarningCode> = (code, message, path) => out.warnings.push({ ...at(path), code, message });
  let samples: SourceSample[];
  try {
    samples = await definition.inspect(config.source, { baseDir: source.dir, env: input.env ?? process.env, watermark: input.watermark });
  } catch (error) {
    if (!isEtlError(error) || (error.code !== 'SOURCE_NOT_FOUND' && error.code !== 'SOURCE_READ')) throw error;
    problem(error.code, error.message, ['source', typeof error.context.key === 'string' ? error.context.key : 'path']);
    return out;
  }
  compare(samples, mappedColumns(config), problem, warn);
  return { problems: sortProblems(out.problems), warnings: sortProblems(out.warnings) };
}

/**
 * The pre-flight check of a run: throws the first problem's code (the message lists them all, with the pipeline's
 * line:col) when the data cannot be read as the mapping expects; returns the warnings.
 */
export async function preflight(input: DataCheckInput): Promise<DataWarning[]> {
  const { problems, warnings } = await checkSourceData(input);
  if (problems.length > 0) {
    const count = problems.length;
    throw new EtlError(problems[0]!.code, `${count} problem${count === 1 ? '' : 's'} in the source data: the run stopped before sending anything\n${problems.map(formatProblem).join('\n')}`, {
      context: { file: problems[0]!.file, line: problems[0]!.line, column: problems[0]!.column, problems },
    });
  }
  return warnings;
}

/** `validate --with-data`: each pipeline file's problems, and for a valid one the pre-flight check of its data. */
export async function validatePipelineData(files: readonly string[], options: LoadOptions = {}): Promise<DataCheck> {
  const out: DataCheck = { problems: [], warnings: [] };
  for (const file of files) {
    const loaded = await loadPipelineFile(file, options);
    if (loaded.config === undefined || loaded.problems.length > 0) {
      out.problems.push(...loaded.problems);
      continue;
    }
    const env = options.env === undefined ? undefined : (options.env as NodeJS.ProcessEnv);
    const check = await checkSourceData({ config: loaded.config, source: loaded.source, components: options.components, env });
    out.problems.push(...check.problems);
    out.warnings.push(...check.warnings);
  }
  return { problems: sortProblems(out.problems), warnings: sortProblems(out.warnings) };
}
