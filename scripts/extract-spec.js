#!/usr/bin/env node
// Keeps in the repository the part of Klaviyo's official OpenAPI spec that the tests read (plain Node ESM).
//
//   npm run spec:extract -- <path to klaviyo/openapi's openapi/stable.json> [--commit <sha>] [--license <LICENSE>]
//                            [--out <dir>]   (default test/spec/klaviyo-openapi)
//
// Kept: the operations of the endpoint table (every key of `ENDPOINTS` in src/, `METHOD /path`) with their path
// items' shared fields, and every component they reference, transitively; plus the document's `openapi`, `info`
// and `security`. Written to test/spec/klaviyo-openapi/ (stable.json, LICENSE, README.md) with the source recorded
// in the copy's `x-source`: repository, commit, the git blob id of the file read, the API revision, the licence.
// The same input gives the same bytes. Run it again when the endpoint table gains an endpoint or the spec revision
// changes (test/unit/klaviyo/endpoints.test.ts fails on an endpoint missing from the copy).
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_OUT = join(ROOT, 'test', 'spec', 'klaviyo-openapi');
const REPOSITORY = 'https://github.com/klaviyo/openapi';
const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

/** klaviyo/openapi's LICENSE (MIT), used when --license is not given. */
const MIT_NOTICE = `MIT License

Copyright (c) 2022 Klaviyo

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`;

function fail(message) {
  console.error(`spec:extract: ${message}`);
  process.exit(1);
}

/** Every `*.ts` file under `dir`. */
function tsFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The keys of the endpoint table (`export const ENDPOINTS = { 'GET /api/…': …, … }`), wherever it lives in src/. */
function endpointKeys() {
  const files = tsFiles(join(ROOT, 'src')).filter((f) => /export const ENDPOINTS\b/.test(readFileSync(f, 'utf8')));
  if (files.length !== 1) fail(`expected one file in src/ exporting ENDPOINTS, found ${files.length}`);
  const text = readFileSync(files[0], 'utf8');
  const table = text.slice(text.search(/export const ENDPOINTS\b/));
  const body = table.slice(0, table.search(/\n}/));
  const keys = [...body.matchAll(/^\s*'((?:GET|POST|PUT|PATCH|DELETE) \/[^']+)'\s*:/gm)].map((m) => m[1]);
  if (keys.length === 0) fail(`no endpoint keys found in ${relative(ROOT, files[0])}`);
  return { file: relative(ROOT, files[0]), keys };
}

/** Follow every local `$ref` from `roots`, transitively: the set of `#/components/<kind>/<name>` pointers used. */
function referencedComponents(spec, roots) {
  const seen = new Set();
  const walk = (node) => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') {
        if (!v.startsWith('#/components/')) fail(`unsupported $ref ${v}`);
        if (seen.has(v)) continue;
        seen.add(v);
        const [, , kind, name] = v.split('/');
        const target = spec.components?.[kind]?.[name];
        if (target === undefined) fail(`dangling $ref ${v}`);
        walk(target);
      } else walk(v);
    }
  };
  roots.forEach(walk);
  return seen;
}

/** The part of `spec` the tests need, in the source's key order. */
function extract(spec, keys) {
  const wanted = new Map(); // path -> Set of methods
  for (const key of keys) {
    const [method, path] = key.split(' ');
    const op = spec.paths[path]?.[method.toLowerCase()];
    if (!op) fail(`${key} is not in the spec`);
    if (!wanted.has(path)) wanted.set(path, new Set());
    wanted.get(path).add(method.toLowerCase());
  }
  const paths = {};
  for (const [path, item] of Object.entries(spec.paths)) {
    if (!wanted.has(path)) continue;
    paths[path] = Object.fromEntries(Object.entries(item).filter(([k]) => !METHODS.has(k) || wanted.get(path).has(k)));
  }
  const refs = referencedComponents(spec, [paths, spec.security ?? []]);
  const components = {};
  for (const [kind, entries] of Object.entries(spec.components ?? {})) {
    const kept = Object.entries(entries).filter(([name]) => refs.has(`#/components/${kind}/${name}`) || kind === 'securitySchemes');
    if (kept.length > 0) components[kind] = Object.fromEntries(kept);
  }
  return { paths, components };
}

/** Git's blob id of a file's bytes (what `git hash-object` prints), so the source can be checked against upstream. */
function gitBlobId(bytes) {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

/** The commit of the file when it sits in a git checkout of klaviyo/openapi, else undefined. */
function commitOf(file) {
  try {
    return execFileSync('git', ['-C', dirname(file), 'log', '-1', '--format=%H', '--', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function main() {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { commit: { type: 'string' }, license: { type: 'string' }, out: { type: 'string' } } });
  if (positionals.length !== 1) fail('usage: npm run spec:extract -- <path to openapi/stable.json> [--commit <sha>] [--license <LICENSE>]');
  const input = resolve(positionals[0]);
  const outDir = values.out ? resolve(values.out) : DEFAULT_OUT;
  if (!existsSync(input)) fail(`no file ${input}`);
  const commit = values.commit ?? commitOf(input);
  if (!commit || !/^[0-9a-f]{40}$/.test(commit)) fail('give the klaviyo/openapi commit the file comes from: --commit <40 hex digits>');
  const bytes = readFileSync(input);
  const spec = JSON.parse(bytes.toString('utf8'));
  const revision = spec.info?.version;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(revision ?? '')) fail(`info.version ${revision} is not a GA revision (YYYY-MM-DD): give openapi/stable.json`);
  const license = values.license ? readFileSync(values.license, 'utf8') : MIT_NOTICE;
  const { file: table, keys } = endpointKeys();
  const { paths, components } = extract(spec, keys);
  const source = { repository: REPOSITORY, commit, path: 'openapi/stable.json', blob: gitBlobId(bytes), revision, license: 'MIT', notice: license };
  const copy = { openapi: spec.openapi, info: spec.info, 'x-source': source, security: spec.security, paths, components };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'stable.json'), `${JSON.stringify(copy, null, 1)}\n`);
  writeFileSync(join(outDir, 'LICENSE'), license.endsWith('\n') ? license : `${license}\n`);
  const counts = Object.entries(components).map(([k, v]) => `${Object.keys(v).length} ${k}`).join(', ');
  writeFileSync(
    join(outDir, 'README.md'),
    [
      '# Klaviyo OpenAPI spec: the part the tests read',
      '',
      'Generated by `npm run spec:extract -- <path to openapi/stable.json>` (scripts/extract-spec.js); do not edit by hand.',
      '',
      `- Source: ${REPOSITORY}, commit \`${commit}\`, \`openapi/stable.json\` (git blob \`${source.blob}\`).`,
      `- API revision **${revision}** (\`info.version\`), OpenAPI ${spec.openapi}.`,
      `- Kept: the ${keys.length} operations of the endpoint table (\`ENDPOINTS\` in ${table}) and the components they`,
      `  reference, transitively (${counts}). Everything else of the official file is left out.`,
      '- Licence: MIT, Copyright (c) 2022 Klaviyo (LICENSE here, also in the copy\'s `x-source.notice`).',
      '',
    ].join('\n'),
  );
  console.log(`spec:extract: ${keys.length} operations, ${counts} -> ${relative(ROOT, outDir) || '.'}/stable.json`);
}

main();
