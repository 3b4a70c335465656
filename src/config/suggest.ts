/** Levenshtein distance, small strings only. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/**
 * The candidate closest to a misspelt word (case-insensitive), when it is at most `maxDistance` edits away.
 * @param maxDistance @default at most 2 edits, and less than half the word
 */
export function closest(word: string, candidates: Iterable<string>, maxDistance = Math.min(2, Math.floor(word.length / 2))): string | undefined {
  let best: string | undefined;
  let bestDistance = maxDistance;
  for (const known of candidates) {
    const d = editDistance(word.toLowerCase(), known.toLowerCase());
    if (d <= bestDistance && (best === undefined || d < bestDistance)) {
      best = known;
      bestDistance = d;
    }
  }
  return best;
}

/** Words people write for a key the format names otherwise (checked only against the keys of the section at hand). */
const SYNONYMS: Record<string, readonly string[]> = {
  path: ['file', 'files', 'filename', 'filepath', 'file_path', 'glob', 'dir'],
  query: ['sql', 'select'],
  url: ['uri', 'connection', 'connectionstring', 'dsn', 'database_url'],
  table: ['tablename', 'from'],
  delimiter: ['separator', 'sep', 'delim'],
  column: ['col', 'field', 'name'],
  apiKeyEnv: ['apikey', 'api_key', 'key', 'token'],
  list: ['listid', 'list_id'],
  bucket: ['bucketname'],
  prefix: ['folder', 'directory'],
  unique_id: ['uniqueid', 'id', 'event_id'],
  metric: ['event', 'name', 'metric_name'],
  not_in: ['notin', 'not_one_of', 'nin'],
  in: ['one_of', 'oneof'],
  equals: ['eq', 'is', 'equal'],
  not_equals: ['ne', 'neq', 'is_not', 'not'],
};

/**
 * The key meant by a misspelt one, ranked as people expect: first a key of the section the typo is in (edit distance,
 * then a known synonym such as `file` for `path`), and only then a key from anywhere in the format.
 */
export function suggestKeyIn(word: string, sectionKeys: readonly string[], allKeys: Iterable<string>): string | undefined {
  const near = closest(word, sectionKeys);
  if (near !== undefined) return near;
  const w = word.toLowerCase();
  const synonym = sectionKeys.find((k) => SYNONYMS[k]?.includes(w));
  if (synonym !== undefined) return synonym;
  return sectionKeys.length > 0 ? closest(word, sectionKeys, Math.min(3, Math.floor(word.length / 2))) : closest(word, allKeys);
}
