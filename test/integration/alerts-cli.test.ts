import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import type { RunReport } from '../../src/runner/report.js';
import { cli } from '../helpers/cli.js';

/**
 * Issue 14: `alerts:` webhooks (Slack-compatible and plain JSON), received by a local HTTP server: failure, N failures
 * in a row, recovery, rejects above a threshold, zero rows read, slower than a limit; a failed delivery is retried
 * briefly and never fails the run; no secret in any payload, and the webhook URL is never printed.
 */

const KEY = 'pk_alerts_cli_00000000000000000000';
const HOOK_SECRET = 'T0SECRET/B0SECRET/xoxHookToken';
let tmp: string;
let stateDir: string;
let emulator: EmulatorHandle;
let server: Server;
let base: string;
const received: { path: string; body: Record<string, unknown> }[] = [];
const hits = new Map<string, number>();

const ALERTS = `alerts:
  webhooks:
    - { url: "\${HOOK_SLACK}", format: slack }
    - { url: "\${HOOK_JSON}", format: json, on: [failed, failuresInARow, recovered] }
    - { url: "\${HOOK_FLAKY}", on: [rejects] }
    - { url: "\${HOOK_DOWN}", on: [zeroRows] }
    - { url: "\${HOOK_OFF:-}" }
  failuresInARow: 2
  rejects: { count: 0 }
`;

function pipeline(csv: string, extra = ''): string {
  return `version: 1
name: alerted
source: { type: csv, path: ${csv} }
transform:
  type: profile
  profile:
    email: { column: email, type: email }
destination:
  type: klaviyo
${ALERTS}${extra}`;
}

async function files(name: string, emails: string[], extra = ''): Promise<string> {
  await writeFile(path.join(tmp, `${name}.csv`), ['email', ...emails].join('\n') + '\n');
  const yaml = path.join(tmp, `${name}.yaml`);
  await writeFile(yaml, pipeline(`${name}.csv`, extra));
  return yaml;
}

const env = (withKey = true): NodeJS.ProcessEnv => ({
  KLAVIYO_BASE_URL: emulator.url,
  ...(withKey ? { KLAVIYO_API_KEY: KEY } : {}),
  HOOK_SLACK: `${base}/slack/${HOOK_SECRET}`,
  HOOK_JSON: `${base}/json`,
  HOOK_FLAKY: `${base}/flaky`,
  HOOK_DOWN: `${base}/down`,
});

/** The messages received since `from`, by path. */
const since = (from: number): Record<string, Record<string, unknown>[]> => {
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const m of received.slice(from)) (out[m.path] ??= []).push(m.body);
  return out;
};
const kindsOf = (body: Record<string, unknown>): string[] => (body.alerts as { kind: string }[]).map((a) => a.kind);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-alerts-'));
  stateDir = path.join(tmp, 'state');
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 100_000 });
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      const p = req.url!.startsWith('/slack/') ? '/slack' : req.url!;
      const n = (hits.get(p) ?? 0) + 1;
      hits.set(p, n);
      // /down always fails; /flaky fails the first attempt of each message
      if (p === '/down' || (p === '/flaky' && n % 2 === 1)) {
        res.writeHead(500).end('no');
        return;
      }
      received.push({ path: p, body: JSON.parse(text) as Record<string, unknown> });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await emulator?.close();
  await new Promise((r) => server?.close(r));
  await rm(tmp, { recursive: true, force: true });
});

