import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli, spawnCli } from '../helpers/cli.js';

/**
 * Issue 14: Prometheus metrics. Pushed to a Pushgateway at the end of a run (simulated by a local HTTP server that
 * parses the exposition format), and served on `--metrics-port` while the run goes on (scraped mid-run).
 */

const KEY = 'pk_metrics_cli_0000000000000000000';
let tmp: string;
let emulator: EmulatorHandle;
let slow: EmulatorHandle;
let gateway: Server;
let gatewayUrl: string;
const pushes: { method: string; url: string; samples: Sample[] }[] = [];

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parse the Prometheus text exposition format (version 0.0.4) strictly: every sample belongs to a family declared by
 * `# HELP` and `# TYPE` before it; label values are quoted with escapes; values are numbers.
 */
function parseExposition(text: string): Sample[] {
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line);
    if (m) {
      helps.add(m[1]!);
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)(?: -?\d+)?$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${JSON.stringify(line)}`);
    const [, name, labelText, value] = m;
    if (!types.has(name!) || !helps.has(name!)) throw new Error(`sample ${name} before its # HELP / # TYPE`);
    const labels: Record<string, string> = {};
    const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/gy;
    let rest = labelText ?? '';
    let lm: RegExpExecArray | null;
    while (rest !== '' && (lm = labelRe.exec(rest))) {
      labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      if (labelRe.lastIndex >= rest.length) rest = '';
    }
    if (rest !== '' && labelRe.lastIndex !== rest.length) throw new Error(`bad labels: ${labelText}`);
    samples.push({ name: name!, labels, value: Number(value) });
  }
  return samples;
}

const value = (samples: Sample[], name: string, labels: Record<string, string>): number | undefined =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

function pipeline(extra = ''): string {
  return `version: 1
name: measured
source: { type: csv, path: people.csv }
transform:
  type: profile
  profile:
    email: { column: email, type: email }
destination:
  type: klaviyo
  batch: { profiles: 2 }
metrics:
  pushgateway: \${PUSHGATEWAY_URL}
  job: nightly
${extra}`;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-metrics-'));
  await writeFile(path.join(tmp, 'people.csv'), 'email\na@example.com\nb@example.com\nnot-an-email\nc@example.com\nd@example.com\n');
  await writeFile(path.join(tmp, 'measured.yaml'), pipeline());
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 100_000 });
  slow = await startEmulator({ port: 0, limits: 'off', faults: { slowRate: 1, slowMs: 700 } });
  gateway = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      try {
        pushes.push({ method: req.method!, url: req.url!, samples: parseExposition(text) });
        res.writeHead(200).end();
      } catch (error) {
        res.writeHead(400).end(String(error));
      }
    });
  });
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
  gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await emulator?.close();
  await slow?.close();
  await new Promise((r) => gateway?.close(r));
  await rm(tmp, { recursive: true, force: true });
});

