import { z } from 'zod';
import type { TransformDefinition } from '../../../src/components/types.js';

const TagConfig = z.strictObject({
  type: z.literal('tag'),
  email: z.string().min(1).describe('Column holding the email address.'),
  tag: z.string().min(1).describe('Value of the `tag` profile property.'),
});

/** A transform registered by a test: one profile per row, tagged with a fixed property. */
export const tagTransform: TransformDefinition<typeof TagConfig> = {
  type: 'tag',
  summary: 'One profile per row, with a fixed `tag` property.',
  config: TagConfig,
  capabilities: { reads: 'rows', produces: 'profile' },
  create(config) {
    return {
      push: (record) => ({
        items: [{ kind: 'profile', payload: { email: String(record.row[config.email]).toLowerCase(), properties: { tag: config.tag } }, first: record.pos, last: record.pos }],
        rejects: [],
      }),
      flush: () => ({ items: [], rejects: [] }),
      held: () => undefined,
    };
  },
};
