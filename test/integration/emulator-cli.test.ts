/**
 * `klaviyo-etl emulator` flag values through the BUILT CLI (`npm run build` first): a bad value is a usage error
 * (exit 2, `error [USAGE]` naming what is wrong), never an internal error, never an emulator that starts and then
 * cannot honour the flag, and never an echo of a file's bytes.
 */
import { createServer, type Server } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, spawnCli } from '../helpers/cli.js';
import { client, getJson } from '../unit/emulator/client.js';

const SECRET = 'AKIAIOSFODNN7EXAMPLE-do-not-print';
let tmp: string;
let busy: Server;
let busyPort: number;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-emulator-cli-'));
  await writeFile(path.join(tmp, 'secret.txt'), `aws_secret_access_key = ${SECRET}\n`);
  await writeFile(path.join(tmp, 'not-a-seed.json'), JSON.stringify({ lists: [{ name: 'Ok' }], token: SECRET }));
  await writeFile(path.join(tmp, 'bad-member.json'), JSON.stringify({ lists: [{ name: 'VIP', members: [SECRET] }] }));
  await writeFile(path.join(tmp, 'bad-profile.json'), JSON.stringify({ profiles: [{ email: SECRET }] }));
  await writeFile(path.join(tmp, 'not-a-state.json'), JSON.stringify({ version: 1, accounts: [{ key: SECRET }] }));
  await writeFile(path.join(tmp, 'old-state.json'), JSON.stringify({ version: 0, data: SECRET }));
  await mkdir(path.join(tmp, 'a-directory'));
  busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  busyPort = (busy.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise((resolve) => busy.close(resolve));
  await rm(tmp, { recursive: true, force: true });
});

const file = (name: string) => path.join(tmp, name);

describe('klaviyo-etl emulator: bad flag values are usage errors (exit 2)', () => {
  const cases: [string, () => string[], RegExp][] = [
    ['--port abc', () => ['--port', 'abc'], /--port to be an integer from 0 to 65535.*"abc"/],
    ['--port 70000', () => ['--port', '70000'], /--port to be an integer from 0 to 65535.*"70000"/],
    ['--port -1', () => ['--port=-1'], /--port to be an integer/],
    ['--port 1.5', () => ['--port', '1.5'], /--port to be an integer/],
    ['--port in use', () => ['--port', String(busyPort)], /cannot listen on 127\.0\.0\.1:\d+: port \d+ is already in use on 127\.0\.0\.1/],
    ['--host with a slash', () => ['--host', 'http://localhost'], /--host to be a host name or an IP address/],
    ['--host not of this machine', () => ['--host', '192.0.2.1'], /cannot listen on 192\.0\.2\.1:0: 192\.0\.2\.1 is not an address of this machine/],
    ['--faults unknown name', () => ['--faults', 'rate500=0.1,bogus=0.5'], /Unknown fault option `bogus`; the options are seed, rate500/],
    ['--faults unknown JSON name', () => ['--faults', '{"rate_500":0.1}'], /Unknown fault option `rate_500`/],
    ['--faults rate above 1', () => ['--faults', 'rate500=2'], /`rate500` to be a probability between 0 and 1/],
    ['--faults not a number', () => ['--faults', 'seed=abc'], /`key=number`/],
    ['--faults JSON of the wrong type', () => ['--faults', '{"rate503":"often"}'], /`rate503` to be a number/],
    ['--faults JSON array', () => ['--faults', '[0.1]'], /fault options to be an object/],
    ['--faults bad JSON', () => ['--faults', '{rate500:0.1}'], /not valid JSON/],
    ['--faults negative slowMs', () => ['--faults', 'slowRate=0.1,slowMs=-5'], /`slowMs` to be a number of milliseconds/],
    ['--processing-rate abc', () => ['--processing-rate', 'abc'], /--processing-rate to be a positive number/],
    ['--api-key not a private key', () => ['--api-key', 'sk_live_notakey'], /--api-key to be a private key/],
    ['--state in a missing directory', () => ['--state', file('missing/state.json')], /state file .*missing\/state\.json cannot be written: its directory .* does not exist/],
    ['--state naming a directory', () => ['--state', file('a-directory')], /state file .*a-directory is a directory/],
    ['--state not JSON', () => ['--state', file('secret.txt')], /state file .*secret\.txt is not valid JSON/],
    ['--state JSON of another shape', () => ['--state', file('old-state.json')], /is not an emulator state file \(expected/],
    ['--state with a malformed account', () => ['--state', file('not-a-state.json')], /is not an emulator state file \(account 0 is malformed\)/],
    ['--state empty', () => ['--state', ''], /--state to name a file/],
    ['--seed missing', () => ['--seed', file('nope.json')], /seed file .*nope\.json does not exist/],
    ['--seed not JSON', () => ['--seed', file('secret.txt')], /seed file .*secret\.txt is not valid JSON\./],
    ['--seed with an unknown key', () => ['--seed', file('not-a-seed.json')], /is not a seed file \(at its top level: unknown key "token"\)/],
    ['--seed with a bad member email', () => ['--seed', file('bad-member.json')], /is not a seed file \(at \/lists\/0\/members\/0: Expected an email address\)/],
    ['--seed with an invalid profile', () => ['--seed', file('bad-profile.json')], /has an invalid profile \(at \/profiles\/0\/email: Invalid email address\)/],
    ['--seed naming a directory', () => ['--seed', file('a-directory')], /seed file .*a-directory is a directory/],
  ];

  it.each(cases)('%s', async (_name, args, message) => {
    const r = await cli(['emulator', '--limits', 'off', ...args()]);
    expect(r.stderr).toMatch(/^error \[USAGE\]: /);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toContain(SECRET);
    expect(r.stdout).toBe(''); // no URL: it never listened
    expect(r.code).toBe(2);
  });
});

describe('klaviyo-etl emulator: good files are used', () => {
  it('a seed and a state file in a writable directory: seeded lists served, state saved on SIGTERM', async () => {
    const seed = file('seed.json');
    const stateFile = file('state-dir/state.json');
    await mkdir(path.dirname(stateFile));
    await writeFile(seed, JSON.stringify({ lists: [{ id: 'VIP001', name: 'VIP', members: ['vip@example.com'] }], profiles: [{ email: 'p@example.com', properties: { tier: 1 } }] }));
    const child = spawnCli(['emulator', '--limits', 'off', '--seed', seed, '--state', stateFile, '--faults', 'seed=3']);
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const url = await new Promise<string>((resolve) => child.stdout!.on('data', (d: Buffer) => resolve(d.toString().split('\n')[0]!.trim())));
    const key = 'pk_cli_seeded_account_01';
    expect((await client(url, key)('GET', '/api/lists')).json.data.map((l: { id: string }) => l.id)).toEqual(['VIP001']);
    const state = await getJson(`${url}/_emulator/state?key=${key}`);
    expect(state).toMatchObject({ profiles: 2, lists: [{ id: 'VIP001', name: 'VIP', members: 1 }] });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const saved = JSON.parse(await readFile(stateFile, 'utf8')) as { version: number; accounts: unknown[] };
    expect(saved).toMatchObject({ version: 1, accounts: [expect.anything()] });
  });
});
