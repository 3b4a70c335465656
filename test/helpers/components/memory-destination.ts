import { z } from 'zod';
import type { DestinationDefinition } from '../../../src/components/types.js';
import type { LoadItem } from '../../../src/core/record.js';

const MemoryConfig = z.strictObject({
  type: z.literal('memory'),
  label: z.string().min(1).describe('A name for the sink.'),
});

/** A destination registered by a test: items are kept in `sink` (the test's own array) and acknowledged at once. */
export function memoryDestination(sink: LoadItem[]): DestinationDefinition<typeof MemoryConfig> {
  return {
    type: 'memory',
    summary: 'Keep profiles in memory.',
    config: MemoryConfig,
    capabilities: { accepts: ['profile'] },
    create(_config, ctx) {
      return {
        write: async (items) => {
          sink.push(...items);
          ctx.onAck(items);
        },
        close: async () => {},
        abort: async () => {},
        pendingJobs: () => [],
      };
    },
  };
}
