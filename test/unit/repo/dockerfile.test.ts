/**
 * The Dockerfile, checked statically (this machine has no container daemon, so CI does not build the image): a
 * pinned Node LTS base, multi-stage, the final stage runs as a non-root user, every file it copies exists, and
 * .dockerignore keeps the build context small.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/cli.js';

const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const lines = text.split('\n').filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
const args = Object.fromEntries(lines.flatMap((l) => [...l.matchAll(/^ARG (\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])));
const froms = lines.filter((l) => l.startsWith('FROM '));
const stages = froms.map((l, i) => {
  const end = i + 1 < froms.length ? lines.indexOf(froms[i + 1]!) : lines.length;
  return lines.slice(lines.indexOf(l), end);
});

describe('Dockerfile', () => {
  it('is multi-stage on a Node LTS base pinned to a full version (never latest)', () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) {
      const image = from.split(/\s+/)[1]!.replace(/^\$\{(\w+)\}$/, (_, name: string) => args[name] ?? '');
      expect(image).toMatch(/^node:(\d+)\.\d+\.\d+-[a-z0-9-]+(@sha256:[0-9a-f]{64})?$/);
      const major = Number(/^node:(\d+)/.exec(image)![1]);
      expect(major % 2, 'an even (LTS) Node major').toBe(0);
      expect(major).toBeGreaterThanOrEqual(20);
    }
  });

  it('the final stage runs as a non-root user and has an entrypoint', () => {
    const last = stages[stages.length - 1]!;
    const users = last.filter((l) => l.startsWith('USER '));
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]!.split(/\s+/)[1]).not.toMatch(/^(root|0)(:|$)/);
    expect(last.some((l) => l.startsWith('ENTRYPOINT ["node", "/app/bin/klaviyo-etl.js"]'))).toBe(true);
  });

  it('installs from the lockfile, production dependencies only in the image', () => {
    expect(text).toMatch(/npm ci\b/);
    expect(text).toMatch(/npm prune --omit=dev/);
  });

  it('every file or directory it copies from the context exists', () => {
    for (const l of lines.filter((x) => x.startsWith('COPY ') && !x.includes('--from='))) {
      const parts = l.split(/\s+/).slice(1, -1);
      for (const p of parts) expect(existsSync(path.join(ROOT, p)), p).toBe(true);
    }
  });

  it('.dockerignore keeps dependencies, build output and git out of the context', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const entry of ['.git', 'node_modules', 'dist']) expect(ignored).toContain(entry);
  });
});
