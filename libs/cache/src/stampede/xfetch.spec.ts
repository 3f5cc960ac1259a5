import { shouldRefreshEarly } from './xfetch.js';

describe('shouldRefreshEarly (XFetch)', () => {
  const meta = { c: 0, f: 10_000, h: 10_000, d: 100 };

  it('never refreshes early when off, or when the load time is unknown', () => {
    expect(shouldRefreshEarly(meta, 0, 9_999, () => 1e-9)).toBe(false);
    expect(shouldRefreshEarly({ ...meta, d: 0 }, 1, 9_999, () => 1e-9)).toBe(false);
  });

  it('follows now - delta * beta * ln(random) >= expiry', () => {
    // -100 * ln(0.5) = 69.3 ms ahead of now
    expect(shouldRefreshEarly(meta, 1, 10_000 - 69, () => 0.5)).toBe(true);
    expect(shouldRefreshEarly(meta, 1, 10_000 - 70, () => 0.5)).toBe(false);
    expect(shouldRefreshEarly(meta, 2, 10_000 - 138, () => 0.5)).toBe(true);
  });

  it('refreshes more often as expiry nears', () => {
    const rate = (now: number) => {
      let early = 0;
      for (let i = 0; i < 10_000; i++) if (shouldRefreshEarly(meta, 1, now)) early++;
      return early / 10_000;
    };
    const far = rate(10_000 - 500);
    const near = rate(10_000 - 50);
    expect(far).toBeLessThan(0.02); // e^-5
    expect(near).toBeGreaterThan(0.55); // e^-0.5
  });
});
