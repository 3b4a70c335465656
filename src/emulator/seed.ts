/**
 * Seed data applied to every new account: lists and segments with member emails, profiles, and the catalog (metrics,
 * templates, campaigns, flows; src/emulator/catalog-seed.ts).
 */
import { z } from 'zod';
import { generatedCatalog } from './catalog-generate.js';
import { applyCatalogSeed, CATALOG_SEED_SHAPE, duplicateCatalogId, type CatalogSeed } from './catalog-seed.js';
import { applyGenerated, checkGenerate, generateData, generateSchema, type GenerateOptions } from './generate.js';
import { fileProblem, parseOptionFile, readOptionFile } from './option-files.js';
import type { Account } from './state.js';
import { isValidEmail, validateProfileAttributes } from './validate.js';

export interface SeedGroup {
  /** Fixed id (6 chars recommended); generated when absent. */
  id?: string;
  name: string;
  /** Member emails (profiles are created when missing). */
  members?: string[];
}

export interface SeedFile extends CatalogSeed {
  lists?: SeedGroup[];
  segments?: SeedGroup[];
  /** Profile attributes (Klaviyo wire format: email, phone_number, first_name, properties…). */
  profiles?: Record<string, unknown>[];
  /** Generated data at volume (src/emulator/generate.ts), added before the rest of the seed. */
  generate?: GenerateOptions;
}

export function applySeed(account: Account, seed: SeedFile, now: number): void {
  const mode = { clearNulls: false, strictConflicts: false };
  if (seed.generate) applyGenerated(account, generateData(seed.generate, now));
  for (const attrs of seed.profiles ?? []) {
    const r = validateProfileAttributes(attrs, '/profiles');
    if (!r.ok) throw new Error(`Seed profile invalid: ${r.errors.map((e) => e.detail).join('; ')}`); // checked by loadSeedFile
    account.upsertProfile(r.value, mode, now);
  }
  for (const kind of ['list', 'segment'] as const) {
    for (const g of (kind === 'list' ? seed.lists : seed.segments) ?? []) {
      const group = account.createGroup(kind, g.name, now, g.id);
      for (const email of g.members ?? []) {
        const { profile } = account.upsertProfile({ strings: { email } }, mode, now);
        account.addMember(group, profile.id, now);
      }
    }
  }
  applyCatalogSeed(account, seed, now);
  const catalog = seed.generate ? generatedCatalog(seed.generate, now) : null;
  if (catalog) applyCatalogSeed(account, catalog, now);
}

const seedGroup = z.strictObject({
  id: z.string().min(1).optional(),
  name: z.string(),
  members: z.array(z.string().refine(isValidEmail, 'Expected an email address')).optional(),
});
const seedSchema = z.strictObject({
  lists: z.array(seedGroup).optional(),
  segments: z.array(seedGroup).optional(),
  profiles: z.array(z.record(z.string(), z.unknown())).optional(),
  ...CATALOG_SEED_SHAPE,
  generate: generateSchema.optional(),
});

/**
 * Read and check a seed file before the emulator starts: JSON of `SeedFile`'s shape, member emails valid, every
 * profile valid as a bulk-import profile. Throws a `USAGE` error naming the first problem's place (a JSON pointer),
 * never the file's values.
 */
export function loadSeedFile(file: string): SeedFile {
  const value = parseOptionFile('seed file', file, readOptionFile('seed file', file, false)!);
  const r = seedSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const at = issue.path.length > 0 ? `at /${issue.path.join('/')}` : 'at its top level';
    throw fileProblem('seed file', file, `is not a seed file (${at}: ${issue.code === 'unrecognized_keys' ? `unknown key ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}` : issue.message}).`);
  }
  if (r.data.generate) {
    try {
      checkGenerate(r.data.generate);
    } catch (e) {
      throw fileProblem('seed file', file, `has bad generate options (at /generate: ${(e as Error).message})`);
    }
  }
  (r.data.profiles ?? []).forEach((attrs, i) => {
    const v = validateProfileAttributes(attrs, `/profiles/${i}`);
    if (!v.ok) {
      const first = v.errors[0]!;
      const at = first.source && 'pointer' in first.source ? first.source.pointer : `/profiles/${i}`;
      throw fileProblem('seed file', file, `has an invalid profile (at ${at}: ${first.detail})`);
    }
  });
  const duplicate = duplicateCatalogId(r.data as SeedFile);
  if (duplicate) throw fileProblem('seed file', file, `repeats an id (at ${duplicate})`);
  return r.data as SeedFile;
}
