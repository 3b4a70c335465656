/**
 * `run --shard i/n`: one of n processes reading a disjoint part of the source. Files and S3 objects are split by a
 * hash of their name (each object read whole by one shard), PostgreSQL rows by a hash of a key column. The hash is
 * the first 4 bytes of SHA-1 (node:crypto), the same on every host and Node version.
 */
import { createHash } from 'node:crypto';
import { EtlError } from './errors.js';

/** This process's part: `index` from 1 to `count`. */
export interface Shard {
  index: number;
  count: number;
}

/** Parse `i/n` (1 ≤ i ≤ n ≤ 1000): a usage error otherwise. */
export function parseShard(text: string): Shard {
  const m = /^(\d{1,4})\/(\d{1,4})$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || count > 1000 || index < 1 || index > count) {
    throw new EtlError('USAGE', `Expected --shard to be i/n with 1 ≤ i ≤ n ≤ 1000 (e.g. 2/3), got ${JSON.stringify(text)}`);
  }
  return { index, count };
}

/** Whether the object or file named `key` belongs to `shard`. */
export function inShard(key: string, shard: Shard): boolean {
  if (shard.count === 1) return true;
  return createHash('sha1').update(key).digest().readUInt32BE(0) % shard.count === shard.index - 1;
}

/** `shard-2-of-3`: names the shard's checkpoint directory and rejects file. */
export function shardLabel(shard: Shard): string {
  return `shard-${shard.index}-of-${shard.count}`;
}
