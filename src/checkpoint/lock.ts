import { randomUUID } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { z } from 'zod';

/** What a lock file / lock object holds. */
export const LockInfoSchema = z.strictObject({
  pid: z.number().int().min(0),
  hostname: z.string(),
  startedAt: z.iso.datetime(),
  /** Random id of this acquisition (a released lock is only removed by its owner). */
  token: z.string().min(1),
});
export type LockInfo = z.output<typeof LockInfoSchema>;

/** A held lock. `release` is idempotent and removes the lock only if it is still ours. */
export interface Lock {
  readonly info: LockInfo;
  release(): Promise<void>;
}

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

export function newLockInfo(env: LockEnvironment = {}): LockInfo {
  return {
    pid: env.pid ?? process.pid,
    hostname: env.hostname ?? osHostname(),
    startedAt: (env.now?.() ?? new Date()).toISOString(),
    token: randomUUID(),
  };
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
 * A lock is stale only when it was taken on this host by a process that no longer exists. Locks from other
 * hosts are never considered stale (their liveness cannot be checked).
 */
export function isStale(found: LockInfo, env: LockEnvironment = {}): boolean {
  const host = env.hostname ?? osHostname();
  if (found.hostname !== host) return false;
  if (found.pid === (env.pid ?? process.pid)) return false;
  return !(env.isAlive ?? processAlive)(found.pid);
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
  return `pid ${info.pid} on ${info.hostname} since ${info.startedAt}`;
}
