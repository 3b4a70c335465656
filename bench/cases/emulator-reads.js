// Emulator reads at volume (issue 13: "a seed generator for realistic volumes … that starts in seconds"; reads that
// scale). `klaviyo-etl emulator --generate …` runs as a child process; this process times how long it takes to
// listen and to answer its first request (the account is generated then), then reads pages of GET /api/events,
// GET /api/profiles (sort=updated) and list members at the start and deep in the data: with indexed reads a page
// deep in the data costs about what one at the start does. Peak RSS of the emulator from /proc/<pid>/status.
import { readFileSync } from 'node:fs';
import { API_KEY, startEmulatorProcess } from '../lib.js';

export const description = 'generated emulator data: time to listen and to serve the first request; page time at the start and deep in the data (events, profiles, members)';

const HEADERS = { authorization: `Klaviyo-API-Key ${API_KEY}`, revision: '2026-07-15', accept: 'application/vnd.api+json' };

async function get(url) {
  const res = await fetch(url, { headers: HEADERS });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`${url} → ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  return body;
}

/** Median ms of `n` reads of `url` (following nothing). */
async function pageMs(url, n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await get(url);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return Math.round(times[Math.floor(n / 2)] * 10) / 10;
}

/** Events, profiles and members read for `pages` pages following links.next; rows/s. */
async function walk(url, pages) {
  let rows = 0;
  let next = url;
  const t = performance.now();
  for (let p = 0; p < pages && next; p++) {
    const body = await get(next);
    rows += body.data.length;
    next = body.links.next;
  }
  return Math.round((rows * 1000) / (performance.now() - t));
}

function peakRssMb(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : null;
}

export async function run(ctx) {
  const gen = ctx.quick ? { profiles: 50_000, events: 250_000, members: 50_000 } : { profiles: 200_000, events: 1_000_000, members: 200_000 };
  const spec = `profiles=${gen.profiles},events=${gen.events},members=${gen.members},years=2,seed=1,end=2026-01-01T00:00:00Z`;
  const t0 = performance.now();
  const emu = await startEmulatorProcess({ limits: 'off', args: ['--generate', spec] });
  const listenMs = Math.round(performance.now() - t0);
  try {
    const t1 = performance.now();
    const lists = await get(`${emu.url}/api/lists`);
    const firstRequestMs = Math.round(performance.now() - t1);
    const listId = lists.data[0].id;
    ctx.log(`--generate ${spec}: listening after ${listenMs} ms, first request (account generated) ${firstRequestMs} ms`);
    const ev = (filter) => `${emu.url}/api/events?page[size]=1000&sort=datetime&filter=${encodeURIComponent(filter)}`;
    const early = await pageMs(ev('greater-or-equal(datetime,2024-01-02T00:00:00Z)'), 9);
    const deep = await pageMs(ev('greater-or-equal(datetime,2025-12-01T00:00:00Z)'), 9);
    const pr = (filter) => `${emu.url}/api/profiles?page[size]=100&sort=updated&filter=${encodeURIComponent(filter)}`;
    await get(pr('greater-than(updated,2024-01-02T00:00:00Z)')); // builds the updated index once
    const profEarly = await pageMs(pr('greater-than(updated,2024-01-02T00:00:00Z)'), 9);
    const profDeep = await pageMs(pr('greater-than(updated,2025-12-01T00:00:00Z)'), 9);
    const mem = (filter) => `${emu.url}/api/lists/${listId}/profiles?page[size]=100&filter=${encodeURIComponent(filter)}`;
    const memEarly = await pageMs(mem('greater-or-equal(joined_group_at,2024-01-02T00:00:00Z)'), 9);
    const memDeep = await pageMs(mem('greater-or-equal(joined_group_at,2025-12-01T00:00:00Z)'), 9);
    const eventsPerSecond = await walk(`${emu.url}/api/events?page[size]=1000`, ctx.quick ? 20 : 50);
    const membersPerSecond = await walk(`${emu.url}/api/lists/${listId}/profiles?page[size]=100`, ctx.quick ? 50 : 100);
    const rss = peakRssMb(emu.pid);
    const state = await emu.state(API_KEY);
    ctx.log(`events page of 1000: ${early} ms at the start, ${deep} ms deep; profiles (sort=updated) ${profEarly} / ${profDeep} ms; members ${memEarly} / ${memDeep} ms; ${eventsPerSecond} events/s, ${membersPerSecond} members/s on one connection; peak RSS ${rss} MB`);
    const ratio = (a, b) => Math.round((b / a) * 100) / 100;
    return {
      config: { generate: spec, emulator: 'child process, --limits off', client: 'this process, one request at a time (fetch)' },
      metrics: {
        listenMs,
        firstRequestMs,
        eventsPageMs: { start: early, deep },
        profilesPageMs: { start: profEarly, deep: profDeep },
        membersPageMs: { start: memEarly, deep: memDeep },
        eventsPerSecond,
        membersPerSecond,
        peakRssMb: rss,
        held: { profiles: state.profiles, events: state.events },
      },
      targets: [
        { name: 'generated account ready (listening + first request) within 15 s', target: '≤ 15000 ms', value: listenMs + firstRequestMs, met: listenMs + firstRequestMs <= 15_000 },
        { name: 'an events page deep in the data costs at most twice one at the start, + 5 ms of noise (indexed reads)', target: '≤ 2× + 5 ms', value: ratio(early, deep), met: deep <= 2 * early + 5 },
        { name: 'a profiles page (sort=updated) deep in the data costs at most twice one at the start, + 5 ms', target: '≤ 2× + 5 ms', value: ratio(profEarly, profDeep), met: profDeep <= 2 * profEarly + 5 },
        { name: 'a members page deep in the data costs at most twice one at the start, + 5 ms', target: '≤ 2× + 5 ms', value: ratio(memEarly, memDeep), met: memDeep <= 2 * memEarly + 5 },
        { name: 'the emulator holds what was asked for', target: `${gen.profiles} profiles, ${gen.events} events`, value: `${state.profiles}, ${state.events}`, met: state.profiles === gen.profiles && state.events === gen.events },
      ],
      notes: ['page times are medians of 9 reads of the same page, client and emulator on the same 2-core machine'],
    };
  } finally {
    await emu.close();
  }
}
