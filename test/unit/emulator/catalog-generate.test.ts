/**
 * The catalog generator (src/emulator/catalog-generate.ts): the same counts and seed give the same catalog (ids
 * included), another seed another; the counts, channels and statuses are what was asked for; every generated item
 * passes the seed file's schema; applied to an account it yields the campaigns, messages, flows, actions and
 * templates it names.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateCatalog } from '../../../src/emulator/catalog-generate.js';
import { applyCatalogSeed } from '../../../src/emulator/catalog-seed.js';
import { IdGenerator } from '../../../src/emulator/ids.js';
import { applySeed, loadSeedFile } from '../../../src/emulator/seed.js';
import { Account } from '../../../src/emulator/state.js';

describe('generateCatalog', () => {
  it('is deterministic from its seed and gives the counts asked for', () => {
    const a = generateCatalog({ campaigns: 50, flows: 9, templates: 7 }, { seed: 42 });
    expect(generateCatalog({ campaigns: 50, flows: 9, templates: 7 }, { seed: 42 })).toEqual(a);
    expect(generateCatalog({ campaigns: 50, flows: 9, templates: 7 }, { seed: 43 }).campaigns!.map((c) => c.id)).not.toEqual(a.campaigns!.map((c) => c.id));
    expect([a.campaigns!.length, a.flows!.length, a.templates!.length]).toEqual([50, 9, 7]);
    expect(new Set(a.campaigns!.map((c) => c.channel))).toEqual(new Set(['email', 'sms', 'mobile_push']));
    expect(new Set(a.campaigns!.map((c) => c.id)).size).toBe(50);
    const end = Date.UTC(2026, 0, 1);
    for (const c of a.campaigns!) {
      const created = Date.parse(c.created_at!);
      expect(created).toBeGreaterThanOrEqual(end - 2 * 365 * 86_400_000);
      expect(created).toBeLessThan(end);
      expect(c.status === 'Draft').toBe(c.send_time === null);
    }
    expect(a.flows!.every((f) => f.actions!.some((x) => x.type.startsWith('send-')))).toBe(true);
    expect(generateCatalog({ templates: 3 })).toEqual({ templates: expect.any(Array), campaigns: [] });
  });

  it('passes the seed file schema and applies to an account', () => {
    const catalog = generateCatalog({ campaigns: 20, flows: 4, templates: 5 }, { seed: 9 });
    const file = join(mkdtempSync(join(tmpdir(), 'catalog-gen-')), 'seed.json');
    writeFileSync(file, JSON.stringify(catalog));
    const seed = loadSeedFile(file);
    const account = new Account('k', new IdGenerator());
    applyCatalogSeed(account, seed, Date.UTC(2026, 0, 1));
    const cat = account.catalog;
    expect(cat.campaigns.size).toBe(20);
    expect(cat.campaignMessages.size).toBe(20);
    expect(cat.templates.size).toBe(5);
    expect([...cat.flows.keys()]).toEqual(catalog.flows!.map((f) => f.id));
    expect(cat.flowActions.size).toBe(catalog.flows!.reduce((n, f) => n + f.actions!.length, 0));
    expect(cat.flowMessages.size).toBe(catalog.flows!.reduce((n, f) => n + f.actions!.filter((x) => x.messages).length, 0));
    expect(account.metricsByName.has('Placed Order')).toBe(true);
  });

  it('a seed file that repeats a catalog id is refused, naming the place of the repeat', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'catalog-dup-')), 'seed.json');
    const flow = (id: string) => ({ name: 'F', actions: [{ id, type: 'time-delay' }] });
    writeFileSync(file, JSON.stringify({ campaigns: [{ id: 'C1', name: 'a', channel: 'email' }], flows: [flow('7'), flow('8'), flow('7')] }));
    expect(() => loadSeedFile(file)).toThrow(/repeats an id \(at \/flows\/2\/actions\/0\/id\)/);
    writeFileSync(file, JSON.stringify({ campaigns: [{ id: 'C1', name: 'a', channel: 'email' }, { id: 'C1', name: 'b', channel: 'sms' }] }));
    expect(() => loadSeedFile(file)).toThrow(/at \/campaigns\/1\/id/);
  });

  it("comes with the seed generator's options (generate: campaigns, flows, templates), flow triggers naming the generated metrics", () => {
    const account = new Account('k', new IdGenerator());
    const now = Date.UTC(2026, 5, 1, 12);
    applySeed(account, { generate: { profiles: 20, events: 50, seed: 4, campaigns: 6, flows: 7, templates: 2 } }, now);
    const cat = account.catalog;
    expect([cat.campaigns.size, cat.flows.size, cat.templates.size]).toEqual([6, 7, 2]);
    expect(account.profilesById.size).toBe(20);
    const expected = generateCatalog({ campaigns: 6, flows: 7, templates: 2 }, { seed: 4, end: Date.UTC(2026, 5, 1) });
    expect([...cat.campaigns.keys()]).toEqual(expected.campaigns!.map((c) => c.id));
    const placedOrder = account.metricsByName.get('Placed Order')!;
    const cart = [...cat.flows.values()].find((f) => f.name === 'Post-Purchase Follow-up')!;
    expect(cart.triggerId).toBe(placedOrder.id);
    expect(account.metricsByName.get('Placed Order')!.count).toBeGreaterThan(0);
  });
});
