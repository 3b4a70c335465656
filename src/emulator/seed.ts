/** Seed data applied to every new account: lists and segments with member emails, and profiles. */
import type { Account } from './state.js';
import { validateProfileAttributes } from './validate.js';

export interface SeedGroup {
  /** Fixed id (6 chars recommended); generated when absent. */
  id?: string;
  name: string;
  /** Member emails (profiles are created when missing). */
  members?: string[];
}

export interface SeedFile {
  lists?: SeedGroup[];
  segments?: SeedGroup[];
  /** Profile attributes (Klaviyo wire format: email, phone_number, first_name, properties…). */
  profiles?: Record<string, unknown>[];
}

export function applySeed(account: Account, seed: SeedFile, now: number): void {
  const mode = { clearNulls: false, strictConflicts: false };
  for (const attrs of seed.profiles ?? []) {
    const r = validateProfileAttributes(attrs, '/profiles');
    if (!r.ok) throw new Error(`Seed profile invalid: ${r.errors.map((e) => e.detail).join('; ')}`);
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
}