describe('Prometheus metrics (CLI, built binary)', () => {
  it('pushes rows, rejects by code, requests and 429s by endpoint, duration and last success to the Pushgateway', async () => {
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY, PUSHGATEWAY_URL: gatewayUrl };
    const res = await cli(['run', path.join(tmp, 'measured.yaml'), '--state-dir', path.join(tmp, 'state1'), '--json'], { env });
    expect(res.code).toBe(3);
    const report = JSON.parse(res.stdout) as { requests: { byEndpoint: Record<string, number> }; finishedAt: string; warnings?: unknown[] };
    expect(report.warnings).toBeUndefined();
    expect(pushes).toHaveLength(1);
    const push = pushes[0]!;
    expect(push.method).toBe('PUT');
    expect(push.url).toBe('/metrics/job/nightly/pipeline/measured');
    const s = push.samples;
    const p = { pipeline: 'measured' };
    expect(value(s, 'klaviyo_etl_rows', { ...p, state: 'read' })).toBe(5);
    expect(value(s, 'klaviyo_etl_rows', { ...p, state: 'loaded' })).toBe(4);
    expect(value(s, 'klaviyo_etl_rows', { ...p, state: 'rejected' })).toBe(1);
    expect(value(s, 'klaviyo_etl_rejects', { ...p, code: 'INVALID_EMAIL' })).toBe(1);
    for (const [endpoint, n] of Object.entries(report.requests.byEndpoint)) expect(value(s, 'klaviyo_etl_requests', { ...p, endpoint })).toBe(n);
    expect(Object.keys(report.requests.byEndpoint).length).toBeGreaterThan(0);
    expect(value(s, 'klaviyo_etl_run_status', { ...p, status: 'completed_with_rejects' })).toBe(1);
    expect(value(s, 'klaviyo_etl_run_status', { ...p, status: 'succeeded' })).toBe(0);
    expect(value(s, 'klaviyo_etl_run_duration_seconds', p)).toBeGreaterThan(0);
    // exit 3 is not a success: no last success yet
    expect(value(s, 'klaviyo_etl_last_success_timestamp_seconds', p)).toBeUndefined();
  }, 120_000);

  it('last success comes from the history on a failed run; 429s by endpoint; a Pushgateway that is down never fails the run', async () => {
    const stateDir = path.join(tmp, 'state2');
    await writeFile(path.join(tmp, 'tolerant.yaml'), pipeline('failOn: { rejects: 5 }\n').replace('name: measured', 'name: tolerant'));
    const okEnv = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY, PUSHGATEWAY_URL: gatewayUrl };
    const ok = await cli(['run', path.join(tmp, 'tolerant.yaml'), '--state-dir', stateDir, '--json'], { env: okEnv });
    expect(ok.code).toBe(0);
    const finishedAt = (JSON.parse(ok.stdout) as { finishedAt: string }).finishedAt;
    const from = pushes.length;
    const failed = await cli(['run', path.join(tmp, 'tolerant.yaml'), '--state-dir', stateDir, '--restart'], { env: { KLAVIYO_BASE_URL: emulator.url, PUSHGATEWAY_URL: gatewayUrl } });
    expect(failed.code).toBe(1);
    const s = pushes[from]!.samples;
    expect(value(s, 'klaviyo_etl_run_status', { pipeline: 'tolerant', status: 'failed' })).toBe(1);
    expect(value(s, 'klaviyo_etl_last_success_timestamp_seconds', { pipeline: 'tolerant' })).toBe(Date.parse(finishedAt) / 1000);

    const down = await cli(['run', path.join(tmp, 'tolerant.yaml'), '--state-dir', path.join(tmp, 'state3'), '--json'], {
      env: { ...okEnv, PUSHGATEWAY_URL: 'http://127.0.0.1:9' },
    });
    expect(down.code).toBe(0);
    expect((JSON.parse(down.stdout) as { warnings: { code: string; message: string }[] }).warnings).toContainEqual(expect.objectContaining({ code: 'METRICS_NOT_PUSHED' }));

    // 429s by endpoint: the emulator answers 429 to a run paced far above its limits
    const limited = await startEmulator({ port: 0, limits: 'klaviyo', faults: { rate429: 0.5, seed: 3 } });
    try {
      const from429 = pushes.length;
      const res = await cli(['run', path.join(tmp, 'tolerant.yaml'), '--state-dir', path.join(tmp, 'state4'), '--json'], {
        env: { ...okEnv, KLAVIYO_BASE_URL: limited.url },
      });
      const report = JSON.parse(res.stdout) as { requests: { throttled: number; throttledByEndpoint: Record<string, number> } };
      expect(report.requests.throttled).toBeGreaterThan(0);
      const samples = pushes[from429]!.samples;
      for (const [endpoint, n] of Object.entries(report.requests.throttledByEndpoint)) {
        expect(value(samples, 'klaviyo_etl_throttled_requests', { pipeline: 'tolerant', endpoint })).toBe(n);
      }
    } finally {
      await limited.close();
    }
  }, 300_000);

  it('--metrics-port serves the live metrics while the run goes on', async () => {
    const child = spawnCli(['run', path.join(tmp, 'measured.yaml'), '--state-dir', path.join(tmp, 'state5'), '--metrics-port', '0', '--metrics-host', '127.0.0.1'], {
      env: { KLAVIYO_BASE_URL: slow.url, KLAVIYO_API_KEY: KEY, PUSHGATEWAY_URL: '' },
    });
    let stderr = '';
    const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /metrics: (http:\/\/\S+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      void exited.then(() => reject(new Error(`exited before serving metrics: ${stderr}`)));
    });
    const scraped: Sample[][] = [];
    // scrape until the run has sent a request (each takes 700 ms at the slow emulator)
    for (let i = 0; i < 100; i++) {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const samples = parseExposition(await res.text());
      scraped.push(samples);
      const sent = samples.filter((x) => x.name === 'klaviyo_etl_requests').reduce((a, x) => a + x.value, 0);
      if (sent > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const last = scraped.at(-1)!;
    expect(value(last, 'klaviyo_etl_run_status', { pipeline: 'measured', status: 'running' })).toBe(1);
    expect(value(last, 'klaviyo_etl_rows', { pipeline: 'measured', state: 'read' })).toBeGreaterThan(0);
    expect(await exited).toBe(3);
  }, 120_000);
});
