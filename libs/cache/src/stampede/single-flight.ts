/**
 * In-process request coalescing: concurrent calls for one key share a single run of `fn`,
 * and its result or its error. `fn` must be async (it must not throw synchronously, nor finish
 * before it returns its promise).
 */
export class SingleFlight {
  private readonly inFlight = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(key);
    if (running) return running as Promise<T>;
    const flight = fn();
    this.inFlight.set(key, flight);
    const done = () => void this.inFlight.delete(key);
    flight.then(done, done);
    return flight;
  }

  get size(): number {
    return this.inFlight.size;
  }
}