describe('alerts (CLI, built binary, webhooks to a local HTTP server)', () => {
  it('failure, failures in a row, recovery with rejects, zero rows, slow; retried and failed deliveries never fail the run', async () => {
    const run = (yaml: string, e = env()) => cli(['run', yaml, '--restart', '--state-dir', stateDir, '--report', path.join(tmp, 'report.json')], { env: e });
    const outputs: string[] = [];

    let mark = received.length;
    const failed1 = await run(await files('f1', ['a1@example.com']), env(false));
    outputs.push(failed1.stdout, failed1.stderr);
    expect(failed1.code).toBe(1);
    let got = since(mark);
    expect(got['/slack']).toHaveLength(1);
    const slack = got['/slack']![0]! as { text: string };
    expect(Object.keys(slack)).toEqual(['text']);
    expect(slack.text).toMatch(/^\*klaviyo-etl alerted: failed\*\n- run failed: \[MISSING_API_KEY\]/);
    expect(got['/json']!.map(kindsOf)).toEqual([['failed']]);
    expect(got['/json']![0]).toMatchObject({ type: 'klaviyo-etl.alert', pipeline: 'alerted', run: { status: 'failed', error: { code: 'MISSING_API_KEY' } } });

    mark = received.length;
    const failed2 = await run(await files('f2', ['a2@example.com']), env(false));
    outputs.push(failed2.stdout, failed2.stderr);
    got = since(mark);
    expect(got['/json']!.map(kindsOf)).toEqual([['failed', 'failuresInARow']]);
    expect(JSON.stringify(got['/json'])).toContain('2 failed runs in a row');

    // recovery, with one reject: the rejects alert goes to the flaky hook, which takes it on the second attempt
    mark = received.length;
    const recovered = await run(await files('r1', ['ok1@example.com', 'not-an-email']), env());
    outputs.push(recovered.stdout, recovered.stderr);
    expect(recovered.code).toBe(3);
    got = since(mark);
    expect(got['/slack']!.map((b) => (b as { text: string }).text.split('\n')[0])).toEqual(['*klaviyo-etl alerted: rejects, recovered*']);
    expect(got['/json']!.map(kindsOf)).toEqual([['recovered']]);
    expect(got['/flaky']!.map(kindsOf)).toEqual([['rejects']]);
    expect(got['/flaky']![0]).toMatchObject({ run: { rejectsByCode: { INVALID_EMAIL: 1 } } });
    expect((got['/slack']![0] as { text: string }).text).toContain('rejected 1 (INVALID_EMAIL 1)');
    let report = JSON.parse(await readFile(path.join(tmp, 'report.json'), 'utf8')) as RunReport;
    expect(report.alerts).toEqual([
      { webhook: 1, format: 'slack', kinds: ['rejects', 'recovered'], delivered: true, attempts: 1 },
      { webhook: 2, format: 'json', kinds: ['recovered'], delivered: true, attempts: 1 },
      { webhook: 3, format: 'json', kinds: ['rejects'], delivered: true, attempts: 2 },
    ]);

    // zero rows read: the hook that always fails is tried 3 times, the run still exits 0
    mark = received.length;
    const zero = await run(await files('z1', []), env());
    outputs.push(zero.stdout, zero.stderr);
    expect(zero.code).toBe(0);
    expect(hits.get('/down')).toBe(3);
    got = since(mark);
    expect(got['/slack']!.map((b) => (b as { text: string }).text.split('\n')[0])).toEqual(['*klaviyo-etl alerted: zeroRows*']);
    // the empty-file warning of the source says where
    expect((got['/slack']![0] as { text: string }).text).toContain('[SOURCE_FILE_NO_ROWS]');
    report = JSON.parse(await readFile(path.join(tmp, 'report.json'), 'utf8')) as RunReport;
    expect(report.alerts).toContainEqual({ webhook: 4, format: 'json', kinds: ['zeroRows'], delivered: false, attempts: 3, error: 'HTTP 500' });
    expect(zero.stdout).toContain('alert     zeroRows → webhook 4 (json): not delivered after 3 attempts');

    // slower than a limit
    mark = received.length;
    const slow = await run(await files('s1', ['s1@example.com'], '  slowerThan: 1ms\n'), env());
    outputs.push(slow.stdout, slow.stderr);
    expect(slow.code).toBe(0);
    expect(since(mark)['/slack']!.map((b) => (b as { text: string }).text.split('\n')[0])).toEqual(['*klaviyo-etl alerted: slowerThan*']);

    // an --emulator run sends nothing
    mark = received.length;
    const demo = await cli(['run', await files('e1', ['e1@example.com', 'bad-email']), '--emulator', '--state-dir', path.join(tmp, 'demo')], { env: env() });
    expect(demo.code).toBe(3);
    expect(received.length).toBe(mark);

    // no secret anywhere: not the API key in a payload, not the webhook URL in any output or the history
    const history = await cli(['history', path.join(tmp, 's1.yaml'), '--state-dir', stateDir, '--json']);
    for (const text of [JSON.stringify(received), ...outputs, history.stdout]) {
      expect(text).not.toContain(KEY);
      expect(text).not.toContain('xoxHookToken');
    }
  }, 300_000);
});
