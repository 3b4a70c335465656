import type { S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import picomatch from 'picomatch';
import { S3Source, type S3SourceConfig } from '../config/schema.js';
import { inShard } from '../core/shard.js';
import { EtlError } from '../core/errors.js';
import type { SourceRecord } from '../core/record.js';
import { csvParseOptions, parseCsvChunks } from './csv.js';
import { decodedChunks, isGzipName, type FormatParser, type ResumeAt } from './files.js';
import { ndjsonParser } from './ndjson.js';
import { createS3Client, s3Sdk } from '../s3/client.js';
import { warnEmpty, type ExtractContext, type SourceReader } from './types.js';
import type { SourceDefinition } from '../components/types.js';

/*
 * S3 source: objects under `bucket/prefix` (filtered by `glob`), listed page by page and read in key order, each
 * object's body streamed through gunzip (by `.gz` name or `Content-Encoding: gzip`) into the CSV / NDJSON parser
 * shared with the local file sources. Incremental state is the list of objects read (key + ETag + size).
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

/** A running S3 source. */
export interface S3Reader extends SourceReader {
  watermark(): S3Watermark;
  /** Number of objects whose ETag changed since they were loaded (each is reported with `logger.warn` and read again). */
  changedObjects(): number;
  /** The changed objects themselves. */
  changes(): readonly S3ChangedObject[];
}

/** Options of {@link createS3Reader} beyond the pipeline config (tests, embedding). */
export interface S3ReaderOptions {
  /** Client to use. @default createS3Client from the config and `ctx.env` */
  client?: S3Client;
  /** Keys per ListObjectsV2 page (MaxKeys). @default 1000 */
  pageSize?: number;
  /** Parser for the object bodies. @default the CSV or NDJSON parser for `config.format` */
  parse?: FormatParser;
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

function isS3Watermark(value: unknown): value is S3Watermark {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as S3Watermark).objects) &&
    (value as S3Watermark).objects.every((o) => typeof o?.key === 'string' && typeof o.etag === 'string')
  );
}

interface Listed {
  key: string;
  etag: string;
  size: number;
}

class S3SourceReader implements S3Reader {
  #config: S3SourceConfig;
  #ctx: ExtractContext;
  #client: S3Client;
  #ownClient: boolean;
  #pageSize: number;
  #parse: FormatParser;
  #match: ((key: string) => boolean) | undefined;
  #previous = new Map<string, S3ObjectDone>();
  /** Resume: the objects (`key\netag`) the interrupted attempt read completely (its plan); undefined without one. */
  #planned: Set<string> | undefined;
  /** This run's plan (checkpoint `sourcePlan`): the objects it read completely so far, in order. */
  #plan: { objects: S3ObjectDone[] } = { objects: [] };
  #done: S3ObjectDone[] = [];
  #changes: S3ChangedObject[] = [];

  constructor(config: S3SourceConfig, ctx: ExtractContext, options: S3ReaderOptions) {
    this.#config = config;
    this.#ctx = ctx;
    this.#ownClient = !options.client;
    this.#client =
      options.client ?? createS3Client({ region: config.region, endpoint: config.endpoint, forcePathStyle: config.forcePathStyle, env: ctx.env });
    this.#pageSize = options.pageSize ?? 1000;
    const csvOptions = csvParseOptions(config);
    this.#parse = options.parse ?? (config.format === 'ndjson' ? ndjsonParser() : (input) => parseCsvChunks(input, csvOptions));
    this.#match = config.glob ? s3KeyMatcher(config.glob) : undefined;
    if (ctx.watermark !== undefined && ctx.watermark !== null) {
      if (!isS3Watermark(ctx.watermark)) {
        throw new EtlError('CHECKPOINT_CORRUPT', 'Expected the S3 watermark to be `{objects: [{key, etag, size}]}`', { context: { component: 's3' } });
      }
      for (const o of ctx.watermark.objects) this.#previous.set(o.key, o);
    }
    const plan = ctx.plan as { objects?: unknown } | undefined;
    if (plan && Array.isArray(plan.objects) && plan.objects.every((o) => typeof o?.key === 'string' && typeof o.etag === 'string')) {
      this.#plan = { objects: (plan.objects as S3ObjectDone[]).slice() };
      this.#planned = new Set(this.#plan.objects.map((o) => `${o.key}\n${o.etag}`));
    }
    if (ctx.since !== undefined || ctx.until !== undefined) {
      ctx.logger.warn('--since/--until do not apply to an s3 source; reading every object not yet loaded', { component: 's3' });
    }
  }

