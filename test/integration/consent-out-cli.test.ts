/**
 * Issue 12, "the other direction": unsubscribe, suppression and list removal pipelines through the CLI (built binary)
 * against an emulator in this process. Each test sets Klaviyo up through the API, runs a pipeline over a small CSV and
 * checks what Klaviyo ends up holding (`/_emulator/profiles`: consent, suppressions, list membership), the requests
 * made (report `requests.byEndpoint`), the exit code, the rejects with their codes and the skips with their reason.
 * One run is interrupted (SIGTERM) and resumed.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { readRejects, start, waitForCheckpoint } from '../helpers/resume.js';
import { client } from '../unit/emulator/client.js';

const KEY = 'pk_consent_out_000000000000000000';

interface Consent {
  consent: string;
  can_receive_email_marketing?: boolean;
  suppression?: { reason: string }[];
  list_suppressions?: { list_id: string; reason: string }[];
}

interface HeldProfile {
  id: string;
  email: string | null;
  phone_number: string | null;
  lists: { id: string }[];
  subscriptions: { email: { marketing: Consent }; sms: { marketing: Consent } };
}

let tmp: string;
let emulator: EmulatorHandle;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-consent-out-'));
  emulator = await startEmulator({ port: 0, limits: 'off', subscriptionDelayMs: 0 }); // set-up subscriptions apply at once
  api = client(emulator.url, KEY);
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

async function held(): Promise<Map<string, HeldProfile>> {
  const text = await (await fetch(`${emulator.url}/_emulator/profiles?key=${KEY}`)).text();
  const profiles = text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as HeldProfile);
  return new Map(profiles.map((p) => [p.email ?? p.phone_number ?? p.id, p]));
}

async function createList(name: string): Promise<string> {
  const r = await api('POST', '/api/lists', { data: { type: 'list', attributes: { name } } });
  expect(r.status).toBe(201);
  return r.json.data.id as string;
}

/** Subscribe profiles (email marketing; sms too when a phone is given), into a list when one is named. */
async function subscribe(people: { email: string; phone?: string }[], listId?: string): Promise<void> {
  const data = people.map((p) => ({
    type: 'profile',
    attributes: {
      email: p.email,
      ...(p.phone ? { phone_number: p.phone } : {}),
      subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } }, ...(p.phone ? { sms: { marketing: { consent: 'SUBSCRIBED' } } } : {}) },
    },
  }));
  const r = await api('POST', '/api/profile-subscription-bulk-create-jobs', {
    data: {
      type: 'profile-subscription-bulk-create-job',
      attributes: { profiles: { data } },
      ...(listId ? { relationships: { list: { data: { type: 'list', id: listId } } } } : {}),
    },
  });
  expect(r.status).toBe(202);
}

interface Report {
  status: string;
  resumed: boolean;
  rows: { read: number; loaded: number; rejected: number; skipped: number };
  items: Record<string, number>;
  skips?: { file: string; byCode: Record<string, number> };
  requests: { total: number; byEndpoint: Record<string, number> };
}

/** Write the CSV and the pipeline, run it; the exit code, the report and the rejects. */
async function runPipeline(name: string, csv: string, transform: string, destination = '') {
  const dir = path.join(tmp, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'rows.csv'), csv);
  await writeFile(path.join(dir, 'pipeline.yaml'), pipelineYaml(name, transform, destination));
  const reportFile = path.join(dir, 'report.json');
  const result = await cli(['run', path.join(dir, 'pipeline.yaml'), '--report', reportFile, '--state-dir', path.join(dir, 'state')], {
    env: { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY },
  });
  const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
  const rejects = await readRejects(path.join(dir, 'rejects.ndjson'));
  const skipped = await readRejects(path.join(dir, 'state', name, 'skipped.ndjson'));
  return { result, report, rejects, skipped };
}

