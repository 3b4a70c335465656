import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, cli } from '../helpers/cli.js';

/*
 * Issue 15, "Smaller", through the built CLI: errors as JSON with --json, plain --progress lines off a terminal,
 * suggestions for mistyped commands and flags, `status` without the source's variables, the export's file in its
 * summary and report, "did you mean" from the section's own keys, and a resumed run's summary.
 */

let tmp: string;
const file = (name: string) => path.join(tmp, name);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-small-'));
  await writeFile(file('people.csv'), 'email,first\nann@example.com,Ann\nbob@example.com,Bob\n');
  await writeFile(
    file('people.yaml'),
    'version: 1\nname: people\nsource: {type: csv, path: people.csv}\ntransform:\n  type: profile\n  profile: {email: email, first_name: first}\ndestination: {type: klaviyo}\n',
  );
  await writeFile(file('typo.yaml'), 'version: 1\nname: typo\nsource:\n  type: csv\n  file: people.csv\ntransform:\n  type: profile\n  profile: {email: email}\ndestination: {type: klaviyo}\n');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('--json prints errors as JSON', () => {
  it('an invalid pipeline: the problems on stdout as JSON, exit 2', async () => {
    const result = await cli(['run', file('typo.yaml'), '--dry-run', '--json']);
    expect(result.code).toBe(2);
    const out = JSON.parse(result.stdout);
    expect(out.error.code).toMatch(/^CONFIG_/);
    expect(out.error.problems).toContainEqual(expect.objectContaining({ line: 5, column: 3, code: 'CONFIG_UNKNOWN_KEY', path: 'source.file' }));
    expect(result.stderr).toContain(`error [${out.error.code}]`);
  });

  it('status and a usage error too', async () => {
    const status = await cli(['status', file('no-such.yaml'), '--json']);
    expect(status.code).toBe(2);
    expect(JSON.parse(status.stdout).error.code).toBe('CONFIG_INVALID');
    const usage = await cli(['run', file('people.yaml'), '--limit', '0', '--json']);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stdout).error.code).toBe('USAGE');
  });
});

describe('did you mean', () => {
  it('ranks the section\'s own keys: `file` in a csv source is `path`', async () => {
    const result = await cli(['validate', file('typo.yaml')]);
    expect(result.code).toBe(2);
    expect(result.stdout).toContain('typo.yaml:5:3  CONFIG_UNKNOWN_KEY  source.file: unknown key "file" (did you mean "path"?)');
  });

  it('a mistyped command and a mistyped flag get a suggestion (exit 2)', async () => {
    const command = await cli(['rnu', file('people.yaml')]);
    expect(command.code).toBe(2);
    expect(command.stderr).toMatch(/Did you mean run\?/);
    const flag = await cli(['run', file('people.yaml'), '--dryrun']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('did you mean --dry-run for dryrun?');
  });
});

describe('--progress when stderr is not a terminal', () => {
  it('writes plain progress lines, no escape codes', async () => {
    // a profile import job is polled after a second: the run lasts long enough for a progress update
    const result = await cli(['run', file('people.yaml'), '--emulator', '--progress', '--state-dir', file('state-progress')]);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^progress: rows \d+ /m);
    expect(result.stderr).not.toContain('\x1b');
    expect(result.stderr).not.toContain('\r');
  });
});

describe('status', () => {
  it('does not need the variables only the source reads (DATABASE_URL)', async () => {
    const result = await cli(['status', path.join(ROOT, 'pipelines/examples/customers-postgres.yaml'), '--state-dir', file('state-status')]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('customers-postgres: never-run');
  });
});

describe('an export names what it wrote', () => {
  it('in the summary and in the report', async () => {
    const reportFile = file('export-report.json');
    const result = await cli(
      [
        'run',
        'pipelines/examples/list-members-export.yaml',
        '--emulator',
        '--emulator-seed',
        'pipelines/examples/list-members-export.seed.json',
        '--report',
        reportFile,
        '--state-dir',
        file('state-export'),
      ],
      { env: { EXPORT_DIR: file('exports') } },
    );
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(reportFile, 'utf8'));
    expect(report.output).toMatch(/exports\/.+\.csv\.gz$/);
    expect(result.stdout).toContain(`  output    ${report.output}`);
  });
});

