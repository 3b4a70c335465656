import type { S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { S3Source, type S3SourceConfig } from '../config/schema.js';
import { inShard } from '../core/shard.js';
import { EtlError } from '../core/errors.js';
import type { SourceRecord } from '../core/record.js';
import { csvParseOptions, parseCsvChunks } from './csv.js';
import { decodedChunks, isGzipName, type FormatParser, type ResumeAt } from './files.js';
import { ndjsonParser } from './ndjson.js';
import { createS3Client, s3Sdk } from '../s3/client.js';
import { isS3Watermark, listS3Objects, noS3Object, s3Failure, type Listed, type S3ChangedObject, type S3ObjectDone, type S3Watermark } from './s3-objects.js';
import { inspectS3 } from './s3-inspect.js';
import { warnEmpty, type ExtractContext, type SourceReader } from './types.js';
import type { SourceDefinition } from '../components/types.js';

/*
 * S3 source: objects under `bucket/prefix` (filtered by `glob`), listed page by page and read in key order, each
 * object's body streamed through gunzip (by `.gz` name or `Content-Encoding: gzip`) into the CSV / NDJSON parser
 * shared with the local file sources. Incremental state is the list of objects read (key + ETag + size).
 */

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

class S3SourceReader implements S3Reader {
  #config: S3SourceConfig;
  #ctx: ExtractContext;
  #client: S3Client;
  #ownClient: boolean;
  #pageSize: number;
  #parse: FormatParser;
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
    return s3Failure(error, what, this.#config, key);
  }

  /** Matching objects, page by page. */
  async *#list(): AsyncGenerator<Listed> {
    try {
      yield* listS3Objects(this.#client, this.#config, { pageSize: this.#pageSize, signal: this.#ctx.signal });
    } catch (error) {
      throw this.#fail(error, `Cannot list s3://${this.#config.bucket}/${this.#config.prefix}`);
    }
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
      if (matched === 0) throw noS3Object(this.#config);
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
  inspect: inspectS3,
};