function pipelineYaml(name: string, transform: string, destination: string): string {
  return `version: 1
name: ${name}
source:
  type: csv
  path: rows.csv
transform:
${transform}
destination:
  type: klaviyo
${destination}
rejects:
  path: rejects.ndjson
`;
}

describe('unsubscribe pipelines (profile-subscription-bulk-delete-jobs)', () => {
  it('unsubscribes the list members only: rows whose profile is not in the list are skipped (NOT_IN_LIST), never unsubscribed globally', async () => {
    const list = await createList('Unsub news');
    await subscribe([{ email: 'u1@example.com' }, { email: 'u2@example.com' }, { email: 'u3@example.com' }], list);
    await subscribe([{ email: 'outside@example.com' }]); // subscribed, in no list
    const before = (await held()).size;
    const csv = 'email,unsubscribe\nu1@example.com,yes\nU2@Example.com,yes\noutside@example.com,yes\nnot-an-email,yes\nstranger@example.com,yes\nu3@example.com,no\n';
    const { result, report, rejects, skipped } = await runPipeline(
      'unsub-list',
      csv,
      `  type: unsubscribe
  profile: { email: email }
  channels: { email: { marketing: true } }
  list: ${list}
  when: unsubscribe`,
    );
    expect(result.code).toBe(3);
    expect(report.status).toBe('completed_with_rejects');
    expect(report.rows).toEqual({ read: 6, loaded: 2, rejected: 1, skipped: 3 });
    expect(report.skips?.byCode).toEqual({ NOT_IN_LIST: 2 });
    expect(skipped.map((r) => [r.line, r.code])).toEqual([
      [4, 'NOT_IN_LIST'],
      [6, 'NOT_IN_LIST'],
    ]);
    expect(report.items.unsubscribes).toBe(4);
    expect(report.requests.byEndpoint).toEqual({ 'GET /api/lists/{id}/profiles': 1, 'POST /api/profile-subscription-bulk-delete-jobs': 1 });
    expect(rejects.map((r) => [r.line, r.code])).toEqual([[5, 'INVALID_EMAIL']]);
    expect(result.stdout).toContain('NOT_IN_LIST 2');

    const now = await held();
    expect(now.size).toBe(before); // nobody created
    for (const email of ['u1@example.com', 'u2@example.com']) {
      const m = now.get(email)!.subscriptions.email.marketing;
      expect(m.consent).toBe('UNSUBSCRIBED');
      expect(m.list_suppressions).toEqual([expect.objectContaining({ list_id: list, reason: 'UNSUBSCRIBE' })]);
      expect(m.suppression).toEqual([]); // from the list only, not globally
      expect(now.get(email)!.lists).toEqual([]);
    }
    expect(now.get('outside@example.com')!.subscriptions.email.marketing).toMatchObject({ consent: 'SUBSCRIBED', suppression: [], can_receive_email_marketing: true });
    expect(now.get('u3@example.com')!.subscriptions.email.marketing.consent).toBe('SUBSCRIBED');
    expect(now.get('u3@example.com')!.lists.map((l) => l.id)).toEqual([list]);
  });

  it('notInList: unsubscribe-globally sends every row, and Klaviyo unsubscribes a profile outside the list from everything', async () => {
    const list = await createList('Unsub global');
    await subscribe([{ email: 'g1@example.com', phone: '+14155550101' }], list);
    await subscribe([{ email: 'g2@example.com', phone: '+14155550102' }]);
    const csv = 'email,phone\ng1@example.com,+14155550101\ng2@example.com,+14155550102\n';
    const { result, report } = await runPipeline(
      'unsub-global',
      csv,
      `  type: unsubscribe
  profile: { email: email, phone_number: phone }
  channels: { email: { marketing: true }, sms: { marketing: true } }
  list: ${list}
  notInList: unsubscribe-globally`,
    );
    expect(result.code).toBe(0);
    expect(report.rows).toEqual({ read: 2, loaded: 2, rejected: 0, skipped: 0 });
    expect(report.requests.byEndpoint).toEqual({ 'POST /api/profile-subscription-bulk-delete-jobs': 1 });
    const now = await held();
    const g2 = now.get('g2@example.com')!.subscriptions;
    expect(g2.email.marketing).toMatchObject({ consent: 'UNSUBSCRIBED', suppression: [expect.objectContaining({ reason: 'UNSUBSCRIBE' })] });
    expect(g2.sms.marketing.consent).toBe('UNSUBSCRIBED');
    expect(now.get('g1@example.com')!.subscriptions.email.marketing.suppression).toEqual([]);
    expect(now.get('g1@example.com')!.subscriptions.sms.marketing.consent).toBe('UNSUBSCRIBED');
  });
});

