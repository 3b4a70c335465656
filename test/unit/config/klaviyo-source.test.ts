import { describe, expect, it } from 'vitest';
import { loadPipelineText } from '../../../src/config/load.js';

/** The klaviyo source's options against its `resource:` (rule klaviyoSourceOptions), located at file:line:col. */

function problems(source: string[]): string[] {
  const text = ['version: 1', 'name: export', 'source:', ...source.map((l) => `  ${l}`), 'transform: {type: export, columns: {id: id}}', 'destination: {type: csv, path: out.csv}', ''].join('\n');
  const result = loadPipelineText(text, { file: 'p.yaml', env: {} });
  return result.problems.map((p) => `${p.line}:${p.column} ${p.code} ${p.path} ${p.message}`);
}

describe('klaviyo source options', () => {
  it('accepts each resource with its own options', () => {
    expect(problems(['type: klaviyo', 'list: Xy12Ab', 'subscriptions: true'])).toEqual([]);
    expect(problems(['type: klaviyo', 'resource: events', 'metrics: [Placed Order]', 'include: [profile, metric]', 'lookback: 1d', 'pageSize: 1000', 'concurrency: 8'])).toEqual([]);
    expect(problems(['type: klaviyo', 'resource: profiles', 'by: created', 'fields: [email]', "since: '2026-01-01'", "until: '2026-02-01T00:00:00Z'"])).toEqual([]);
    expect(problems(['type: klaviyo', 'resource: campaigns', 'channels: [email, sms]'])).toEqual([]);
    expect(problems(['type: klaviyo', 'resource: metrics'])).toEqual([]);
  });

  it('members need exactly one of list / segment', () => {
    expect(problems(['type: klaviyo'])).toEqual([expect.stringMatching(/^4:9 CONFIG_RULE source\.type a klaviyo source needs list or segment/)]);
    expect(problems(['type: klaviyo', 'resource: members'])).toEqual([expect.stringMatching(/^5:13 CONFIG_RULE source\.resource /)]);
    expect(problems(['type: klaviyo', 'list: A', 'segment: B'])).toEqual([expect.stringMatching(/^6:12 CONFIG_RULE source\.segment give either list or segment/)]);
  });

  it("an option of another resource is an error at the option, naming the resources it applies to", () => {
    expect(problems(['type: klaviyo', 'resource: profiles', 'metrics: [Placed Order]'])).toEqual(['6:3 CONFIG_RULE source.metrics metrics applies to resource events, not profiles']);
    expect(problems(['type: klaviyo', 'resource: events', 'by: created', 'subscriptions: true'])).toEqual([
      '6:7 CONFIG_RULE source.by by applies to resource profiles, not events',
      '7:18 CONFIG_RULE source.subscriptions subscriptions applies to resource members or profiles, not events',
    ]);
    expect(problems(['type: klaviyo', 'resource: events', 'list: Xy12Ab'])).toEqual(['6:9 CONFIG_RULE source.list list applies to resource members, not events']);
    expect(problems(['type: klaviyo', 'resource: metrics', 'concurrency: 4'])).toEqual([expect.stringMatching(/^6:16 CONFIG_RULE source\.concurrency concurrency applies to resource /)]);
    expect(problems(['type: klaviyo', 'resource: events', 'channels: [sms]'])).toEqual(['6:3 CONFIG_RULE source.channels channels applies to resource campaigns, not events']);
  });

  it("pageSize above the resource's maximum; until not after since", () => {
    expect(problems(['type: klaviyo', 'resource: profiles', 'pageSize: 500'])).toEqual(['6:13 CONFIG_RULE source.pageSize pageSize 500 is more than Klaviyo allows for profiles (100)']);
    expect(problems(['type: klaviyo', 'resource: templates', 'pageSize: 20'])).toEqual(['6:13 CONFIG_RULE source.pageSize pageSize 20 is more than Klaviyo allows for templates (10)']);
    expect(problems(['type: klaviyo', 'resource: events', "since: '2026-02-01'", "until: '2026-01-01'"])).toEqual(["7:10 CONFIG_RULE source.until until must be later than since"]);
  });

  it('since / until must be ISO 8601 with an offset (or a date); lookback a duration', () => {
    expect(problems(['type: klaviyo', 'resource: events', "since: '2026-01-01 10:00'"])).toEqual([expect.stringMatching(/^6:10 CONFIG_INVALID source\.since /)]);
    expect(problems(['type: klaviyo', 'resource: events', 'lookback: soon'])).toEqual([expect.stringMatching(/^6:13 CONFIG_INVALID source\.lookback /)]);
  });
});
