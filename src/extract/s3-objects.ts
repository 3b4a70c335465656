import type { S3Client } from '@aws-sdk/client-s3';
import picomatch from 'picomatch';
import type { S3SourceConfig } from '../config/schema.js';
import { EtlError } from '../core/errors.js';
import { s3Sdk } from '../s3/client.js';

/*
 * The objects of an `s3` source: listing (prefix, glob, key order), the source's watermark, and how S3 errors
 * become EtlErrors. Shared by the reader (src/extract/s3.ts) and the pre-flight check (src/extract/s3-inspect.ts).
 */

/** One object read completely. */
export interface S3ObjectDone {
  key: string;
  /** ETag without quotes. */
  etag: string;
  size: number;
}

/** Incremental state of the S3 source: the objects read completely (or found unchanged) by the run. */
export interface S3Watermark {
  objects: S3ObjectDone[];
}

/** An object whose ETag differs from the one recorded when it was loaded. */
export interface S3ChangedObject {
  key: string;
  previousEtag: string;
  etag: string;
}

/**
 * picomatch options of the file sources' globs (src/extract/files.ts globs with tinyglobby, which hands picomatch
 * exactly these for its `dot: false` and otherwise default options), so a pattern means the same over S3 keys as
 * over file paths: `*` and `?` stay within one `/` segment, `**` crosses segments, `{a,b}`, `[abc]` / `[!abc]`,
 * extglobs, and no match on names starting with a dot unless the pattern spells the dot.
 */
const GLOB_OPTIONS: picomatch.PicomatchOptions = { dot: false, nobrace: false, nocase: false, noextglob: false, noglobstar: false, posix: true };

/** A glob over S3 keys (relative to the source's prefix) as a predicate, in the dialect of the file sources' globs. */
export function s3KeyMatcher(glob: string): (key: string) => boolean {
  const isMatch = picomatch(glob, GLOB_OPTIONS);
  return (key) => isMatch(key);
}

const unquote = (etag: string | undefined): string => (etag ?? '').replace(/"/g, '');

/** Whether a checkpoint's watermark is an S3 source's. */
export function isS3Watermark(value: unknown): value is S3Watermark {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as S3Watermark).objects) &&
    (value as S3Watermark).objects.every((o) => typeof o?.key === 'string' && typeof o.etag === 'string')
  );
}

/** A listed object. */
export interface Listed {
  key: string;
  etag: string;
  size: number;
}

/** An S3 error as an EtlError: SOURCE_NOT_FOUND for a missing bucket or key, SOURCE_READ otherwise. */
export function s3Failure(error: unknown, what: string, config: Pick<S3SourceConfig, 'bucket' | 'prefix'>, key?: string): EtlError {
  if (error instanceof EtlError) return error;
  const name = (error as { name?: string }).name;
  const code = name === 'NoSuchBucket' || name === 'NoSuchKey' || name === 'NotFound' ? 'SOURCE_NOT_FOUND' : 'SOURCE_READ';
  return new EtlError(code, `${what}: ${name ? `${name}: ` : ''}${(error as Error).message}`, {
    cause: error,
    context: { component: 's3', file: `s3://${config.bucket}/${key ?? config.prefix}` },
  });
}

/**
 * The objects of a source (`bucket/prefix`, filtered by `glob`), page by page, in key order (ListObjectsV2 returns
 * keys in ascending UTF-8 order; a listing that is not is an error). SDK errors are thrown as they are.
 */
export async function* listS3Objects(
  client: S3Client,
  config: Pick<S3SourceConfig, 'bucket' | 'prefix' | 'glob'>,
  options: { pageSize?: number; signal?: AbortSignal } = {},
): AsyncGenerator<Listed> {
  const { bucket, prefix } = config;
  const match = config.glob ? s3KeyMatcher(config.glob) : undefined;
  let token: string | undefined;
  let previousKey: string | undefined;
  do {
    const page = await client.send(
      new (s3Sdk().ListObjectsV2Command)({ Bucket: bucket, Prefix: prefix || undefined, MaxKeys: options.pageSize ?? 1000, ContinuationToken: token }),
      { abortSignal: options.signal },
    );
    for (const obj of page.Contents ?? []) {
      const key = obj.Key;
      if (key === undefined || key.endsWith('/')) continue;
      if (previousKey !== undefined && key <= previousKey) {
        throw new EtlError('SOURCE_READ', `The S3 listing is not in key order (${JSON.stringify(key)} after ${JSON.stringify(previousKey)})`, {
          context: { component: 's3' },
        });
      }
      previousKey = key;
      if (match && !match(key.slice(prefix.length))) continue;
      yield { key, etag: unquote(obj.ETag), size: obj.Size ?? 0 };
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/** SOURCE_NOT_FOUND: no object under the source's prefix matches (context `key`: the setting to look at). */
export function noS3Object(config: Pick<S3SourceConfig, 'bucket' | 'prefix' | 'glob'>): EtlError {
  return new EtlError('SOURCE_NOT_FOUND', `No object under s3://${config.bucket}/${config.prefix}${config.glob ? ` matches ${JSON.stringify(config.glob)}` : ''}`, {
    context: { component: 's3', key: config.glob ? 'glob' : 'prefix' },
  });
}

