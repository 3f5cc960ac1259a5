// The user record the benchmarks cache: one definition for bench:throughput, bench:http and their
// callgrind cases. Plain JavaScript, so that the .mjs cases (which run under callgrind without the
// TypeScript loader) import it too; its types are in user-record.d.mts.
const CREATED_AT = Date.parse('2026-01-02T03:04:05.678Z');

/** A new user record, as a loaded row would be. */
export function userRecord(id = 1) {
  return {
    id,
    email: 'ada@example.com',
    name: 'Ada Lovelace',
    settings: { theme: 'dark' },
    version: 3,
    createdAt: new Date(CREATED_AT),
  };
}

/** What an HTTP route of the benches answers: the user `id` (`users` 1), or a page of `users` users from `id` on. */
export function userBody(id, users) {
  return users === 1 ? userRecord(id) : Array.from({ length: users }, (_, i) => userRecord(id + i));
}
