import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A CommonJS dependency loaded on first use. The PostgreSQL driver, the AWS SDK and ioredis together took ~0.3 s to
 * load at every start-up (measured: `klaviyo-etl --version` 0.55 s), paid by every run even when its pipeline reads a
 * local CSV file into Klaviyo. Each is now loaded by the code that needs it, when it needs it.
 */
export function lazyModule<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(id) as T);
}
