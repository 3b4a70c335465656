#!/usr/bin/env node
// The npm tarball as it is published: `npm run pack [-- <destination dir>]`, then `npm publish <tarball>`.
//
// The repository's package.json has a `prepare` script (so that `npm ci` in a checkout builds dist/) and the
// devDependencies of its tests. npm 11 lists every `prepare` of an installed package among the "install scripts not
// yet covered by allowScripts" and warns at every `npm install -g` (and would run it for a tarball install, where
// TypeScript is not there). So the tarball is packed from a staging directory: the files package.json `files`
// names, and a package.json without scripts or devDependencies. dist/ must be built (`npm run build`).
// Prints the tarball's path and its file list as JSON ({ tarball, files }).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dest = path.resolve(process.argv[2] ?? root);
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
if (!existsSync(path.join(root, 'dist', 'cli', 'main.js'))) {
  console.error('pack: dist/ is not built: run `npm run build` first');
  process.exit(1);
}
const stage = mkdtempSync(path.join(tmpdir(), 'klaviyo-etl-pack-'));
try {
  for (const entry of pkg.files) cpSync(path.join(root, entry), path.join(stage, entry), { recursive: true });
  const { scripts: _scripts, devDependencies: _dev, ...published } = pkg;
  writeFileSync(path.join(stage, 'package.json'), JSON.stringify(published, null, 2) + '\n');
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dest], { cwd: stage, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const [info] = JSON.parse(out);
  process.stdout.write(JSON.stringify({ tarball: path.join(dest, info.filename), files: info.files.map((f) => f.path) }) + '\n');
} finally {
  rmSync(stage, { recursive: true, force: true });
}
