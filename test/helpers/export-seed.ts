import { expect } from 'vitest';
import { bulkEventsBody, client } from '../unit/emulator/client.js';

/**
 * Seeding an emulator for export tests through its API: profiles created in batches at successive emulator times
 * (so `updated`/`created` spread), events of three metrics spread over days with some sharing a second, and a
 * reader of everything the emulator holds (the truth an export is compared with).
 */

export const METRICS = ['Placed Order', 'Viewed Product', 'Opened Email'] as const;

type Call = ReturnType<typeof client>;

export interface SeededEvent {
  id: string;
  datetime: string;
  metric: string;
  email: string;
  value: number;
}

/**
 * `count` events for profiles `e<k>@example.com` (k < `profiles`), the i-th at `start + i * stepMs` except that
 * every 5th shares the previous one's time; metric `METRICS[i % 3]`, `properties.value = i + offset`. `setNow`
 * moves the emulator clock before each batch (profiles are created at that time).
 */
export async function seedEvents(
  call: Call,
  options: { count: number; profiles: number; start: number; stepMs: number; offset?: number; setNow?: (batch: number) => void },
): Promise<void> {
  const offset = options.offset ?? 0;
  for (let from = 0, batch = 0; from < options.count; from += 1000, batch++) {
    options.setNow?.(batch);
    const entries = [];
    for (let i = from; i < Math.min(options.count, from + 1000); i++) {
      const k = i + offset;
      const at = options.start + (i % 5 === 4 ? i - 1 : i) * options.stepMs;
      entries.push({
        profile: { email: `e${k % options.profiles}@example.com`, first_name: `First ${k % options.profiles}` },
        metric: METRICS[k % 3],
        events: [{ properties: { value: k }, time: new Date(at).toISOString(), unique_id: `u${k}` }],
      });
    }
    const r = await call('POST', '/api/event-bulk-create-jobs', bulkEventsBody(entries));
    expect(r.status, r.text).toBe(202);
  }
}

/** Every resource of a collection, following `links.next` (path relative to the emulator's origin). */
export async function readAll(call: Call, first: string): Promise<{ data: any[]; included: any[] }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const data = [];
  const included = [];
  let path: string | undefined = first;
  while (path) {
    const r = await call('GET', path);
    expect(r.status, r.text).toBe(200);
    data.push(...r.json.data);
    included.push(...(r.json.included ?? []));
    const next = r.json.links?.next as string | undefined;
    path = next ? new URL(next).pathname + new URL(next).search : undefined;
  }
  return { data, included };
}

/** The events the emulator holds, with their metric name and profile email. */
export async function allEvents(call: Call): Promise<SeededEvent[]> {
  const { data, included } = await readAll(call, '/api/events?page[size]=1000&include=profile,metric');
  const byKey = new Map(included.map((r) => [`${r.type}:${r.id}`, r]));
  return data.map((e) => ({
    id: e.id,
    datetime: e.attributes.datetime,
    metric: byKey.get(`metric:${e.relationships.metric.data.id}`)?.attributes.name,
    email: byKey.get(`profile:${e.relationships.profile.data.id}`)?.attributes.email,
    value: e.attributes.event_properties.value,
  }));
}
