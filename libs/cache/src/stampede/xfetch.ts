import type { EntryMeta } from '../entry/envelope.js';

/**
 * XFetch (Vattani, Chierichetti, Lowenstein, "Optimal Probabilistic Cache Stampede Prevention",
 * VLDB 2015): refresh early when `now - delta * beta * ln(random()) >= expiry`, where `delta`
 * is how long the last load took. The closer to expiry and the slower the load, the likelier.
 */
export function shouldRefreshEarly(meta: EntryMeta, beta: number, now: number, random: () => number = Math.random): boolean {
  if (beta <= 0 || meta.d <= 0) return false;
  return now - meta.d * beta * Math.log(random()) >= meta.f;
}
