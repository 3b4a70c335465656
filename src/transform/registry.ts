import type { TransformConfig } from '../config/schema.js';
import { EtlError } from '../core/errors.js';
import { eventTransform } from './event.js';
import { profileTransform } from './profile.js';
import { subscriptionTransform } from './subscription.js';
import type { TransformContext, Transformer } from './types.js';

/** Load transforms by `type`. (`export` is not a load transform: see `createExportMapper` in ./export.ts.) */
export const TRANSFORMS = {
  profile: profileTransform,
  event: eventTransform,
  subscription: subscriptionTransform,
} as const;

/**
 * Build the transformer for a parsed transform config. Field mappings are compiled here, once; a mapping that can
 * never work (unknown zone, datetime format without offset and zone…) throws `EtlError` CONFIG_INVALID / CONFIG_RULE.
 */
export function createTransformer(config: TransformConfig, ctx: TransformContext = {}): Transformer {
  switch (config.type) {
    case 'profile':
      return TRANSFORMS.profile.create(config, ctx);
    case 'event':
      return TRANSFORMS.event.create(config, ctx);
    case 'subscription':
      return TRANSFORMS.subscription.create(config, ctx);
    case 'export':
      throw new EtlError('USAGE', 'the export transform maps exported profiles to rows: use createExportMapper(config)', {
        context: { component: 'transform' },
      });
    default: {
      const never: never = config;
      throw new EtlError('CONFIG_INVALID', `unknown transform type ${JSON.stringify((never as { type: unknown }).type)}`);
    }
  }
}
