import { EtlError } from '../core/errors.js';

/** The registered component of a kind by its config `type`; `CONFIG_INVALID` when none is registered. */
export function definitionOf<D extends { type: string }>(list: readonly D[], type: string, component: 'source' | 'transform' | 'destination'): D {
  const definition = list.find((d) => d.type === type);
  if (!definition) {
    const known = list.map((d) => d.type).join(', ');
    throw new EtlError('CONFIG_INVALID', `Unknown ${component} type ${JSON.stringify(type)} (known: ${known})`, { context: { component } });
  }
  return definition;
}
