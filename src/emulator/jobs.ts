/** Asynchronous processing of bulk profile import jobs: queued → processing → complete. */
import { isoMicros } from './http.js';
import { pickFields } from './query.js';
import type { Account, ImportJobRecord } from './state.js';
import { ApiError } from './http.js';
import { hasIdentifier, isPlainObject, MAX_PROFILE_BYTES, readPatchProperties, validateProfileAttributes } from './validate.js';

const JOB_TTL_MS = 7 * 86_400_000;

/**
 * Process up to `budget` profiles from the FIFO `queue` (mutated: finished jobs are removed). A job stays queued
 * until `delayMs` after its creation (and the jobs behind it wait). Returns the unused budget (fractional budgets
 * carry over between ticks).
 */
export function processJobs(queue: { account: Account; job: ImportJobRecord }[], budget: number, now: number, delayMs = 0): number {
  while (queue.length > 0) {
    const { account, job } = queue[0]!;
    if (job.status === 'queued') {
      if (now < job.createdAt + delayMs) return budget;
      job.status = 'processing';
      job.startedAt = now;
    }
    while (budget >= 1 && job.cursor < job.pending.length) {
      processGuarded(account, job, job.cursor, now);
      job.cursor++;
      budget--;
    }
    if (job.cursor < job.pending.length) return budget;
    job.status = 'complete';
    job.completedAt = now;
    job.expiresAt = now + JOB_TTL_MS;
    job.pending = [];
    queue.shift();
  }
  return 0;
}

/**
 * `processOne`, with any failure (an emulator bug: validation let through what cannot be applied) turned into an
 * import-error of that profile and printed to stderr: it runs in a timer, where a throw would end the process.
 */
function processGuarded(account: Account, job: ImportJobRecord, i: number, now: number): void {
  try {
    processOne(account, job, i, now);
  } catch (err) {
    console.error(`emulator: processing profile ${i} of bulk import job ${job.id} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    const pointer = `/data/attributes/profiles/data/${i}`;
    job.errors.push({ id: account.ids.ulid(now), code: 'error', title: 'A server error occurred.', detail: 'Internal emulator error while importing this profile.', source: { pointer }, original_payload: {} });
    job.failedCount++;
  }
}

function processOne(account: Account, job: ImportJobRecord, i: number, now: number): void {
  const raw = job.pending[i];
  const base = `/data/attributes/profiles/data/${i}/attributes`;
  const item = isPlainObject(raw) ? raw : {};
  const attrs = item.attributes;
  const fail = (detail: string, pointer: string) => {
    job.errors.push({
      id: account.ids.ulid(now),
      code: 'invalid',
      title: 'Invalid input.',
      detail,
      source: { pointer },
      original_payload: isPlainObject(attrs) ? attrs : raw,
    });
    job.failedCount++;
  };
  const r = validateProfileAttributes(attrs, base);
  if (!r.ok) {
    const first = r.errors[0]!;
    fail(first.detail, first.source && 'pointer' in first.source ? first.source.pointer : base);
    return;
  }
  const id = typeof item.id === 'string' && item.id ? item.id : undefined;
  if (!hasIdentifier(r.value, id)) {
    fail('A profile must have at least one of email, phone_number, external_id or anonymous_id.', base);
    return;
  }
  if (JSON.stringify(attrs).length > MAX_PROFILE_BYTES) {
    fail('Profile payload exceeds the 100 KB limit.', base);
    return;
  }
  let patch: ReturnType<typeof readPatchProperties> = null;
  try {
    patch = readPatchProperties(item.meta, `/data/attributes/profiles/data/${i}/meta`);
  } catch (e) {
    const first = e instanceof ApiError ? e.errors[0] : undefined;
    fail(first?.detail ?? 'Invalid meta.', first?.source && 'pointer' in first.source ? first.source.pointer : `/data/attributes/profiles/data/${i}/meta`);
    return;
  }
  let profileId: string;
  const byId = id ? account.profilesById.get(id) : undefined;
  if (id && !byId) {
    fail(`A profile with id ${id} does not exist.`, `/data/attributes/profiles/data/${i}/id`);
    return;
  }
  if (byId) {
    account.applyProfile(byId, r.value, { clearNulls: false, strictConflicts: false }, now);
    profileId = byId.id;
  } else {
    profileId = account.upsertProfile(r.value, { clearNulls: false, strictConflicts: false }, now).profile.id;
  }
  if (patch) {
    const p = account.profilesById.get(profileId)!;
    p.properties = patch(p.properties);
  }
  job.profileIds.push(profileId);
  job.completedCount++;
  for (const listId of job.listIds) {
    const list = account.lists.get(listId);
    if (list) account.addMember(list, profileId, now);
  }
}

/** The job as a JSON:API resource. */
export function jobResource(job: ImportJobRecord, baseUrl: string, fields: Set<string> | null = null): Record<string, unknown> {
  const self = `${baseUrl}/api/profile-bulk-import-jobs/${job.id}/`;
  return {
    type: 'profile-bulk-import-job',
    id: job.id,
    attributes: pickFields({
      status: job.status,
      created_at: isoMicros(job.createdAt),
      total_count: job.totalCount,
      completed_count: job.completedCount,
      failed_count: job.failedCount,
      completed_at: job.completedAt === null ? null : isoMicros(job.completedAt),
      expires_at: job.expiresAt === null ? null : isoMicros(job.expiresAt),
      started_at: job.startedAt === null ? null : isoMicros(job.startedAt),
    }, fields),
    relationships: {
      lists: {
        data: job.listIds.map((id) => ({ type: 'list', id })),
        links: { self: `${self}relationships/lists/`, related: `${self}lists/` },
      },
      profiles: { links: { self: `${self}relationships/profiles/`, related: `${self}profiles/` } },
      'import-errors': { links: { related: `${self}import-errors/` } },
    },
    links: { self },
  };
}
