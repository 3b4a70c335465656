import { describe, expect, it } from 'vitest';
import { IdGenerator, ULID_PATTERN } from '../../../src/emulator/ids.js';
import { Account, EventRecord } from '../../../src/emulator/state.js';
import type { EventInput } from '../../../src/emulator/validate.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0, 250);
const T = Date.UTC(2024, 0, 1, 10, 0, 0);

function event(metricName: string, uniqueId?: string, time = T): EventInput {
  const e: EventInput = { metricName, properties: { k: 1 }, time, backfill: false };
  if (uniqueId !== undefined) e.uniqueId = uniqueId;
  return e;
}

function account(): Account {
  return new Account('acct', new IdGenerator());
}

describe('IdGenerator.reserve', () => {
  it('hands out the same monotonic ULIDs as ulid(), formatted on demand', () => {
    const ids = new IdGenerator();
    const refs = Array.from({ length: 200 }, (_, i) => {
      const block = ids.reserve(i < 100 ? 1_700_000_000_000 : 1_700_000_000_000 + i);
      return { block, k: block.size - 1 };
    });
    const list = refs.map(({ block, k }) => block.format(k));
    list.push(ids.ulid(1_600_000_000_000)); // an earlier time keeps the last time and still sorts after
    for (const id of list) expect(id).toMatch(ULID_PATTERN);
    expect([...list].sort()).toEqual(list);
    expect(new Set(list).size).toBe(list.length);
    expect(list[0]!.slice(0, 10)).not.toBe(list[150]!.slice(0, 10)); // a later time starts a new time prefix
  });
});

