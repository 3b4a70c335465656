#!/usr/bin/env node
// Put a local file into S3 or an S3-compatible store, creating the bucket when it does not exist (plain Node ESM).
// Made for trying pipelines/examples/profiles-s3-daily.yaml against a local S3 server (see its header):
//
//   node scripts/s3-put.js <file> s3://bucket/key      upload a file (the bucket is created if missing)
//   node scripts/s3-put.js s3://bucket/                create a bucket only
//
// The endpoint, credentials and region come from the standard AWS variables: AWS_ENDPOINT_URL_S3 (or
// AWS_ENDPOINT_URL), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (default us-east-1).
import { readFileSync } from 'node:fs';
import { CreateBucketCommand, HeadBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

const args = process.argv.slice(2);
const target = args.at(-1);
const source = args.length === 2 ? args[0] : undefined;
const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(target ?? '');
if (!match || args.length < 1 || args.length > 2 || (source !== undefined && match[2] === '')) {
  console.error('usage: node scripts/s3-put.js [<file>] s3://bucket/[key]');
  process.exit(2);
}
const [, bucket, key] = match;
const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
const client = new S3Client({
  region: process.env.AWS_REGION ?? 'us-east-1',
  ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
try {
  await client.send(new HeadBucketCommand({ Bucket: bucket }));
} catch {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  console.log(`created bucket ${bucket}`);
}
if (source !== undefined) {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(source) }));
  console.log(`put ${source} → s3://${bucket}/${key}`);
}
client.destroy();
