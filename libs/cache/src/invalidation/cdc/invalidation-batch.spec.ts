import { glob } from '../../keys/key-part.js';
import { InvalidationBatch } from './invalidation-batch.js';

describe('InvalidationBatch (issue 11 item 3: CDC notifications coalesced per namespace)', () => {
  it('one call per namespace: each tag, hash and pattern once, keys deduplicated, each key at its highest version', () => {
    const batch = new InvalidationBatch();
    for (const [id, version] of [
      [1, 3],
      [2, 7],
      [1, 5],
      [1, 4],
    ]) {
      batch.add({
        namespace: 'users',
        keys: [`user:${id}`, `user:${id}:settings`],
        versions: { [`user:${id}`]: version },
        tags: ['list'],
        hashes: [String(id)],
        patterns: [glob`page:*`],
      });
    }
    batch.add({ namespace: 'orders', tags: ['recent'] });

    const calls = batch.calls();
    expect(calls.map(([namespace]) => namespace)).toEqual(['users', 'orders']);
    const [, users] = calls[0];
    expect(users.versions).toEqual({ 'user:1': 5, 'user:2': 7 });
    expect(users.keys).toEqual(['user:1:settings', 'user:2:settings']);
    expect(users.tags).toEqual(['list']);
    expect(users.hashes).toEqual(['1', '2']);
    expect(users.patterns?.map((pattern) => pattern.glob)).toEqual(['page:*']);
    expect(calls[1][1].tags).toEqual(['recent']);
  });

  it('a key one change names with a version and another without is deleted outright too, in a second call', () => {
    const batch = new InvalidationBatch();
    batch.add({ namespace: 'users', keys: ['user:1'], versions: { 'user:1': 2 } });
    batch.add({ namespace: 'users', keys: ['user:1'] });

    const calls = batch.calls();
    expect(calls).toHaveLength(2);
    expect(calls[0][1].versions).toEqual({ 'user:1': 2 });
    expect(calls[0][1].keys).toEqual([]);
    expect(calls[1]).toEqual(['users', { keys: ['user:1'] }]);
  });

  it('a batch with nothing in it makes no call', () => {
    expect(new InvalidationBatch().calls()).toEqual([]);
  });
});
