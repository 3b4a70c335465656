/**
 * Time-ordered runs of an account's events for `GET /api/events`: the stored events (all, per metric, per profile)
 * as sorted runs kept up to date as events arrive (events are only ever appended: the new tail is sorted and
 * merged on the next read), beside the generated events' own runs (src/emulator/generated-events.ts).
 */
import type { Account, EventRecord } from './state.js';
import { ArrayRun, sortedRun, type SortedRun } from './time-index.js';

const keyOf = (e: EventRecord) => e.time;
const idOf = (e: EventRecord) => e.id;

/** A sorted run of the events matching a predicate, covering `account.events[0, covered)`. */
interface TailIndex {
  covered: number;
  run: ArrayRun<EventRecord>;
}

const indexes = new WeakMap<Account, Map<string, TailIndex>>();

/** Bring `index` up to `events.length`: sort the new events matching `keep` and merge them in. */
function extend(index: TailIndex, events: readonly EventRecord[], keep: (e: EventRecord) => boolean): ArrayRun<EventRecord> {
  if (index.covered === events.length) return index.run;
  const fresh: EventRecord[] = [];
  for (let i = index.covered; i < events.length; i++) if (keep(events[i]!)) fresh.push(events[i]!);
  index.covered = events.length;
  if (fresh.length === 0) return index.run;
  const add = sortedRun(fresh, keyOf, idOf);
  const old = index.run;
  const keys: number[] = [];
  const items: EventRecord[] = [];
  let j = 0;
  for (let i = 0; i < old.length; i++) {
    const k = old.keys[i]!;
    while (j < add.length && (add.keys[j]! < k || (add.keys[j] === k && add.id(j) < old.id(i)))) {
      keys.push(add.keys[j]!);
      items.push(add.items[j++]!);
    }
    keys.push(k);
    items.push(old.items[i]!);
  }
  for (; j < add.length; j++) {
    keys.push(add.keys[j]!);
    items.push(add.items[j]!);
  }
  index.run = new ArrayRun(keys, items, idOf);
  return index.run;
}

/** The stored events matching `keep` (named `name` for caching) as a sorted run. */
function storedRun(account: Account, name: string, keep: (e: EventRecord) => boolean): SortedRun<EventRecord> {
  let byName = indexes.get(account);
  if (!byName) indexes.set(account, (byName = new Map()));
  let index = byName.get(name);
  if (!index) byName.set(name, (index = { covered: 0, run: new ArrayRun<EventRecord>([], [], idOf) }));
  return extend(index, account.events, keep);
}

/**
 * The sorted runs holding the events of `metricId` and/or `profileId` (all events when neither is given), and the
 * condition the runs do not encode (both given: the profile's runs, checked for the metric).
 */
export function eventRuns(account: Account, metricId: string | null, profileId: string | null): { runs: SortedRun<EventRecord>[]; accept?: (e: EventRecord) => boolean } {
  const gen = account.generated;
  const runs: SortedRun<EventRecord>[] = [];
  if (profileId !== null) {
    // a profile's stored events are few: sorted on each read
    const mine = account.events.length === 0 ? [] : profileEvents(account, profileId);
    runs.push(sortedRun(mine, keyOf, idOf));
    if (gen) runs.push(gen.profileRun(profileId));
    return metricId === null ? { runs } : { runs, accept: (e) => e.metricId === metricId };
  }
  if (metricId !== null) {
    runs.push(storedRun(account, `m:${metricId}`, (e) => e.metricId === metricId));
    if (gen) runs.push(gen.metricRun(metricId));
    return { runs };
  }
  runs.push(storedRun(account, '*', () => true));
  if (gen) runs.push(gen);
  return { runs };
}

/** The stored events of a profile (from the profile's dedup index). */
function profileEvents(account: Account, profileId: string): EventRecord[] {
  const p = account.profilesById.get(profileId);
  if (!p) return [];
  return account.eventsOf(p);
}
