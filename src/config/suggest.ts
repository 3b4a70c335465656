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
