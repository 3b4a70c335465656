import { describe, expect, it } from 'vitest';
import { evaluateAlerts, failureStreak } from '../../../src/alerts/evaluate.js';
import { Alerts } from '../../../src/config/operations.js';
import { judgeRejects } from '../../../src/runner/fail-on.js';
import type { RunReport } from '../../../src/runner/report.js';

function report(status: RunReport['status'], rows: Partial<RunReport['rows']> = {}, durationMs = 1000): RunReport {
  return {
    status,
    pipeline: { name: 'p', file: 'p.yaml' },
    runId: 'r',
    resumed: false,
    dryRun: false,
    startedAt: '2026-12-01T00:00:00.000Z',
    finishedAt: '2026-12-01T00:00:01.000Z',
    durationMs,
    rows: { read: 10, loaded: 10, rejected: 0, skipped: 0, ...rows },
    items: { profiles: 0, events: 0, subscriptions: 0, exportRows: 0, duplicates: 0 },
    requests: { total: 1, throttled: 0, retried: 0, failed: 0, planned: 0, byEndpoint: {}, throttledByEndpoint: {} },
    jobs: { submitted: 0, completed: 0, importErrors: 0, forgotten: 0 },
  };
}

const config = (input: object) => Alerts.parse({ webhooks: [{ url: 'http://127.0.0.1:1/x' }], ...input });
const kinds = (r: RunReport, previous: RunReport[], input: object = {}) => evaluateAlerts(r, previous, config(input)).map((a) => a.kind);

describe('evaluateAlerts', () => {
  it('failed, zeroRows and recovered are on by default; rejects, slowerThan and failuresInARow only when set', () => {
    expect(kinds(report('failed'), [])).toEqual(['failed']);
    expect(kinds(report('succeeded', { read: 0, loaded: 0 }), [])).toEqual(['zeroRows']);
    expect(kinds(report('completed_with_rejects', { loaded: 9, rejected: 1 }), [])).toEqual([]);
    expect(kinds(report('completed_with_rejects', { loaded: 9, rejected: 1 }), [], { rejects: {} })).toEqual(['rejects']);
    expect(kinds(report('succeeded', {}, 7_300_000), [], { slowerThan: '2h' })).toEqual(['slowerThan']);
    expect(kinds(report('succeeded', {}, 7_100_000), [], { slowerThan: '2h' })).toEqual([]);
  });

  it('rejects above a count or a share', () => {
    const r = report('completed_with_rejects', { read: 1000, loaded: 980, rejected: 20 });
    expect(kinds(r, [], { rejects: { count: 20 } })).toEqual([]);
    expect(kinds(r, [], { rejects: { count: 19 } })).toEqual(['rejects']);
    expect(kinds(r, [], { rejects: { share: 0.02 } })).toEqual([]);
    expect(kinds(r, [], { rejects: { share: 0.01 } })).toEqual(['rejects']);
  });

  it('failures in a row skip interrupted runs; recovery follows the last run that ended', () => {
    const history = [report('succeeded'), report('failed'), report('interrupted'), report('failed')];
    expect(failureStreak(report('failed'), history)).toBe(3);
    expect(kinds(report('failed'), history, { failuresInARow: 3 })).toEqual(['failed', 'failuresInARow']);
    expect(kinds(report('failed'), history.slice(0, 2), { failuresInARow: 3 })).toEqual(['failed']);
    expect(kinds(report('succeeded'), history)).toEqual(['recovered']);
    expect(kinds(report('succeeded'), [...history, report('interrupted')])).toEqual(['recovered']);
    expect(kinds(report('succeeded'), [...history, report('succeeded')])).toEqual([]);
    expect(kinds(report('interrupted'), history)).toEqual([]);
  });
});

describe('judgeRejects (failOn)', () => {
  it('any reject exceeds by default; thresholds are each checked; every row rejected fails', () => {
    const r1 = report('completed_with_rejects', { read: 100, loaded: 99, rejected: 1 });
    judgeRejects(r1, undefined);
    expect(r1.failOn).toEqual({ rejects: 0, exceeded: true });
    const r2 = report('completed_with_rejects', { read: 100, loaded: 99, rejected: 1 });
    judgeRejects(r2, { rejectShare: 0.01 });
    expect(r2.failOn).toEqual({ rejectShare: 0.01, exceeded: false });
    const r3 = report('completed_with_rejects', { read: 100, loaded: 98, rejected: 2 });
    judgeRejects(r3, { rejectShare: 0.5, rejects: 1 });
    expect(r3.failOn?.exceeded).toBe(true);
    const all = report('completed_with_rejects', { read: 5, loaded: 0, rejected: 3, skipped: 2 });
    judgeRejects(all, { rejects: 100 });
    expect(all.status).toBe('failed');
    expect(all.error?.code).toBe('ALL_ROWS_REJECTED');
    const ok = report('succeeded');
    judgeRejects(ok, undefined);
    expect(ok.failOn).toBeUndefined();
  });
});