describe('the summary of a resumed run', () => {
  it('counts the whole run and says how much of it this attempt did, its rate from the rows it read', async () => {
    const { startEmulator } = await import('../../src/emulator/index.js');
    const emulator = await startEmulator({ port: 0, limits: 'off' });
    try {
      // the last row is bad: with maxRejects 0 the first attempt fails there, its checkpoint after the rows before
      const rows = Array.from({ length: 12 }, (_, i) => `o${i},${i === 11 ? 'not-an-email' : `p${i}@example.com`}`);
      await writeFile(file('events.csv'), ['id,email', ...rows].join('\n') + '\n');
      const pipeline = (rejects: string) =>
        'version: 1\nname: resumed\nsource: {type: csv, path: events.csv}\ntransform:\n  type: event\n  metric: Ping\n  unique_id: id\n  profile: {email: email}\n' +
        `destination: {type: klaviyo, concurrency: 1, batch: {events: 1}}\n${rejects}`;
      await writeFile(file('events.yaml'), pipeline('rejects: {maxRejects: 0}\n'));
      const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: 'pk_resumed_summary_0123456789' };
      const args = ['run', file('events.yaml'), '--state-dir', file('state-resumed')];
      const first = await cli(args, { env });
      expect(first.code).toBe(1);
      await writeFile(file('events.yaml'), pipeline('')); // rejects settings are not part of the pipeline's hash: it resumes
      const reportFile = file('resumed-report.json');
      const second = await cli([...args, '--report', reportFile], { env });
      expect(second.code).toBe(3);
      const report = JSON.parse(await readFile(reportFile, 'utf8'));
      expect(report.resumed).toBe(true);
      expect(report.rows).toMatchObject({ read: 12, loaded: 11, rejected: 1 });
      const after = report.resumedAfterRows as number;
      expect(after).toBeGreaterThan(0);
      expect(second.stdout).toContain(`resumed: completed_with_rejects (resumed after row ${after}; this attempt`);
      expect(second.stdout).toContain(`read 12, loaded 11, rejected 1, skipped 0 (whole run; ${12 - after} read by this attempt,`);
    } finally {
      await emulator.close();
    }
  });

  it('counts the rows a loader skipped (CONSENT_OPTED_OUT) over every attempt, as a clean run of the same file does', async () => {
    const { startEmulator } = await import('../../src/emulator/index.js');
    const { client } = await import('../unit/emulator/client.js');
    const emulator = await startEmulator({ port: 0, limits: 'off', subscriptionDelayMs: 0 });
    try {
      const key = 'pk_resumed_skips_000000000000000000';
      const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: key };
      // profiles that unsubscribed: their rows (no consent date) are skipped by the consent guard, early and late in the file
      const optedOut = [0, 1, 2, 8];
      const unsubscribe = {
        data: {
          type: 'profile-subscription-bulk-delete-job',
          attributes: { profiles: { data: optedOut.map((i) => ({ type: 'profile', attributes: { email: `s${i}@example.com`, subscriptions: { email: { marketing: { consent: 'UNSUBSCRIBED' } } } } })) } },
        },
      };
      expect((await client(emulator.url, key)('POST', '/api/profile-subscription-bulk-delete-jobs', unsubscribe)).status).toBe(202);
      // the last row is bad: with maxRejects 0 the first attempt fails there, its checkpoint after the rows before
      const rows = Array.from({ length: 12 }, (_, i) => (i === 11 ? 'not-an-email' : `s${i}@example.com`));
      await writeFile(file('consent.csv'), ['email', ...rows].join('\n') + '\n');
      const pipeline = (rejects: string) =>
        'version: 1\nname: skips\nsource: {type: csv, path: consent.csv}\ntransform:\n  type: subscription\n  profile: {email: email}\n  channels: {email: {marketing: true}}\n' +
        `destination: {type: klaviyo, concurrency: 1, batch: {subscriptions: 2}}\n${rejects}`;
      await writeFile(file('skips.yaml'), pipeline('rejects: {maxRejects: 0}\n'));
      const args = ['run', file('skips.yaml'), '--state-dir', file('state-skips')];
      const first = await cli(args, { env });
      expect(first.code, first.stdout + first.stderr).toBe(1);
      const checkpoint = JSON.parse(await readFile(file('state-skips/skips/checkpoint.json'), 'utf8'));
      // the interrupted attempt got past some of the skipped rows: the resume must carry them, not count them again
      expect(checkpoint.counters.skippedByCode?.CONSENT_OPTED_OUT).toBeGreaterThan(0);
      await writeFile(file('skips.yaml'), pipeline(''));
      const resumed = await cli([...args, '--report', file('skips-resumed.json')], { env });
      expect(resumed.code, resumed.stdout + resumed.stderr).toBe(3);
      const report = JSON.parse(await readFile(file('skips-resumed.json'), 'utf8'));
      expect(report.resumed).toBe(true);
      expect(report.resumedAfterRows).toBeLessThan(11);

      const clean = await cli(['run', file('skips.yaml'), '--state-dir', file('state-skips-clean'), '--report', file('skips-clean.json')], { env });
      expect(clean.code).toBe(3);
      const cleanReport = JSON.parse(await readFile(file('skips-clean.json'), 'utf8'));
      expect(cleanReport.skips.byCode).toEqual({ CONSENT_OPTED_OUT: optedOut.length });
      expect(report.skips.byCode).toEqual(cleanReport.skips.byCode);
      expect(report.skippedBy).toEqual(cleanReport.skippedBy);
      expect(report.rows).toEqual(cleanReport.rows);
      expect(resumed.stdout).toContain(`skipped   CONSENT_OPTED_OUT ${optedOut.length} → `);
    } finally {
      await emulator.close();
    }
  }, 60_000);
});
