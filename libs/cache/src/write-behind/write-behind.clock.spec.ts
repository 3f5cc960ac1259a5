import { WriteBehindClock } from './write-behind.clock.js';

/** A queue Redis clock (µs) and an app clock (ms) `skewMs` away from it, both moved by hand. */
function clocks(skewMs: number) {
  let queueUs = 1_800_000_000_000_000;
  const app = { ms: queueUs / 1000 + skewMs };
  const clock = new WriteBehindClock(() => app.ms);
  return {
    clock,
    app,
    /** a queued write: the version the queue gives (its clock), with the round trip the producer sees */
    accept(rttMs = 1) {
      const sent = app.ms;
      app.ms += rttMs / 2;
      queueUs += (rttMs / 2) * 1000;
      const version = Math.max(queueUs, clock.floor());
      clock.sync(queueUs, sent, (app.ms += rttMs / 2));
      queueUs += (rttMs / 2) * 1000;
      clock.observe(version);
      return version;
    },
    elapse(ms: number) {
      app.ms += ms;
      queueUs += ms * 1000;
    },
    queueUs: () => queueUs,
  };
}

describe('WriteBehindClock (issue 11 item 6: one version source for queued and fallback writes)', () => {
  it('with the app clock 2 s behind the queue, a later fallback write gets a version above an earlier queued one', () => {
    const { clock, accept, elapse } = clocks(-2_000);
    const queued = accept();
    elapse(50);
    const fallback = clock.next();
    expect(fallback).toBeGreaterThan(queued);
    // From the queue's clock, not the app's: within the round trip of where the queue's clock is.
    expect(Math.abs(fallback - (queued + 50_000))).toBeLessThan(2_000);
  });

  it('with the app clock 2 s ahead, a fallback write does not jump ahead of queued writes that follow it', () => {
    const { clock, accept, elapse, queueUs } = clocks(2_000);
    accept();
    elapse(10);
    const fallback = clock.next();
    expect(fallback).toBeLessThan(queueUs() + 2_000);
    elapse(10);
    expect(accept()).toBeGreaterThan(fallback);
  });

  it('never gives out a version below one it has seen, nor the same one twice', () => {
    const { clock } = clocks(0);
    clock.observe(9_000_000_000_000_000);
    const first = clock.next();
    expect(first).toBe(9_000_000_000_000_001);
    expect(clock.next()).toBe(first + 1);
    expect(clock.floor()).toBe(first + 2);
  });

  it('keeps the reading from the quickest recent round trip; a slow one replaces it only after a minute', () => {
    const { clock, app, elapse } = clocks(-2_000);
    clock.sync(app.ms * 1000 + 2_000_000, app.ms, app.ms + 2); // offset +2 s, 2 ms round trip
    clock.sync(app.ms * 1000 + 2_000_000 + 400_000, app.ms, app.ms + 800); // a slow one, 400 ms off: ignored
    expect(Math.abs(clock.next() - (app.ms * 1000 + 2_000_000))).toBeLessThan(2_000);
    elapse(61_000);
    clock.sync(app.ms * 1000 + 1_000_000, app.ms, app.ms + 800);
    expect(Math.abs(clock.next() - (app.ms * 1000 + 1_000_000 - 400_000))).toBeLessThan(2_000);
  });

  it('before any reading of the queue clock, the app clock stands in', () => {
    const clock = new WriteBehindClock(() => 1_000);
    expect(clock.next()).toBe(1_000_000);
  });
});
