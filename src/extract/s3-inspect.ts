import type { S3Client } from '@aws-sdk/client-s3';
import { once } from 'node:events';
import { constants, createGunzip } from 'node:zlib';
import type { S3SourceConfig } from '../config/schema.js';
import { EtlError } from '../core/errors.js';
import { createS3Client, s3Sdk } from '../s3/client.js';
import { csvParseOptions, inspectCsvInput } from './csv.js';
import { isGzipName } from './files.js';
import { inspectNdjsonInput } from './ndjson.js';
import { isS3Watermark, listS3Objects, noS3Object, s3Failure, type Listed } from './s3-objects.js';
import type { InspectContext, SourceSample } from './types.js';

/*
 * The pre-flight check of an `s3` source (src/runner/preflight.ts): the start of every object the run will read —
 * the objects matching `prefix` / `glob`, less those the watermark lists with the same ETag (already loaded), the
 * first MAX_INSPECTED_OBJECTS of them in key order — each read with ranged GETs of RANGE_BYTES until its header and
 * first row are parsed (one request for an ordinary header), gunzipped by `.gz` name or `Content-Encoding: gzip`,
 * and decoded with the source's encoding and delimiter, exactly as a run parses it. Every object and not only the
 * first: a drop whose export changed its columns half-way is caught before anything is sent.
 */

/** Objects whose start the pre-flight check reads, at most (in key order; later ones are read unchecked). */
export const MAX_INSPECTED_OBJECTS = 100;
/** Bytes asked for per ranged GET. */
const RANGE_BYTES = 64 * 1024;
/** Objects read at once. */
const CONCURRENCY = 4;

/** One ranged GET of an object (`IfMatch` its listed ETag: all ranges are of the same content). */
async function getRange(client: S3Client, config: S3SourceConfig, obj: Listed, start: number): Promise<{ bytes: Buffer; encoding?: string }> {
  const end = Math.min(start + RANGE_BYTES, obj.size) - 1;
  const res = await client.send(
    new (s3Sdk().GetObjectCommand)({ Bucket: config.bucket, Key: obj.key, IfMatch: `"${obj.etag}"`, Range: `bytes=${start}-${end}` }),
  );
  const bytes = Buffer.from((await res.Body?.transformToByteArray()) ?? []);
  return { bytes, encoding: res.ContentEncoding };
}

/**
 * Gunzip compressed chunks one at a time: each chunk's output (sync-flushed) before the next chunk is asked for, so
 * no range is fetched ahead of what the parser needs (a stream pipeline would read ahead).
 */
async function* gunzipped(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const gunzip = createGunzip();
  const out: Buffer[] = [];
  gunzip.on('data', (b: Buffer) => out.push(b));
  const failed = new Promise<never>((_, reject) => gunzip.once('error', reject));
  failed.catch(() => {}); // raced below; an error ends the iteration there
  const taken = (): Buffer | undefined => (out.length > 0 ? Buffer.concat(out.splice(0)) : undefined);
  try {
    for await (const chunk of chunks) {
      gunzip.write(chunk);
      await Promise.race([new Promise<void>((resolve) => gunzip.flush(constants.Z_SYNC_FLUSH, () => resolve())), failed]);
      const bytes = taken();
      if (bytes) yield bytes;
    }
    gunzip.end();
    await Promise.race([once(gunzip, 'end'), failed]);
    const rest = taken();
    if (rest) yield rest;
  } finally {
    gunzip.destroy();
  }
}

/** The start of one object, as a run would parse it; a read error is the sample's `error`. */
async function inspectObject(client: S3Client, config: S3SourceConfig, obj: Listed): Promise<SourceSample> {
  const source = `s3://${config.bucket}/${obj.key}`;
  const certainty = config.format === 'ndjson' ? 'sampled' : 'header';
  try {
    const first = obj.size === 0 ? { bytes: Buffer.alloc(0) } : await getRange(client, config, obj, 0);
    const gzip = isGzipName(obj.key) || /\bgzip\b/i.test(first.encoding ?? '');
    // the next ranges only when the parser asks for more (a header longer than one range, a gzip header's first block)
    async function* ranges(): AsyncGenerator<Buffer> {
      let at = first.bytes.length;
      if (at > 0) yield first.bytes;
      while (at < obj.size) {
        const next = await getRange(client, config, obj, at);
        if (next.bytes.length === 0) return;
        at += next.bytes.length;
        yield next.bytes;
      }
    }
    const input = { source, bytes: obj.size, chunks: gzip ? gunzipped(ranges()) : ranges() };
    const sample = config.format === 'ndjson' ? await inspectNdjsonInput(input) : await inspectCsvInput(input, csvParseOptions(config));
    return { ...sample, setting: 'prefix' };
  } catch (error) {
    const failure = s3Failure(error, `Cannot read ${source}`, config, obj.key);
    return { source, bytes: obj.size, certainty, rows: false, setting: 'prefix', error: { code: failure.code, message: failure.message, key: 'prefix' } };
  }
}

/** The objects the run will read (see above), listed; SOURCE_NOT_FOUND / SOURCE_READ when there is none or no listing. */
async function objectsToRead(client: S3Client, config: S3SourceConfig, watermark: unknown): Promise<Listed[]> {
  const loaded = new Map(isS3Watermark(watermark) ? watermark.objects.map((o) => [o.key, o.etag]) : []);
  const out: Listed[] = [];
  let matched = 0;
  try {
    for await (const obj of listS3Objects(client, config)) {
      matched++;
      if (loaded.get(obj.key) === obj.etag) continue;
      out.push(obj);
      if (out.length >= MAX_INSPECTED_OBJECTS) break;
    }
  } catch (error) {
    const failure = s3Failure(error, `Cannot list s3://${config.bucket}/${config.prefix}`, config);
    throw new EtlError(failure.code, failure.message, { cause: error, context: { ...failure.context, key: failure.code === 'SOURCE_NOT_FOUND' ? 'bucket' : 'prefix' } });
  }
  if (matched === 0) throw noS3Object(config);
  return out;
}

/** The `s3` source's `inspect`: a sample of every object the run will read (see above). */
export async function inspectS3(config: S3SourceConfig, ctx: InspectContext): Promise<SourceSample[]> {
  const client = createS3Client({ region: config.region, endpoint: config.endpoint, forcePathStyle: config.forcePathStyle, env: ctx.env });
  try {
    const objects = await objectsToRead(client, config, ctx.watermark);
    const samples: SourceSample[] = [];
    for (let i = 0; i < objects.length; i += CONCURRENCY) {
      samples.push(...(await Promise.all(objects.slice(i, i + CONCURRENCY).map((obj) => inspectObject(client, config, obj)))));
    }
    return samples;
  } finally {
    client.destroy();
  }
}
