import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { prng } from '../../../helpers/random.js';
import { compileResult } from './helpers.js';

/** What Luxon alone answers for a text in a format with an offset (the reference the fast path must match). */
function luxon(text: string, format: string): string | undefined {
  const dt = DateTime.fromFormat(text, format, { setZone: true, locale: 'en-US' });
  return dt.isValid ? `${new Date(dt.toMillis()).toISOString().slice(0, 19)}Z` : undefined;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

describe('datetime fixed formats with an offset (fast path)', () => {
  const formats = ['yyyy-MM-dd HH:mm:ss ZZZ', 'yyyy-MM-dd HH:mm:ss ZZ', "yyyy-MM-dd'T'HH:mm:ssZZ", 'dd/MM/yyyy HH:mm:ss ZZZ'];
  for (const format of formats) {
    it(`gives Luxon's answer for every text (${format})`, () => {
      const field = compileResult({ column: 't', type: 'datetime', format }, 'time');
      const rnd = prng(7).int;
      const texts: string[] = ['2024-02-29 12:00:00 +0000', '2023-02-29 12:00:00 +0000', '2024-04-31 10:00:00 -0500', ' 2024-01-01 00:00:00 +0000', '2024-01-01 00:00:00 +5', '0099-01-01 00:00:00 +0000', '２０２４-01-01 00:00:00 +0000', '2024-01-01 00:00:00 +0000\n', '2024-01-01T00:00:00 +0000', '2024-01-01 00:00:00 +00:00', '2024-01-01 00:00:00 +0000 ', '2024-01-01 00:00:00 ±0000'];
      for (let i = 0; i < 3000; i++) {
        const y = rnd(10) === 0 ? rnd(3000) : 1990 + rnd(40);
        const mo = rnd(14);
        const d = rnd(33);
        const h = rnd(26);
        const mi = rnd(62);
        const s = rnd(62);
        const sign = rnd(2) ? '+' : '-';
        const oh = rnd(26);
        const om = rnd(4) === 0 ? rnd(80) : [0, 30, 45][rnd(3)]!;
        const zzz = `${sign}${pad(oh)}${pad(om)}`;
        const zz = `${sign}${pad(oh)}:${pad(om)}`;
        const date = format.startsWith('dd') ? `${pad(d)}/${pad(mo)}/${pad(y, 4)}` : `${pad(y, 4)}-${pad(mo)}-${pad(d)}`;
        const time = `${pad(h)}:${pad(mi)}:${pad(s)}`;
        const sep = format.includes("'T'") ? 'T' : ' ';
        const zone = format.endsWith('ZZZ') ? zzz : zz;
        texts.push(`${date}${sep}${time}${format.includes("'T'") ? '' : ' '}${zone}`);
        texts.push(`${date}${sep}${time}${format.includes("'T'") ? '' : ' '}${format.endsWith('ZZZ') ? zz : zzz}`);
      }
      let matched = 0;
      for (const text of texts) {
        const expected = luxon(text.trim(), format); // the field trims its input
        const result = field({ t: text });
        if (expected === undefined) {
          expect(result.ok, text).toBe(false);
        } else {
          matched++;
          expect(result, text).toEqual({ ok: true, value: expected });
        }
      }
      expect(matched).toBeGreaterThan(100);
    });
  }
});

describe('datetime output', () => {
  it('is the UTC second of the instant, as toISOString gives it, over years 0000–9999 and around the epoch', () => {
    const field = compileResult({ column: 't', type: 'datetime', format: 'unix_ms' }, 'time');
    const min = -62_167_219_200_000;
    const max = 253_402_300_799_999;
    const rnd = prng(5);
    const instants = [min, max, 0, -1, 1, 999, -999, -1000, -1001, 951_782_400_000, 946_684_799_999, 4_107_542_400_000];
    for (let i = 0; i < 20_000; i++) instants.push(Math.floor(min + rnd() * (max - min)));
    for (let i = 0; i < 5_000; i++) instants.push(Math.floor((rnd() - 0.5) * 4e12));
    for (const ms of instants) {
      expect(field({ t: String(ms) }), String(ms)).toEqual({ ok: true, value: `${new Date(ms).toISOString().slice(0, 19)}Z` });
    }
  });
});
