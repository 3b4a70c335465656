import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/runner/index.js';
import { jsonLogger } from '../../src/core/logger.js';

/**
 * Audit of "nothing lost, nothing hidden": every row ends up loaded, rejected (in the rejects file) or counted as
 * skipped, and a run never reports success while something failed.
 */

const KEY = 'pk_audit_nothing_lost_000000000000';
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-audit-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function profilesPipeline(dir: string, name: string, extra = ''): Promise<string> {
  await writeFile(
    path.join(dir, `${name}.csv`),
    'email,first_name\nana@example.com,Ana\nnot-an-email,Bad\nbob@example.com,Bob\ncy@example.com,Cy\n',
  );
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(
    file,
    `version: 1
name: ${name}
source: { type: csv, path: ${name}.csv }
transform:
  type: profile
  profile: { email: { column: email, type: email }, first_name: first_name }
destination: { type: klaviyo, retries: 0 }
${extra}`,
  );
  return file;
}

/** A tiny Klaviyo stand-in on a real socket: profile imports are accepted, and every job ends `status`. */
async function fakeKlaviyo(jobStatus: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.setHeader('content-type', 'application/vnd.api+json');
      if (req.method === 'POST' && req.url === '/api/profile-bulk-import-jobs') {
        res.statusCode = 202;
        res.end(JSON.stringify({ data: { type: 'profile-bulk-import-job', id: 'job-1', attributes: { status: 'queued' } } }));
      } else if (req.method === 'GET' && req.url?.startsWith('/api/profile-bulk-import-jobs/job-1')) {
        res.statusCode = 200;
        res.end(JSON.stringify({ data: { type: 'profile-bulk-import-job', id: 'job-1', attributes: { status: jobStatus } } }));
      } else {
        res.statusCode = 404;
        res.end(JSON.stringify({ errors: [{ code: 'not_found', detail: `${req.method} ${req.url}` }] }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('audit: nothing lost', () => {
  it('a rejects file that cannot be written fails the run with a report (and releases the lock)', async () => {
    const dir = await mkdtemp(path.join(tmp, 'rejects-'));
    // the rejects file's directory would be `blocker`, which is a file
    await writeFile(path.join(dir, 'blocker'), 'a file, not a directory\n');
    const file = await profilesPipeline(dir, 'unwritable', 'rejects: { path: blocker/rejects.ndjson }\n');
    const reportFile = path.join(dir, 'report.json');
    const report = await run({ pipelineFile: file, dryRun: true, reportFile });
    expect(report.status).toBe('failed');
    expect(report.error?.code).toBe('REJECTS_WRITE');
    expect(JSON.parse(await readFile(reportFile, 'utf8')).status).toBe('failed');

    // a real run (checkpointed): failed, and the next run is not LOCKED by the failed one
    const { url, server } = await fakeKlaviyo('complete');
    try {
      const env = { KLAVIYO_API_KEY: KEY, KLAVIYO_BASE_URL: url };
      const stateDir = path.join(dir, 'state');
      const first = await run({ pipelineFile: file, env, stateDir });
      expect(first.status).toBe('failed');
      expect(first.error?.code).toBe('REJECTS_WRITE');
      const second = await run({ pipelineFile: file, env, stateDir });
      expect(second.status).toBe('failed');
      expect(second.error?.code).toBe('REJECTS_WRITE');
    } finally {
      server.close();
    }
  });

  it.each(['cancelled', 'failed'])('the rows of a profile import job that ends %s are in the rejects file, not counted as loaded', async (status) => {
    const dir = await mkdtemp(path.join(tmp, `job-${status}-`));
    const file = await profilesPipeline(dir, `job-${status}`);
    const { url, server } = await fakeKlaviyo(status);
    try {
      const stateDir = path.join(dir, 'state');
      const report = await run({ pipelineFile: file, env: { KLAVIYO_API_KEY: KEY, KLAVIYO_BASE_URL: url }, stateDir });
      expect(report.status).toBe('failed');
      expect(report.error?.code).toBe('KLAVIYO_JOB_FAILED');
      expect(report.rows).toMatchObject({ read: 4, loaded: 0, rejected: 4 });
      const rejects = (await readFile(path.resolve(report.rejects!.file), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { code: string; line: number; message: string });
      expect(rejects.map((r) => [r.line, r.code]).sort()).toEqual([
        [2, 'KLAVIYO_JOB_FAILED'],
        [3, 'INVALID_EMAIL'],
        [4, 'KLAVIYO_JOB_FAILED'],
        [5, 'KLAVIYO_JOB_FAILED'],
      ]);
      expect(rejects.find((r) => r.code === 'KLAVIYO_JOB_FAILED')!.message).toContain(`job-1 ended ${status}`);
    } finally {
      server.close();
    }
  });

  it('events Klaviyo will ignore as duplicates (same profile + metric + unique_id) are counted and warned about', async () => {
    const dir = await mkdtemp(path.join(tmp, 'dups-'));
    await writeFile(
      path.join(dir, 'orders.csv'),
      'order,email,total\nA-1,ana@example.com,10\nA-2,ana@example.com,20\nA-1,ana@example.com,10\nA-3,bob@example.com,5\n',
    );
    const file = path.join(dir, 'orders.yaml');
    await writeFile(
      file,
      `version: 1
name: dups
source: { type: csv, path: orders.csv }
transform:
  type: event
  metric: Placed Order
  unique_id: { template: "order-{{order}}" }
  value: { column: total, type: number }
  profile: { email: { column: email, type: email } }
destination: { type: klaviyo }
`,
    );
    const lines: string[] = [];
    const logger = jsonLogger({ level: 'warn', write: (l) => lines.push(l) });
    const report = await run({ pipelineFile: file, emulator: { limits: 'off' }, logger });
    expect(report.status).toBe('succeeded');
    expect(report.items.events).toBe(4);
    expect(report.items.duplicates).toBe(1);
    const state = (report.emulator as { state: { events: number; duplicateEventsIgnored: number } }).state;
    expect(state.events).toBe(3);
    expect(state.duplicateEventsIgnored).toBe(1);
    const warning = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => String(l.msg).includes('duplicate'));
    expect(warning).toMatchObject({ level: 'warn', line: 4, unique_id: 'order-A-1' });
  });
});
