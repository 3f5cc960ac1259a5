import { startUsersApiCluster } from '../apps/users-api/test/users-app.js';
import { startSentinel } from './support/redis-topologies.js';
import { eventually } from './support/wait.js';

describe('issue 12: the cache on Redis Sentinel (one primary, one replica, one sentinel), two users-api instances', () => {
  let sentinel: Awaited<ReturnType<typeof startSentinel>>;
  let cluster: Awaited<ReturnType<typeof startUsersApiCluster>>;

  beforeAll(async () => {
    sentinel = await startSentinel();
    cluster = await startUsersApiCluster('sentinel', 2, {
      cacheRedis: { sentinel: { sentinels: sentinel.sentinels, name: sentinel.name } },
    });
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    await sentinel?.stop();
  });

  it('caches through the primary, keeps answering while it fails over, and is coherent again on the new primary', async () => {
    const [a, b] = cluster.instances;
    const user = (await a.http().post('/users').send({ email: 'sentinel@example.com', name: 'Before' }).expect(201)).body;
    const cached = await eventually(async () => (await a.http().get(`/users/${user.id}`).expect(200)).headers['x-cache'] === 'HIT', 5_000);
    expect(cached).toBe(true);
    const firstPrimary = await sentinel.primaryUrl();

    await sentinel.killPrimary();
    // Every read answers while the replica takes over (L1, then PostgreSQL).
    const statuses: number[] = [];
    const promoted = await eventually(async () => {
      for (const instance of [a, b]) statuses.push((await instance.http().get(`/users/${user.id}`)).status);
      return (await sentinel.primaryUrl().catch(() => firstPrimary)) !== firstPrimary;
    }, 15_000);
    expect(promoted).toBe(true);
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((status) => status === 200)).toBe(true);

    // Once the new primary serves, a PUT on A reaches B within a second, from Redis again (a HIT).
    const reachable = await eventually(async () => {
      const put = await a.http().put(`/users/${user.id}`).send({ email: 'sentinel@example.com', name: 'After' });
      if (put.status !== 200) return false;
      const read = await b.http().get(`/users/${user.id}`).expect(200);
      return read.body.name === 'After' && read.headers['x-cache'] === 'HIT';
    }, 15_000);
    expect(reachable).toBe(true);
    await a.http().put(`/users/${user.id}`).send({ email: 'sentinel@example.com', name: 'Again' }).expect(200);
    const seen = await eventually(async () => (await b.http().get(`/users/${user.id}`).expect(200)).body.name === 'Again', 1_000);
    expect(seen).toBe(true);
  }, 60_000);
});
