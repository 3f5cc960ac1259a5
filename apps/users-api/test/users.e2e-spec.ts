import { CacheService } from '@cachekit/cache';
import { DataSource as AppDataSource } from 'typeorm';
import { startUsersApi } from './users-app.js';

describe('users-api /users (real PostgreSQL and Redis)', () => {
  let api: Awaited<ReturnType<typeof startUsersApi>>;

  beforeAll(async () => {
    api = await startUsersApi('users_e2e');
  });

  afterAll(async () => {
    await api?.stop();
  });

  /** A new user whose INSERT notification has been applied: it cannot evict what the test caches next. */
  const createUser = async (email: string, name: string, settings?: object) => {
    const user = (await api.http().post('/users').send({ email, name, settings }).expect(201)).body;
    await api.cdcCaughtUp();
    return user;
  };

  const userCount = async () => Number((await api.app.get(AppDataSource).query('SELECT count(*) AS n FROM users'))[0].n);

  it('creates a user with the contract shape', async () => {
    const user = await createUser('Shape@Example.com', 'Shape', { theme: 'dark' });
    expect(user).toEqual({
      id: expect.any(Number),
      email: 'shape@example.com',
      name: 'Shape',
      settings: { theme: 'dark' },
      version: 1,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
  });

  it('answers 409 for a duplicate email, ignoring case', async () => {
    await createUser('dup@example.com', 'First');
    const response = await api.http().post('/users').send({ email: 'DUP@example.com', name: 'Second' }).expect(409);
    expect(response.body).toMatchObject({ statusCode: 409 });
  });

  it('refuses bad bodies with a JSON 4xx and writes nothing', async () => {
    const before = await userCount();
    const bad = [
      { email: 'not-an-email', name: 'x' },
      { email: 'ok@example.com' },
      { email: 'ok@example.com', name: '' },
      { email: 'ok@example.com', name: 'x', admin: true },
      { email: 'ok@example.com', name: 'x', settings: 'dark' },
      [1, 2],
    ];
    for (const body of bad) {
      const response = await api.http().post('/users').send(body).expect(400);
      expect(response.body).toMatchObject({ statusCode: 400, message: 'Validation failed' });
      expect(response.body.issues.length).toBeGreaterThan(0);
    }
    const malformed = await api.http().post('/users').set('Content-Type', 'application/json').send('{"email": ').expect(400);
    expect(malformed.body).toMatchObject({ statusCode: 400, message: 'request body is not valid JSON' });
    const huge = await api
      .http()
      .post('/users')
      .send({ email: 'big@example.com', name: 'x'.repeat(100_000) })
      .expect(413);
    expect(huge.body).toMatchObject({ statusCode: 413, error: 'Payload Too Large' });
    expect(await userCount()).toBe(before);
  });

  it('serves GET /users/:id from the cache: MISS, then HIT', async () => {
    const user = await createUser('cached@example.com', 'Cached');
    const first = await api.http().get(`/users/${user.id}`).expect(200);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(first.body).toEqual(user);
    const second = await api.http().get(`/users/${user.id}`).expect(200);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.body).toEqual(user);
    const ttl = await api.redis.pttl(`${api.config.cacheKeyPrefix}{users:user:${user.id}}`);
    // USERS_CACHE_TTL fresh, then a minute of grace
    expect(ttl).toBeGreaterThan(api.config.usersCacheTtlMs + 60_000 - 5_000);
    expect(ttl).toBeLessThanOrEqual(api.config.usersCacheTtlMs + 60_000);
  });

  it('answers 404 for an unknown id and caches that briefly', async () => {
    const first = await api.http().get('/users/987654').expect(404);
    expect(first.headers['x-cache']).toBe('MISS');
    const second = await api.http().get('/users/987654').expect(404);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.body).toEqual(first.body);
    const ttl = await api.redis.pttl(`${api.config.cacheKeyPrefix}{users:user:987654}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5_000);
  });

  it('evicts a cached 404 for an id once a user with that id is created', async () => {
    const nextId = Number((await api.app.get(AppDataSource).query(`SELECT last_value + 1 AS id FROM users_id_seq`))[0].id);
    await api.http().get(`/users/${nextId}`).expect(404);
    expect((await api.http().get(`/users/${nextId}`)).headers['x-cache']).toBe('HIT');
    const created = await createUser('late@example.com', 'Late');
    expect(created.id).toBe(nextId);
    const read = await api.http().get(`/users/${nextId}`).expect(200);
    expect(read.body).toEqual(created);
  });

  it.each(['abc', '0', '-1', '007', '1.5', '99999999999'])('answers 400 for the bad id %p', async (id) => {
    const response = await api.http().get(`/users/${id}`).expect(400);
    expect(response.body).toMatchObject({ statusCode: 400 });
    expect(response.headers['x-cache']).toBeUndefined();
  });

  it('pages GET /users, caches each page, and evicts every page on any change', async () => {
    await createUser('page@example.com', 'Page');
    const first = await api.http().get('/users?limit=2&offset=0').expect(200);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(first.body).toHaveLength(2);
    expect((await api.http().get('/users?offset=0&limit=2')).headers['x-cache']).toBe('HIT');
    const ids = (await api.http().get('/users?limit=100').expect(200)).body.map((u: { id: number }) => u.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    await api.http().get('/users?limit=1&offset=1').expect(200);

    const created = await createUser('page2@example.com', 'Page Two');
    const afterCreate = await api.http().get('/users?limit=100').expect(200);
    expect(afterCreate.headers['x-cache']).toBe('MISS');
    expect(afterCreate.body.map((u: { id: number }) => u.id)).toContain(created.id);

    await api.http().put(`/users/${created.id}`).send({ email: 'page2@example.com', name: 'Renamed' }).expect(200);
    const afterPut = await api.http().get('/users?limit=100').expect(200);
    expect(afterPut.headers['x-cache']).toBe('MISS');
    expect(afterPut.body.find((u: { id: number }) => u.id === created.id).name).toBe('Renamed');

    await api.http().delete(`/users/${created.id}`).expect(204);
    expect((await api.http().get('/users?limit=100')).body.map((u: { id: number }) => u.id)).not.toContain(created.id);
    expect((await api.http().get('/users?limit=1&offset=1')).headers['x-cache']).toBe('MISS');
  });

  it('refuses bad paging with 400', async () => {
    for (const query of ['limit=0', 'limit=101', 'limit=abc', 'offset=-1', 'sort=name']) {
      const response = await api.http().get(`/users?${query}`).expect(400);
      expect(response.body).toMatchObject({ statusCode: 400, message: 'Validation failed' });
    }
  });

  it('PUT writes through: committed, then cached, so the next read is a HIT with the new user', async () => {
    const user = await createUser('put@example.com', 'Before', { theme: 'light' });
    await api.http().get(`/users/${user.id}`).expect(200);
    const updated = await api.http().put(`/users/${user.id}`).send({ email: 'put@example.com', name: 'After' }).expect(200);
    expect(updated.body).toMatchObject({ id: user.id, name: 'After', version: 2, settings: { theme: 'light' } });
    const read = await api.http().get(`/users/${user.id}`).expect(200);
    expect(read.headers['x-cache']).toBe('HIT');
    expect(read.body).toEqual(updated.body);
    await api.http().put(`/users/${user.id}`).send({ email: 'put@example.com', name: 'x', settings: {} }).expect(400);
  });

  it('PUT from concurrent writers leaves the cache holding the last committed version', async () => {
    const user = await createUser('race-put@example.com', 'Race');
    const puts = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        api
          .http()
          .put(`/users/${user.id}`)
          .send({ email: 'race-put@example.com', name: `writer ${i}` }),
      ),
    );
    expect(puts.every((r) => r.status === 200)).toBe(true);
    const lastCommitted = puts.map((r) => r.body).sort((a, b) => b.version - a.version)[0];
    expect(lastCommitted.version).toBe(11);
    const read = await api.http().get(`/users/${user.id}`).expect(200);
    expect(read.body).toEqual(lastCommitted);
  });

  it('PUT answers 404, 409 and 400 without changing anything', async () => {
    const a = await createUser('a-put@example.com', 'A');
    await createUser('b-put@example.com', 'B');
    await api.http().put('/users/987655').send({ email: 'x@example.com', name: 'X' }).expect(404);
    await api.http().put(`/users/${a.id}`).send({ email: 'b-put@example.com', name: 'A2' }).expect(409);
    await api.http().put(`/users/${a.id}`).send({ email: 'a-put@example.com' }).expect(400);
    const read = await api.http().get(`/users/${a.id}`).expect(200);
    expect(read.body).toEqual(a);
  });

  it('DELETE answers 204, evicts the user, then 404', async () => {
    const user = await createUser('delete@example.com', 'Delete');
    expect((await api.http().get(`/users/${user.id}`)).status).toBe(200);
    expect((await api.http().get(`/users/${user.id}`)).headers['x-cache']).toBe('HIT');
    await api.http().delete(`/users/${user.id}`).expect(204);
    const gone = await api.http().get(`/users/${user.id}`).expect(404);
    expect(gone.headers['x-cache']).toBe('MISS');
    await api.http().delete(`/users/${user.id}`).expect(404);
  });

  it('evicts exactly the key of the user changed, whatever glob characters the names hold', async () => {
    const names = ['star*', 'quest?', 'bracket[', 'starry'];
    const users = [];
    for (const [i, name] of names.entries()) users.push(await createUser(`glob${i}@example.com`, name));
    for (const user of users) await api.http().get(`/users/${user.id}`).expect(200);
    await api.http().delete(`/users/${users[0].id}`).expect(204);
    const answers = [];
    for (const user of users) {
      const response = await api.http().get(`/users/${user.id}`);
      answers.push(`${response.status} ${response.headers['x-cache']}`);
    }
    expect(answers).toEqual(['404 MISS', '200 HIT', '200 HIT', '200 HIT']);
  });

  it('never serves a cached user response to a request that carries credentials', async () => {
    const user = await createUser('private@example.com', 'Private');
    await api.http().get(`/users/${user.id}`).expect(200);
    const withToken = await api.http().get(`/users/${user.id}`).set('Authorization', 'Bearer someone').expect(200);
    expect(withToken.headers['x-cache']).toBe('BYPASS');
    const withApiKey = await api.http().get(`/users/${user.id}`).set('X-Api-Key', 'k').expect(200);
    expect(withApiKey.headers['x-cache']).toBe('BYPASS');
  });

  it('keeps one entry per page however the query spells it (no cache busting)', async () => {
    await createUser('page-a@example.com', 'Page A');
    const loads = async () =>
      Number(
        /cache_loads_total\{namespace="users",outcome="success"\} (\d+)/.exec((await api.app.get(CacheService).metrics()).body)?.[1] ?? 0,
      );
    await api.http().get('/users?limit=7&offset=3').expect(200);
    const before = await loads();
    const answers = [];
    for (const query of ['limit=7&offset=3', 'limit=007&offset=3', 'offset=3&limit=7', 'offset=03&limit=7']) {
      answers.push((await api.http().get(`/users?${query}`).expect(200)).headers['x-cache']);
    }
    expect(answers).toEqual(['HIT', 'HIT', 'HIT', 'HIT']);
    expect(await loads()).toBe(before);
    // A bad page is refused by the handler, never cached.
    await api.http().get('/users?limit=abc').expect(400);
  });
});
