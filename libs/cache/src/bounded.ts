/**
 * `work`, or a rejection once `ms` have passed without an answer: with `failure()`, or an error
 * saying that `failure` (a description) got no answer. The timer is cleared either way, so
 * nothing keeps the process alive after the answer. `ms` undefined: `work` itself.
 */
export function bounded<T>(work: Promise<T>, ms: number | undefined, failure: string | (() => unknown)): Promise<T> {
  if (ms === undefined) return work;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(typeof failure === 'string' ? new Error(`${failure} got no answer within ${ms} ms`) : failure()), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
