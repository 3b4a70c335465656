import type * as s3 from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { EtlError } from '../core/errors.js';
import { lazyModule } from '../core/lazy.js';

/*
 * S3 helpers shared by the `s3` source (src/extract/s3.ts), the S3 export destination (src/destination.ts) and the S3
 * checkpoint store (src/checkpoint/store.ts): the lazily loaded SDK, the client factory, `s3://` URLs, error classes.
 */

/** The AWS S3 SDK, loaded when a pipeline first uses S3 (shared by the S3 source, destination and checkpoint store). */
export const s3Sdk = lazyModule<typeof s3>('@aws-sdk/client-s3');

/** Options for {@link createS3Client}. */
export interface S3ClientOptions {
  /** AWS region. @default `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1` */
  region?: string;
  /** Custom endpoint for S3-compatible stores (MinIO, R2, s3rver). @default AWS */
  endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible stores. @default false */
  forcePathStyle?: boolean;
  /**
   * Environment to read the region and explicit `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`(/`AWS_SESSION_TOKEN`)
   * from. Without explicit keys the SDK's standard credential chain (env, shared config/SSO, web identity,
   * container/instance metadata) is used. @default process.env
   */
  env?: NodeJS.ProcessEnv;
}

/**
 * An S3 client shared by the S3 source, the S3 destination and the S3 checkpoint store. Checksums are computed and
 * validated only when an operation requires them (`WHEN_REQUIRED`), because S3-compatible stores (s3rver, older
 * MinIO, R2) reject or fail on the SDK's default CRC32 trailers.
 */
export function createS3Client(options: S3ClientOptions = {}): S3Client {
  const env = options.env ?? process.env;
  const region = options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  return new (s3Sdk().S3Client)({
    region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    forcePathStyle: options.forcePathStyle ?? false,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(accessKeyId && secretAccessKey
      ? { credentials: { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) } }
      : {}),
  });
}

/** Split `s3://bucket/prefix/` into bucket and prefix (no leading or trailing slash). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m) throw new EtlError('CONFIG_INVALID', `Expected an s3://bucket/prefix URL, got ${JSON.stringify(url)}`);
  return { bucket: m[1]!, prefix: m[2]!.replace(/^\/+|\/+$/g, '') };
}

type S3Error = { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
const s3Status = (e: unknown): number | undefined => (e as S3Error | undefined)?.$metadata?.httpStatusCode;
const s3Name = (e: unknown): string | undefined => (e as S3Error | undefined)?.name ?? (e as S3Error | undefined)?.Code;

/** Whether an SDK error says the object (or key) does not exist. */
export const isS3NotFound = (e: unknown): boolean => s3Status(e) === 404 || ['NoSuchKey', 'NotFound'].includes(s3Name(e) ?? '');

/** Whether an SDK error is a failed conditional write (`If-Match` / `If-None-Match`). */
export const isS3ConditionFailed = (e: unknown): boolean =>
  s3Status(e) === 412 || s3Status(e) === 409 || ['PreconditionFailed', 'ConditionalRequestConflict'].includes(s3Name(e) ?? '');
