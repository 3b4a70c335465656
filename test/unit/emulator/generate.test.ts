import { describe, expect, it } from 'vitest';
import { applyGenerated, checkGenerate, generateData, parseGenerate, type GenerateOptions } from '../../../src/emulator/generate.js';
import { IdGenerator } from '../../../src/emulator/ids.js';
import { Latency, parseLatency } from '../../../src/emulator/latency.js';
import { Account } from '../../../src/emulator/state.js';

const END = '2026-01-01T00:00:00Z';
const OPTIONS: GenerateOptions = { profiles: 3000, events: 30_000, members: 800, years: 2, seed: 11, end: END };

function account(o: GenerateOptions): Account {
  const a = new Account('k', new IdGenerator());
  applyGenerated(a, generateData(o, Date.now()));
  return a;
}

/** Every generated event as JSON (ids, times, properties…), in order. */
function eventsOf(a: Account): string[] {
  const g = a.generated!;
  return Array.from({ length: g.length }, (_, i) => JSON.stringify(g.item(i)));
}

describe('seed generator', () => {
  it('generates exactly the counts asked for: profiles, events of four metrics, one list of members', () => {
    const a = account(OPTIONS);
    expect(a.profilesById.size).toBe(3000);
    expect(a.summary().events).toBe(30_000);
    expect(Object.keys(a.summary().eventsByMetric).sort()).toEqual(['Active on Site', 'Ordered Product', 'Placed Order', 'Viewed Product']);
    expect(Object.values(a.summary().eventsByMetric).reduce((x, y) => x + y, 0)).toBe(30_000);
    expect([...a.lists.values()].map((g) => [g.name, g.members.size])).toEqual([['Generated list', 800]]);
    expect(new Set(a.profileOrder.map((p) => p.strings.email)).size).toBe(3000);
  });

  it('finds generated profiles by id, email, phone number and external_id without an index entry each; a changed email is found by its new value only', () => {
    const a = account(OPTIONS);
    const p = a.profileOrder.find((x) => x.strings.phone_number !== undefined && x.strings.external_id !== undefined)!;
    expect(a.profilesById.get(p.id)).toBe(p);
    expect(a.matchProfiles({ strings: { email: p.strings.email!.toUpperCase() } } as never)).toEqual([p]);
    expect(a.byPhone.get(p.strings.phone_number!)).toBe(p);
    expect(a.byExternalId.get(p.strings.external_id!)).toBe(p);
    expect(a.profilesById.get(p.id.slice(0, 25) + (p.id.endsWith('Z') ? 'Y' : 'Z'))).toBe(undefined);
    expect(a.byEmail.get(p.strings.email!.replace('@', 'x@'))).toBe(undefined);
    const old = p.strings.email!;
    const { profile, created } = a.upsertProfile({ strings: { email: 'new@example.org' } } as never, { clearNulls: false, strictConflicts: true }, Date.now(), p.id);
    expect([profile, created]).toEqual([p, false]);
    expect(a.byEmail.get('new@example.org')).toBe(p);
    expect(a.byEmail.get(old)).toBe(undefined);
    expect(a.upsertProfile({ strings: { email: old } } as never, { clearNulls: false, strictConflicts: true }, Date.now()).created).toBe(true);
    expect(a.profilesById.size).toBe(3001);
  });

  it('is exactly reproducible from its options (ids included), and another seed gives other data', () => {
    const small = { ...OPTIONS, profiles: 500, events: 4000, members: 100 };
    const first = account(small);
    const firstEvents = eventsOf(first);
    // two other option sets evict the cached data: the third account's data is generated again
    account({ ...small, seed: 12 });
    const other = account({ ...small, seed: 13 });
    const again = account(small);
    expect(again.generated).not.toBe(first.generated);
    expect(eventsOf(again).join('\n') === firstEvents.join('\n')).toBe(true);
    expect(JSON.stringify(again.profileOrder)).toBe(JSON.stringify(first.profileOrder));
    expect([...again.lists.values()][0]!.members).toEqual([...first.lists.values()][0]!.members);
    expect(other.profileOrder[5]!.id).not.toBe(first.profileOrder[5]!.id);
    expect(eventsOf(other)[5]).not.toEqual(firstEvents[5]);
  });

  it('spreads the data over the period: events in (time, id) order by profiles that existed, created/updated/joined over time', () => {
    const a = account(OPTIONS);
    const end = Date.parse(END);
    const start = end - Math.round(2 * 365.25 * 86_400_000);
    const g = a.generated!;
    const quarters = [0, 0, 0, 0, 0, 0, 0, 0];
    const bad: number[] = [];
    for (let i = 0; i < g.length; i++) {
      const t = g.key(i);
      if (t < start || t >= end || (i > 0 && !(t > g.key(i - 1) || (t === g.key(i - 1) && g.id(i) > g.id(i - 1))))) bad.push(i);
      quarters[Math.floor(((t - start) / (end - start)) * 8)]!++;
    }
    expect(bad).toEqual([]);
    // every quarter of both years has events, more of them recently
    expect(Math.min(...quarters)).toBeGreaterThan(0);
    expect(quarters[7]!).toBeGreaterThan(quarters[0]!);
    const e = g.item(1234);
    const p = a.profilesById.get(e.profileId)!;
    expect(p.created).toBeLessThanOrEqual(e.time + 1000);
    expect(e.uniqueId).toMatch(/\S/);
    expect(g.position(e.id)).toBe(1234);
    const profiles = a.profileOrder;
    expect(profiles[0]!.created).toBe(start);
    expect(profiles.at(-1)!.created).toBeGreaterThan(end - 60 * 86_400_000);
    expect(profiles.filter((x) => x.updated > x.created).length).toBeGreaterThan(1000);
    expect(profiles.filter((x) => x.subscriptions?.email?.consent === 'SUBSCRIBED').length).toBeGreaterThan(800);
    expect(profiles.filter((x) => x.lastEventDate !== null).length).toBeGreaterThan(2000);
    const joined = [...[...a.lists.values()][0]!.members.entries()];
    expect(joined.filter(([, at], k) => k > 0 && at < joined[k - 1]![1])).toEqual([]);
    expect(joined.filter(([id, at]) => at < a.profilesById.get(id)!.created)).toEqual([]);
  });

  it('gives each metric realistic properties and values', () => {
    const a = account(OPTIONS);
    const g = a.generated!;
    const byName = new Map([...a.metricsById.values()].map((m) => [m.id, m.name]));
    const seen = new Map<string, ReturnType<typeof g.item>>();
    for (let i = 0; i < 200; i++) seen.set(byName.get(g.item(i).metricId)!, g.item(i));
    expect(seen.get('Placed Order')).toMatchObject({ value: expect.any(Number), valueCurrency: 'USD', properties: { OrderId: expect.stringMatching(/^ORD-/), Items: expect.any(Array) } });
    expect(seen.get('Ordered Product')).toMatchObject({ value: expect.any(Number), properties: { ProductName: expect.any(String), Quantity: expect.any(Number) } });
    expect(seen.get('Viewed Product')!.properties).toMatchObject({ ProductID: expect.any(String), URL: expect.stringMatching(/^https:/) });
    expect(seen.get('Active on Site')!.properties).toMatchObject({ page: expect.stringMatching(/^https:/) });
  });

  it('parses --generate text and refuses unknown keys, bad numbers and more members than profiles', () => {
    expect(parseGenerate('profiles=10,events=20,members=5,years=1.5,seed=3,end=2025-06-01T00:00:00Z')).toEqual({ profiles: 10, events: 20, members: 5, years: 1.5, seed: 3, end: '2025-06-01T00:00:00Z' });
    expect(parseGenerate('{"events":7}')).toEqual({ events: 7 });
    expect(() => parseGenerate('profile=10')).toThrow(/unknown key profile/);
    expect(() => parseGenerate('events=ten')).toThrow(/events/);
    expect(() => parseGenerate('events')).toThrow(/key=value/);
    expect(() => checkGenerate({ profiles: 5, members: 6 })).toThrow(/members must not exceed profiles/);
  });
});

describe('latency', () => {
  it('is fixed, or drawn uniformly from a range, the same draws for the same seed', () => {
    expect(parseLatency('250')).toBe(250);
    expect(parseLatency('100-400')).toEqual({ min: 100, max: 400 });
    expect(() => parseLatency('400-100')).toThrow(/minimum/);
    expect(() => parseLatency('fast')).toThrow(/milliseconds/);
    expect(new Latency(250).next()).toBe(250);
    const a = new Latency({ min: 100, max: 400 }, 5);
    const b = new Latency({ min: 100, max: 400 }, 5);
    const draws = Array.from({ length: 50 }, () => a.next());
    expect(Array.from({ length: 50 }, () => b.next())).toEqual(draws);
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(100);
    expect(Math.max(...draws)).toBeLessThanOrEqual(400);
    expect(new Set(draws).size).toBeGreaterThan(40);
    expect(() => new Latency(-1)).toThrow(/latency/);
  });
});
