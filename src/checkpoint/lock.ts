import { randomUUID } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { z } from 'zod';
import { EtlError } from '../core/errors.js';

/** What a lock file / lock object holds. */
export const LockInfoSchema = z.strictObject({
  pid: z.number().int().min(0),
  hostname: z.string(),
  startedAt: z.iso.datetime(),
  /** Random id of this acquisition (a released lock is only removed by its owner). */
  token: z.string().min(1),
  /** The lease: how long the holder keeps the lock without renewing it (absent in locks of older versions). */
  ttlMs: z.number().int().positive().optional(),
  /** When the lease ends unless renewed (the holder renews it every third of `ttlMs` while the run lives). */
  expiresAt: z.iso.datetime().optional(),
});
export type LockInfo = z.output<typeof LockInfoSchema>;

/** A held lock. `release` is idempotent and removes the lock only if it is still ours. */
export interface Lock {
  readonly info: LockInfo;
  release(): Promise<void>;
  /**
   * Called once if a renewal finds the lock is no longer this run's (another run took it over after the lease
   * ran out, e.g. this process was frozen longer than the lease): the run must stop writing its checkpoint.
   */
  onLost(listener: (error: EtlError) => void): void;
}

/** The default lease: a lock not renewed for this long is free to take, whoever held it. */
export const DEFAULT_LEASE_MS = 300_000;

/** How a store decides whether a lock it found is stale. Injected so tests can use fixed hosts. */
export interface LockEnvironment {
  /** @default process.pid */
  pid?: number;
  /** @default os.hostname() */
  hostname?: string;
  /** Whether process `pid` on this host is alive. @default `process.kill(pid, 0)`, ESRCH → dead */
  isAlive?: (pid: number) => boolean;
  now?: () => Date;
}

export function newLockInfo(env: LockEnvironment = {}, ttlMs = DEFAULT_LEASE_MS): LockInfo {
  const now = env.now?.() ?? new Date();
  return {
    pid: env.pid ?? process.pid,
    hostname: env.hostname ?? osHostname(),
    startedAt: now.toISOString(),
    token: randomUUID(),
    ttlMs,
    expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
  };
}

/** The same lock with its lease extended from now. */
export function renewedLockInfo(info: LockInfo, env: LockEnvironment = {}): LockInfo {
  const now = env.now?.() ?? new Date();
  return { ...info, expiresAt: new Date(now.getTime() + (info.ttlMs ?? DEFAULT_LEASE_MS)).toISOString() };
}

/** `process.kill(pid, 0)`: ESRCH means no such process; EPERM means it exists (another user's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Whether a lock found in the store may be taken over:
 * - taken on this host: only when its process no longer exists (a live process on this host is never taken over,
 *   even if it was late renewing);
 * - taken on another host (a pod, another machine; its process cannot be checked): only when its lease ran out,
 *   i.e. its holder stopped renewing it. Locks written before leases existed (no `expiresAt`) never expire.
 */
export function isStale(found: LockInfo, env: LockEnvironment = {}): boolean {
  const host = env.hostname ?? osHostname();
  if (found.hostname !== host) return leaseExpired(found, env);
  if (found.pid === (env.pid ?? process.pid)) return false;
  return !(env.isAlive ?? processAlive)(found.pid);
}

function leaseExpired(found: LockInfo, env: LockEnvironment): boolean {
  if (found.expiresAt === undefined) return false;
  return (env.now?.() ?? new Date()).getTime() > Date.parse(found.expiresAt);
}

/** How a store renews a held lock: `false` when the lock is no longer this run's. Thrown errors are transient. */
export type RenewLease = () => Promise<boolean>;

/**
 * Renew a held lease every third of its TTL until `stop()`: a renewal that finds the lock taken over calls the
 * `onLost` listeners once and stops; a renewal that fails (store unreachable) is retried at the next tick, and the
 * lease still has two thirds of its TTL to run.
 */
export function keepLeaseAlive(info: LockInfo, location: string, renew: RenewLease): { stop(): void; onLost(listener: (error: EtlError) => void): void } {
  const listeners: ((error: EtlError) => void)[] = [];
  let lost: EtlError | undefined;
  let busy = false;
  const timer = setInterval(() => {
    if (busy || lost) return;
    busy = true;
    renew()
      .then((held) => {
        if (held || lost) return;
        lost = new EtlError('LOCK_LOST', `The run's lock was taken over by another run after its lease (${(info.ttlMs ?? DEFAULT_LEASE_MS) / 1000} s) ran out without renewal: ${location}. This run stops without writing its checkpoint again.`, {
          context: { component: 'checkpoint', file: location },
        });
        clearInterval(timer);
        for (const listener of listeners) listener(lost);
      })
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, Math.max(100, Math.floor((info.ttlMs ?? DEFAULT_LEASE_MS) / 3)));
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    onLost: (listener) => {
      if (lost) listener(lost);
      else listeners.push(listener);
    },
  };
}

export function parseLockInfo(text: string): LockInfo | undefined {
  try {
    const parsed = LockInfoSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export function describeLock(info: LockInfo): string {
  const lease = info.expiresAt ? `, lease renewed until ${info.expiresAt}` : '';
  return `pid ${info.pid} on ${info.hostname} since ${info.startedAt}${lease}`;
}