describe('suppression pipelines (profile-suppression-bulk-create-jobs)', () => {
  it('suppresses each email (USER_SUPPRESSED, a profile unknown to Klaviyo is created suppressed), 100 a request, and rejects a bad one', async () => {
    await subscribe([{ email: 's1@example.com' }]);
    const emails = Array.from({ length: 150 }, (_, i) => `bulk${i}@example.com`);
    const csv = ['email,note', 's1@example.com,', 'not an email,', ',no email', ...emails.map((e) => `${e},`)].join('\n') + '\n';
    const { result, report, rejects } = await runPipeline('suppress', csv, '  type: suppress\n  profile: { email: email }');
    expect(result.code).toBe(3);
    expect(report.rows).toEqual({ read: 153, loaded: 151, rejected: 2, skipped: 0 });
    expect(report.items.suppressions).toBe(151);
    expect(report.requests.byEndpoint).toEqual({ 'POST /api/profile-suppression-bulk-create-jobs': 2 });
    expect(rejects.map((r) => [r.line, r.code])).toEqual([
      [3, 'INVALID_EMAIL'],
      [4, 'MISSING_IDENTIFIER'],
    ]);
    const now = await held();
    expect(now.get('s1@example.com')!.subscriptions.email.marketing).toMatchObject({
      consent: 'SUBSCRIBED',
      can_receive_email_marketing: false,
      suppression: [expect.objectContaining({ reason: 'USER_SUPPRESSED' })],
    });
    for (const email of emails) expect(now.get(email)!.subscriptions.email.marketing.suppression).toEqual([expect.objectContaining({ reason: 'USER_SUPPRESSED' })]);
  });

  it('resumes after an interruption (SIGTERM): every email suppressed once, no batch before the checkpoint sent again', async () => {
    const dir = path.join(tmp, 'suppress-resume');
    await mkdir(dir, { recursive: true });
    const emails = Array.from({ length: 12 }, (_, i) => `resume${i}@example.com`);
    await writeFile(path.join(dir, 'rows.csv'), ['email', ...emails].join('\n') + '\n');
    await writeFile(
      path.join(dir, 'pipeline.yaml'),
      pipelineYaml(
        'suppress-resume',
        '  type: suppress\n  profile: { email: email }',
        `  concurrency: 1
  batch: { suppressions: 2 }
  rateLimits:
    "POST /api/profile-suppression-bulk-create-jobs": { burst: 1, steady: 60 }`,
      ),
    );
    const stateDir = path.join(dir, 'state');
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };
    const args = ['run', path.join(dir, 'pipeline.yaml'), '--state-dir', stateDir];
    const first = start([...args, '--report', path.join(dir, 'first.json')], env);
    const cp = await waitForCheckpoint(stateDir, 'suppress-resume', (c) => (c.position?.seq ?? -1) >= 1);
    first.child.kill('SIGTERM');
    const exit1 = await first.exited;
    expect(exit1.code).toBe(143);
    const firstReport = JSON.parse(await readFile(path.join(dir, 'first.json'), 'utf8')) as Report;
    expect(firstReport.status).toBe('interrupted');
    const sentFirst = firstReport.requests.byEndpoint['POST /api/profile-suppression-bulk-create-jobs']!;
    expect(sentFirst).toBeGreaterThanOrEqual(1);
    expect(sentFirst).toBeLessThan(6);
    expect(cp.position?.seq).toBeGreaterThanOrEqual(1);

    const second = await cli([...args, '--report', path.join(dir, 'second.json')], { env });
    expect(second.code).toBe(0);
    const report = JSON.parse(await readFile(path.join(dir, 'second.json'), 'utf8')) as Report;
    expect(report).toMatchObject({ status: 'succeeded', resumed: true, rows: { read: 12, loaded: 12, rejected: 0 } });
    // both attempts: the 6 batches, plus at most the one in flight at the interrupt
    const total = report.requests.byEndpoint['POST /api/profile-suppression-bulk-create-jobs']!;
    expect(total).toBeGreaterThanOrEqual(6);
    expect(total).toBeLessThanOrEqual(7);
    const now = await held();
    for (const email of emails) expect(now.get(email)!.subscriptions.email.marketing.suppression).toEqual([expect.objectContaining({ reason: 'USER_SUPPRESSED' })]);
  }, 30_000);
});

