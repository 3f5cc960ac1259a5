import type { Redis } from 'ioredis';

/** What happens to the next commands sent through a client wrapped by `injectRedisFaults`. */
export type RedisFault =
  /** they fail at once, never reaching Redis */
  | { kind: 'throw' }
  /** they reach Redis `ms` later */
  | { kind: 'delay'; ms: number }
  /** Redis runs them, but their replies are lost: the caller sees a failure for a command that took effect */
  | { kind: 'drop-reply' };

export interface RedisFaults {
  /** Faults apply to commands named here (lower case, e.g. `evalsha`, `get`), or to every command. */
  set(fault: RedisFault, commands?: readonly string[]): void;
  clear(): void;
  /** commands affected so far */
  readonly hits: number;
}

type Command = { name: string; resolve: (value: unknown) => void; reject: (error: Error) => void; promise: Promise<unknown> };

/**
 * An in-process fault injector around an ioredis client (pass the client to the cache as
 * `redis: { client }`): every command goes through `sendCommand`, where it can fail, stall, or
 * lose its reply after Redis ran it. Fast and deterministic, next to the OS-level faults (a paused
 * redis-server, a blocking TCP proxy).
 */
export function injectRedisFaults(redis: Redis): RedisFaults {
  let fault: RedisFault | undefined;
  let only: readonly string[] | undefined;
  let hits = 0;
  const send = redis.sendCommand.bind(redis) as (command: Command, ...rest: unknown[]) => unknown;
  (redis as unknown as { sendCommand: (command: Command, ...rest: unknown[]) => unknown }).sendCommand = (command, ...rest) => {
    const applies = fault !== undefined && (only === undefined || only.includes(command.name.toLowerCase()));
    if (!applies || fault === undefined) return send(command, ...rest);
    hits++;
    switch (fault.kind) {
      case 'throw':
        command.reject(new Error(`injected fault: ${command.name} failed`));
        return command.promise;
      case 'delay': {
        const ms = fault.ms;
        setTimeout(() => send(command, ...rest), ms);
        return command.promise;
      }
      case 'drop-reply': {
        const reject = command.reject;
        command.resolve = () => reject(new Error(`injected fault: the reply to ${command.name} was lost`));
        return send(command, ...rest);
      }
    }
  };
  return {
    set(next, commands) {
      fault = next;
      only = commands?.map((name) => name.toLowerCase());
    },
    clear() {
      fault = undefined;
      only = undefined;
    },
    get hits() {
      return hits;
    },
  };
}