  /** An object read completely by this run (or found unchanged): in the watermark, and in the run's plan. */
  #markDone(entry: S3ObjectDone): void {
    this.#done.push(entry);
    if (!this.#planned?.has(`${entry.key}\n${entry.etag}`)) this.#plan.objects.push(entry);
    this.#ctx.savePlan?.(this.#plan);
  }

  watermark(): S3Watermark {
    return { objects: this.#done.slice() };
  }

  changedObjects(): number {
    return this.#changes.length;
  }

  changes(): readonly S3ChangedObject[] {
    return this.#changes.slice();
  }

  #source(key: string): string {
    return `s3://${this.#config.bucket}/${key}`;
  }

  #fail(error: unknown, what: string, key?: string): EtlError {
    if (error instanceof EtlError) return error;
    const name = (error as { name?: string }).name;
    const code = name === 'NoSuchBucket' || name === 'NoSuchKey' || name === 'NotFound' ? 'SOURCE_NOT_FOUND' : 'SOURCE_READ';
    return new EtlError(code, `${what}: ${name ? `${name}: ` : ''}${(error as Error).message}`, {
      cause: error,
      context: { component: 's3', file: key === undefined ? `s3://${this.#config.bucket}/${this.#config.prefix}` : this.#source(key) },
    });
  }

