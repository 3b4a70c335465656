import { describe, expect, it } from 'vitest';
import { planResend } from '../../../src/checkpoint/index.js';

const pos = (seq: number) => ({ seq, source: 'a.csv', line: seq + 2 });

describe('planResend', () => {
  it('reads again after the earliest forgotten job start; drops pending jobs whose rows all come after it', () => {
    const plan = planResend(['j3', 'j2'], ['j1', 'j2', 'j3', 'j4'], { j1: pos(9), j2: pos(49), j3: pos(99), j4: pos(149) });
    expect(plan.startAfter).toEqual(pos(49));
    expect(plan.keep).toEqual(['j1']);
    expect(plan.drop.sort()).toEqual(['j2', 'j3', 'j4']);
  });

  it('a forgotten job without a recorded start (null, or an older checkpoint) is read again from the start', () => {
    expect(planResend(['j2'], ['j1', 'j2'], { j1: pos(9), j2: null })).toEqual({ startAfter: undefined, keep: [], drop: ['j2', 'j1'] });
    expect(planResend(['j2'], ['j1', 'j2'])).toEqual({ startAfter: undefined, keep: [], drop: ['j2', 'j1'] });
  });

  it('a pending job without a recorded start is dropped (its rows may come after the resend point)', () => {
    expect(planResend(['j2'], ['j1', 'j2'], { j2: pos(49) })).toEqual({ startAfter: pos(49), keep: [], drop: ['j2', 'j1'] });
  });
});