describe('Account events', () => {
  it('dedups by profile + metric + unique_id (the same unique_id elsewhere is another event), else by second', () => {
    const a = account();
    const p1 = a.createProfile({ strings: { email: 'a@example.com' } }, NOW);
    const p2 = a.createProfile({ strings: { email: 'b@example.com' } }, NOW);
    expect(a.addEvent(p1, event('Placed Order', 'o-1'), NOW)).toBe(true);
    expect(a.addEvent(p1, event('Placed Order', 'o-1', T + 5000), NOW), 'same key').toBe(false);
    expect(a.addEvent(p2, event('Placed Order', 'o-1'), NOW), 'other profile').toBe(true);
    expect(a.addEvent(p1, event('Refunded', 'o-1'), NOW), 'other metric').toBe(true);
    expect(a.addEvent(p2, event('Refunded', 'o-1'), NOW), 'third holder of o-1').toBe(true);
    expect(a.addEvent(p2, event('Refunded', 'o-1'), NOW)).toBe(false);
    // validated event times are truncated to the second
    expect(a.addEvent(p1, event('Viewed', undefined, T), NOW)).toBe(true);
    expect(a.addEvent(p1, event('Viewed', undefined, T), NOW), 'same second').toBe(false);
    expect(a.addEvent(p1, event('Viewed', undefined, T + 1000), NOW)).toBe(true);
    expect(a.events).toHaveLength(6);
    expect(a.duplicateEventsIgnored).toBe(3);
    expect(a.summary().eventsByMetric).toEqual({ 'Placed Order': 2, Refunded: 2, Viewed: 2 });
    expect(p1.lastEventDate).toBe(T + 1000);
  });

  it('dedups the same way once a profile has many events', () => {
    const a = account();
    const p = a.createProfile({ strings: { email: 'many@example.com' } }, NOW);
    const q = a.createProfile({ strings: { email: 'other@example.com' } }, NOW);
    for (const metric of ['A', 'B']) for (let i = 0; i < 40; i++) expect(a.addEvent(p, event(metric, `u${i}`), NOW)).toBe(true);
    for (let i = 0; i < 40; i++) expect(a.addEvent(p, event('C', undefined, T + i * 1000), NOW)).toBe(true);
    expect(a.addEvent(q, event('A', 'u1'), NOW), 'other profile').toBe(true);
    for (const metric of ['A', 'B']) for (let i = 0; i < 40; i += 7) expect(a.addEvent(p, event(metric, `u${i}`, T + 9000), NOW)).toBe(false);
    expect(a.addEvent(p, event('C', undefined, T + 39_000), NOW)).toBe(false);
    expect(a.addEvent(p, event('C', 'u3'), NOW), 'a unique_id under a third metric').toBe(true);
    expect(a.addEvent(p, event('A', undefined, T), NOW), 'no unique_id: A at T is new').toBe(true);
    expect(a.addEvent(p, event('A', undefined, T), NOW)).toBe(false);
    const b = Account.fromJSON(JSON.parse(JSON.stringify(a.toJSON())) as ReturnType<Account['toJSON']>, new IdGenerator());
    const p2 = b.profilesById.get(p.id)!;
    expect(b.addEvent(p2, event('B', 'u39'), NOW)).toBe(false);
    expect(b.addEvent(p2, event('C', undefined, T + 5000), NOW)).toBe(false);
    expect(b.addEvent(p2, event('B', 'u40'), NOW)).toBe(true);
    expect(b.events).toHaveLength(a.events.length + 1);
  });

  it('ids sort in creation order; the id index is built on first lookup and kept current', () => {
    const a = account();
    const p = a.createProfile({ strings: { email: 'a@example.com' } }, NOW);
    for (let i = 0; i < 5; i++) a.addEvent(p, event('M', `u${i}`, T - i * 1000), NOW);
    const ids = a.events.map((e) => e.id);
    for (const id of ids) expect(id).toMatch(ULID_PATTERN);
    expect([...ids].sort()).toEqual(ids);
    expect(a.eventsById.get(ids[3]!)).toBe(a.events[3]);
    a.addEvent(p, event('M', 'later'), NOW);
    const last = a.events[a.events.length - 1]!;
    expect(a.eventsById.get(last.id)).toBe(last);
    expect(last.id > ids[4]!).toBe(true);
    expect(last.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(last.uuid).toBe(last.uuid); // drawn once
    expect(last.time).toBe(T);
  });

  it('state round trip keeps ids, uuids, fields and dedup keys', () => {
    const a = account();
    const p = a.createProfile({ strings: { email: 'a@example.com' } }, NOW);
    a.addEvent(p, { ...event('Placed Order', 'o-1'), value: 9.5, valueCurrency: 'USD', backfill: true }, NOW);
    a.addEvent(p, event('Viewed', undefined, T + 2000), NOW);
    const saved = JSON.parse(JSON.stringify(a.toJSON())) as ReturnType<Account['toJSON']>;
    expect(saved.events[0]).toEqual({
      id: a.events[0]!.id,
      uuid: a.events[0]!.uuid,
      metricId: a.metricsByName.get('Placed Order')!.id,
      profileId: p.id,
      time: T,
      properties: { k: 1 },
      backfill: true,
      received: NOW,
      value: 9.5,
      valueCurrency: 'USD',
      uniqueId: 'o-1',
    });
    expect(Object.keys(saved.events[1]!)).not.toContain('uniqueId');
    expect(saved.eventKeys).toEqual([Account.eventKey(p.id, 'Placed Order', { uniqueId: 'o-1', time: T }), Account.eventKey(p.id, 'Viewed', { time: T + 2000 })]);
    const b = Account.fromJSON(saved, new IdGenerator());
    expect(b.events[0]).toBeInstanceOf(EventRecord);
    expect(b.events.map((e) => e.toJSON())).toEqual(saved.events);
    expect(b.eventsById.get(saved.events[1]!.id)).toBe(b.events[1]);
    const q = b.profilesById.get(p.id)!;
    expect(b.addEvent(q, event('Placed Order', 'o-1'), NOW)).toBe(false);
    expect(b.addEvent(q, event('Viewed', undefined, T + 2000), NOW)).toBe(false);
    expect(b.addEvent(q, event('Viewed', undefined, T + 3000), NOW)).toBe(true);
  });
});