  /** Matching objects, page by page (ListObjectsV2 returns keys in ascending UTF-8 order). */
  async *#list(): AsyncGenerator<Listed> {
    const { bucket, prefix } = this.#config;
    let token: string | undefined;
    let previousKey: string | undefined;
    do {
      let page;
      try {
        page = await this.#client.send(
          new (s3Sdk().ListObjectsV2Command)({ Bucket: bucket, Prefix: prefix || undefined, MaxKeys: this.#pageSize, ContinuationToken: token }),
          { abortSignal: this.#ctx.signal },
        );
      } catch (error) {
        throw this.#fail(error, `Cannot list s3://${bucket}/${prefix}`);
      }
      for (const obj of page.Contents ?? []) {
        const key = obj.Key;
        if (key === undefined || key.endsWith('/')) continue;
        if (previousKey !== undefined && key <= previousKey) {
          throw new EtlError('SOURCE_READ', `The S3 listing is not in key order (${JSON.stringify(key)} after ${JSON.stringify(previousKey)})`, {
            context: { component: 's3' },
          });
        }
        previousKey = key;
        if (this.#match && !this.#match(key.slice(prefix.length))) continue;
        yield { key, etag: unquote(obj.ETag), size: obj.Size ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async *records(): AsyncGenerator<SourceRecord> {
    const ctx = this.#ctx;
    const { logger, signal, limit } = ctx;
    const startAfter = ctx.startAfter;
    const resumeKey = startAfter ? this.#keyOf(startAfter.source) : undefined;
    let nextSeq = startAfter ? startAfter.seq + 1 : 0;
    let emitted = 0;
    let matched = 0;
    let resumeFound = false;
    try {
      for await (const obj of this.#list()) {
        matched++;
        if (ctx.shard && !inShard(obj.key, ctx.shard)) continue; // --shard i/n: whole objects by key hash
        if (signal?.aborted) throw new EtlError('INTERRUPTED', 'S3 read interrupted', { context: { component: 's3' } });
        const known = this.#previous.get(obj.key);
        if (known && known.etag === obj.etag) {
          logger.debug('skipping object already loaded (watermark)', { component: 's3', key: obj.key });
          this.#done.push({ key: obj.key, etag: obj.etag, size: obj.size });
          continue;
        }
        if (known) this.#changed(obj.key, known.etag, obj.etag, 'object changed since it was loaded; reading it again');
        if (resumeKey !== undefined && obj.key < resumeKey) {
          // Read completely by the interrupted attempt, unless it is not among the objects that attempt read (it
          // appeared since): the next run reads it, it is never recorded as read without being read.
          if (this.#planned && !this.#planned.has(`${obj.key}\n${obj.etag}`)) {
            logger.info('object listed since this run started is left to the next run', { component: 's3', key: obj.key });
            continue;
          }
          this.#markDone({ key: obj.key, etag: obj.etag, size: obj.size });
          continue;
        }
        let resume: ResumeAt | undefined;
        if (resumeKey !== undefined && obj.key === resumeKey) {
          resumeFound = true;
          const etagThen = startAfter!.cursor?.etag;
          if (typeof etagThen === 'string' && etagThen !== obj.etag) {
            // Replaced mid-run: the resume offset means nothing in the new content.
            this.#changed(obj.key, etagThen, obj.etag, 'object changed during an interrupted run; reading it again from the start');
          } else {
            resume = { seq: startAfter!.seq, offset: startAfter!.offset, line: startAfter!.line };
          }
        }
        const complete = yield* this.#readObject(obj, nextSeq, resume, limit === undefined ? undefined : limit - emitted, (seq) => {
          nextSeq = seq + 1;
          emitted++;
        });
        if (!complete) return;
        this.#markDone({ key: obj.key, etag: obj.etag, size: obj.size });
      }
      if (matched === 0) {
        throw new EtlError(
          'SOURCE_NOT_FOUND',
          `No object under s3://${this.#config.bucket}/${this.#config.prefix}${this.#config.glob ? ` matches ${JSON.stringify(this.#config.glob)}` : ''}`,
          { context: { component: 's3' } },
        );
      }
      if (resumeKey !== undefined && !resumeFound) {
        logger.warn('the object to resume in is no longer listed; continuing with the objects after it', { component: 's3', key: resumeKey });
      }
    } finally {
      if (this.#ownClient) this.#client.destroy();
    }
  }

  #keyOf(source: string): string {
    const prefix = `s3://${this.#config.bucket}/`;
    if (!source.startsWith(prefix)) {
      throw new EtlError('CHECKPOINT_MISMATCH', `Resume position names ${source}, which is not in s3://${this.#config.bucket}`, {
        context: { component: 's3', file: source },
      });
    }
    return source.slice(prefix.length);
  }

  #changed(key: string, previousEtag: string, etag: string, msg: string): void {
    this.#changes.push({ key, previousEtag, etag });
    this.#ctx.logger.warn(msg, { component: 's3', key, previousEtag, etag });
  }

  /** Stream one object through the parser; false when `budget` ran out before its end. */
  async *#readObject(
    obj: Listed,
    firstSeq: number,
    resume: ResumeAt | undefined,
    budget: number | undefined,
    onRecord: (seq: number) => void,
  ): AsyncGenerator<SourceRecord, boolean> {
    if (budget !== undefined && budget <= 0) return false;
    const source = this.#source(obj.key);
    let body: Readable;
    let gzip = isGzipName(obj.key);
    try {
      const res = await this.#client.send(new (s3Sdk().GetObjectCommand)({ Bucket: this.#config.bucket, Key: obj.key, IfMatch: `"${obj.etag}"` }), {
        abortSignal: this.#ctx.signal,
      });
      body = res.Body as Readable;
      if (/\bgzip\b/i.test(res.ContentEncoding ?? '')) gzip = true;
    } catch (error) {
      throw this.#fail(error, `Cannot read ${source}`, obj.key);
    }
    this.#ctx.logger.info('reading object', { component: 's3', key: obj.key, etag: obj.etag, size: obj.size, gzip });
    let left = budget;
    let records = 0;
    try {
      for await (const batch of this.#parse({ chunks: decodedChunks(body, { gzip }), source, firstSeq, resume })) {
        if (this.#ctx.signal?.aborted) throw new EtlError('INTERRUPTED', 'S3 read interrupted', { context: { component: 's3' } });
        for (const record of batch) {
          if (left !== undefined && left-- <= 0) return false;
          record.pos.cursor = { key: obj.key, etag: obj.etag };
          onRecord(record.pos.seq);
          records++;
          yield record;
        }
      }
    } catch (error) {
      throw this.#fail(error, `Cannot read ${source}`, obj.key);
    } finally {
      body.destroy();
    }
    if (records === 0 && !resume) warnEmpty(this.#ctx, source, obj.size);
    return true;
  }
}

/** Create an S3 reader with extra options (client, page size, parser). */
export function createS3Reader(config: S3SourceConfig, ctx: ExtractContext, options: S3ReaderOptions = {}): S3Reader {
  return new S3SourceReader(config, ctx, options);
}

/** The `s3` source. */
export const s3Source: SourceDefinition<typeof S3Source> = {
  type: 's3',
  summary: 'CSV or NDJSON objects under an S3 prefix (gzip by `.gz` or Content-Encoding), streamed in key order.',
  config: S3Source,
  capabilities: { yields: 'rows', rereadOnNewMapping: true, shards: 'objects' },
  create(config: S3SourceConfig, ctx: ExtractContext): S3Reader {
    return createS3Reader(config, ctx);
  },
};
