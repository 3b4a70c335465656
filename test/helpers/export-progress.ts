import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The partial files of an export to `finalPath` (`<final>.partial`, and one `<final>.partial.part-<key>` per part of a
 * partitioned source; see src/load/export-parts.ts), in publishing order only for the main file (first).
 */
export function partialFiles(finalPath: string): string[] {
  const base = path.basename(finalPath) + '.partial';
  let names: string[];
  try {
    names = readdirSync(path.dirname(finalPath));
  } catch {
    return [];
  }
  const parts = names.filter((n) => n.startsWith(base + '.part-') && !n.endsWith('.progress')).sort();
  return [...(names.includes(base) ? [base] : []), ...parts].map((n) => path.join(path.dirname(finalPath), n));
}

/** Flushes of row chunks durably logged so far across the export's partial files (distinct seqs ≥ 0 in their logs). */
export function flushesLogged(finalPath: string): number {
  const seqs = new Set<string>();
  for (const file of partialFiles(finalPath)) {
    let text = '';
    try {
      text = readFileSync(file + '.progress', 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) if (/^\d+ \d+$/.test(line)) seqs.add(line.split(' ')[0]!);
  }
  return seqs.size;
}