describe('list removal pipelines (DELETE /api/lists/{id}/relationships/profiles)', () => {
  it('finds the members by email or phone among the list, removes them by id, skips non-members (NOT_IN_LIST), consent unchanged', async () => {
    const list = await createList('Removal');
    const other = await createList('Other');
    await subscribe([{ email: 'r1@example.com' }, { email: 'r2@example.com', phone: '+14155550111' }, { email: 'r3@example.com' }], list);
    await subscribe([{ email: 'r4@example.com' }], other);
    const csv = 'email,phone\nr1@example.com,\n,+14155550111\nr4@example.com,\nbad@,\n';
    const { result, report, rejects, skipped } = await runPipeline(
      'remove',
      csv,
      `  type: remove-from-list
  list: ${list}
  profile: { email: email, phone_number: { column: phone, type: phone } }`,
    );
    expect(result.code).toBe(3);
    expect(report.rows).toEqual({ read: 4, loaded: 2, rejected: 1, skipped: 1 });
    expect(report.skips?.byCode).toEqual({ NOT_IN_LIST: 1 });
    expect(skipped.map((r) => [r.line, r.code])).toEqual([[4, 'NOT_IN_LIST']]);
    expect(report.items.listRemovals).toBe(3);
    expect(report.requests.byEndpoint).toEqual({ 'GET /api/lists/{id}/profiles': 2, 'DELETE /api/lists/{id}/relationships/profiles': 1 });
    expect(rejects.map((r) => [r.line, r.code])).toEqual([[5, 'INVALID_EMAIL']]);
    const now = await held();
    expect(now.get('r1@example.com')!.lists).toEqual([]);
    expect(now.get('r2@example.com')!.lists).toEqual([]);
    expect(now.get('r3@example.com')!.lists.map((l) => l.id)).toEqual([list]);
    expect(now.get('r4@example.com')!.lists.map((l) => l.id)).toEqual([other]);
    for (const email of ['r1@example.com', 'r2@example.com']) {
      expect(now.get(email)!.subscriptions.email.marketing).toMatchObject({ consent: 'SUBSCRIBED', suppression: [], list_suppressions: [] });
    }
  });

  it('an unknown list fails the run at once (exit 1), rejecting nothing', async () => {
    const { result, report, rejects } = await runPipeline('remove-unknown', 'email\nr1@example.com\n', '  type: remove-from-list\n  list: NoSuch\n  profile: { email: email }');
    expect(result.code).toBe(1);
    expect(report.status).toBe('failed');
    expect(rejects).toEqual([]);
    expect(report.requests.byEndpoint).toEqual({ 'GET /api/lists/{id}/profiles': 1 });
    expect(result.stdout + result.stderr).toContain('KLAVIYO_REQUEST_REJECTED');
  });
});
