// `npm run bench` (= build, then `node bench/run.js [case …]`): runs the benchmark cases in turn and writes one
// result file per case, bench/results/<YYYY-MM-DD>-<case>.json, plus a summary on stdout.
//
// Adding a case is one line: create bench/cases/<name>.js and append '<name>' to CASES below.
//
// A case module is plain Node ESM importing the built product from the repository's dist/ (`npm run bench`
// builds it) and the helpers of ../lib.js (data generation, emulator child process, CLI child process with peak
// RSS, …). It exports:
//
//   export const description = 'one line: what is measured';
//   export async function run(ctx) {
//     // ctx.log(msg)         progress lines on stderr
//     // ctx.machine          { nproc, cpu, ramMb, node, platform }
//     // ctx.results          results returned by the cases that ran before this one, by case name (may be absent)
//     // ctx.quick            true with `--quick` (smoke run: use about a tenth of the data)
//     return {
//       config: { … },                        // what was run (sizes, limits, factors, in-process or child)
//       metrics: { … },                       // measured numbers (rows/s, ms, MB, counts)
//       targets: [{ name, target, value, met }], // each target of issue 4 this case checks (met: boolean)
//       notes: ['…'],                         // anything a reader of the table must know
//     };
//   }
//
// Cases run sequentially (a 2-core machine: never two at once); a case that throws is recorded as
// `{error}` and the next one runs. `node bench/run.js ceiling sdk` runs only those; `--quick` shrinks the data.
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BENCH_DIR, machineInfo } from './lib.js';

const CASES = ['throughput', 'memory', 'ceiling', 'sdk', 'faults', 'postgres', 'emulator', 'pacing', 'export', 'emulator-reads', 'postgres-upsert'];

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.filter((a) => !a.startsWith('--'));
const unknown = only.filter((n) => !CASES.includes(n));
if (unknown.length > 0) {
  console.error(`unknown case(s): ${unknown.join(', ')}; known: ${CASES.join(', ')}`);
  process.exit(2);
}
const selected = only.length > 0 ? CASES.filter((n) => only.includes(n)) : CASES;

const machine = machineInfo();
const date = new Date().toISOString().slice(0, 10);
const resultsDir = path.join(BENCH_DIR, 'results');
await mkdir(resultsDir, { recursive: true });
const log = (msg) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
log(`machine: ${machine.nproc} cores, ${machine.cpu}, ${machine.ramMb} MB, node ${machine.node}${quick ? ' (quick)' : ''}`);

const results = {};
const started = performance.now();
let failed = false;
for (const name of selected) {
  const mod = await import(`./cases/${name}.js`);
  log(`case ${name}: ${mod.description}`);
  const t0 = performance.now();
  const loadBefore = os.loadavg()[0];
  let result;
  try {
    result = await mod.run({ log: (m) => log(`  ${name}: ${m}`), machine, results, quick });
  } catch (err) {
    failed = true;
    result = { error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
    log(`case ${name} failed: ${result.error}`);
  }
  const record = {
    case: name,
    description: mod.description,
    date: new Date().toISOString(),
    quick,
    machine,
    durationMs: Math.round(performance.now() - t0),
    // 1-minute load average before and after: the machine is shared, so a loaded one explains slow figures.
    loadAverage: { before: Number(loadBefore.toFixed(2)), after: Number(os.loadavg()[0].toFixed(2)) },
    ...result,
  };
  results[name] = record;
  const file = path.join(resultsDir, `${date}-${name}${quick ? '-quick' : ''}.json`);
  await writeFile(file, JSON.stringify(record, null, 2) + '\n');
  for (const t of result.targets ?? []) log(`  ${t.met ? 'MET   ' : 'MISSED'} ${t.name}: ${t.value} (target ${t.target})`);
  log(`case ${name} done in ${(record.durationMs / 1000).toFixed(1)} s → ${path.relative(process.cwd(), file)}`);
}
log(`all cases done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
if (failed) process.exitCode = 1;
