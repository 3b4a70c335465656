import { createServer, request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

/** The part of s3rver's API we use (the package ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: {
  port: number;
  address: string;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
}) => S3rverInstance;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;

/** A running in-process s3rver (a real S3 wire server on 127.0.0.1, random port). */
export interface TestS3 {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** Environment with s3rver's fixed credentials (S3RVER/S3RVER) and a region. */
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/** Start s3rver with the given buckets in a fresh temporary directory (removed on close). */
export async function startS3rver(buckets: string[] = ['b']): Promise<TestS3> {
  const directory = await mkdtemp(join(tmpdir(), 'klaviyo-etl-s3rver-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const address = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' },
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** A request a {@link RecordingProxy} passed on, and the body bytes of its response. */
export interface ProxiedRequest {
  method: string;
  url: string;
  range?: string;
  status: number;
  bytes: number;
}

/** An HTTP proxy in front of an S3 endpoint that records each request (what a client asked S3 for, and got). */
export interface RecordingProxy {
  endpoint: string;
  requests: ProxiedRequest[];
  close(): Promise<void>;
}

/**
 * Start a recording proxy in front of `target` (s3rver's endpoint). Headers pass unchanged (Host included), so
 * SigV4 signatures made for the proxy's address still verify.
 */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const to = new URL(target);
  const requests: ProxiedRequest[] = [];
  const server = createServer((req, res) => {
    const upstream = httpRequest({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      const entry: ProxiedRequest = { method: req.method!, url: req.url!, status: up.statusCode!, bytes: 0 };
      if (typeof req.headers.range === 'string') entry.range = req.headers.range;
      requests.push(entry);
      res.writeHead(up.statusCode!, up.headers);
      up.on('data', (chunk: Buffer) => (entry.bytes += chunk.length));
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
