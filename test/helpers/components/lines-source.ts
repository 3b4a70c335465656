import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { SourceDefinition } from '../../../src/components/types.js';
import type { SourceRecord } from '../../../src/core/record.js';

const LinesConfig = z.strictObject({ type: z.literal('lines'), path: z.string().min(1).describe('Text file, one address per line.') });

/** A source registered by a test: each non-empty line of a text file is one row `{ email: line }`. */
export const linesSource: SourceDefinition<typeof LinesConfig> = {
  type: 'lines',
  summary: 'Lines of a text file, one email address per line.',
  config: LinesConfig,
  capabilities: { yields: 'rows' },
  create(config, ctx) {
    const file = path.resolve(ctx.baseDir, config.path);
    return {
      async *records(): AsyncIterable<SourceRecord> {
        const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim() !== '');
        const first = ctx.startAfter ? ctx.startAfter.seq + 1 : 0;
        for (let seq = first; seq < lines.length; seq++) {
          yield { pos: { seq, source: config.path, line: seq + 1 }, row: { email: lines[seq]!.trim() } };
        }
      },
    };
  },
};
