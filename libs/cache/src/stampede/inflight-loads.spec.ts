import { InflightLoads } from './inflight-loads.js';

describe('InflightLoads', () => {
  it('issue 11 item 10: remembers a bounded number of tag invalidations while a load hangs, and fails safe', () => {
    const loads = new InflightLoads();
    const hung = loads.begin('ns:hung');
    for (let i = 0; i < 25_000; i++) loads.invalidateTags([`ns:tag-${i}`]);
    expect(loads.rememberedTags).toBeLessThanOrEqual(10_000);
    // Whatever was forgotten, the running load counts as overtaken: it will not land.
    expect(loads.isInvalidated(hung, ['ns:tag-1'])).toBe(true);
    loads.end(hung);
    expect(loads.rememberedTags).toBe(0);
  });

  it('marks only the loads an invalidation concerns', () => {
    const loads = new InflightLoads();
    const a = loads.begin('ns:a');
    const b = loads.begin('ns:b');
    loads.invalidate(['ns:a']);
    loads.invalidateTags(['ns:t']);
    expect([loads.isInvalidated(a), loads.isInvalidated(b), loads.isInvalidated(b, ['ns:t'])]).toEqual([true, false, true]);
  });
});
