/** The typed list of transform components. Adding a transform is one file and one line here. */
import { definitionOf } from '../components/lookup.js';
import type { TransformDefinition } from '../components/types.js';
import { eventTransform } from './event.js';
import { exportTransform } from './export.js';
import { profileTransform } from './profile.js';
import { removeFromListTransform } from './remove-from-list.js';
import { subscriptionTransform } from './subscription.js';
import { suppressTransform } from './suppress.js';
import { unsubscribeTransform } from './unsubscribe.js';
import type { TransformContext, Transformer } from './types.js';

/** Registered transforms, in the order the schema lists them. */
export const TRANSFORMS = [
  profileTransform,
  eventTransform,
  subscriptionTransform,
  unsubscribeTransform,
  suppressTransform,
  removeFromListTransform,
  exportTransform,
] as const;

/**
 * Build the transformer for a parsed transform config. Field mappings are compiled here, once; a mapping that can
 * never work (unknown zone, datetime format without offset and zone…) throws `EtlError` CONFIG_INVALID / CONFIG_RULE.
 */
export function createTransformer(
  config: { type: string },
  ctx: TransformContext = {},
  transforms: readonly TransformDefinition[] = TRANSFORMS,
): Transformer {
  return definitionOf(transforms, config.type, 'transform').create(config, ctx);
}
