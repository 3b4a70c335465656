/**
 * The built-in components. Each kind's list lives beside its components (`src/extract/registry.ts`,
 * `src/transform/registry.ts`, `src/destinations/registry.ts`): adding a component is one file and one line there.
 * Library callers pass their own {@link Components} to `run`, `validatePipelineFiles` and `pipelineJsonSchema`
 * (e.g. `withComponents({ destinations: [mine] })`); there is no global registry to mutate.
 */
import { DESTINATIONS } from '../destinations/registry.js';
import { SOURCES } from '../extract/registry.js';
import { TRANSFORMS } from '../transform/registry.js';
import type { Components } from './types.js';

export type * from './types.js';

/** Every component klaviyo-etl ships with. */
export const BUILTIN_COMPONENTS = { sources: SOURCES, transforms: TRANSFORMS, destinations: DESTINATIONS } as const satisfies Components;

/** The built-in components plus more (an application's or a test's own), built-ins first. */
export function withComponents(extra: Partial<Components>, base: Components = BUILTIN_COMPONENTS): Components {
  return {
    sources: [...base.sources, ...(extra.sources ?? [])],
    transforms: [...base.transforms, ...(extra.transforms ?? [])],
    destinations: [...base.destinations, ...(extra.destinations ?? [])],
  };
}
