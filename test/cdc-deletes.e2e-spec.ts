import { CacheService } from '@cachekit/cache';
import { PgNotifyListener } from '@cachekit/cache/cdc';
import pg from 'pg';
import { startUsersApi } from '../apps/users-api/test/users-app.js';
import { VISIBLE_MS, within } from './support/wait.js';

interface UserBody {
  id: number;
  email: string;
  name: string;
  version: number;
}

describe('issue 11 item 1: a deleted user never comes back from the cache (users-api, real PostgreSQL)', () => {
  let api: Awaited<ReturnType<typeof startUsersApi>>;
  let sql: pg.Client;

  beforeAll(async () => {
    api = await startUsersApi('cdc_deletes');
    sql = new pg.Client({ connectionString: api.config.databaseUrl });
    await sql.connect();
    await within(5000, () => api.app.get(PgNotifyListener).up);
  });

  afterAll(async () => {
    await sql?.end();
    await api?.stop();
  });

  /** A user renamed by a PUT: the write-through has cached it with its new version. */
  const putUser = async (label: string): Promise<UserBody> => {
    const email = `${label}@example.com`;
    const created = (await api.http().post('/users').send({ email, name: label }).expect(201)).body as UserBody;
    // The INSERT's notification sets the version floor that lets the PUT's write-through land.
    await api.cdcCaughtUp();
    const put = (
      await api
        .http()
        .put(`/users/${created.id}`)
        .send({ email, name: `${label} renamed` })
        .expect(200)
    ).body as UserBody;
    const cached = await api.http().get(`/users/${created.id}`).expect(200);
    expect(cached.headers['x-cache']).toBe('HIT');
    expect(cached.body.version).toBe(put.version);
    return put;
  };

  /** What a PUT that committed before the delete would cache if its write-through arrived late. */
  const lateWriteThrough = (user: UserBody) =>
    api.app
      .get(CacheService)
      .namespace('users')
      .writeThrough(`user:${user.id}`, async () => user, { version: (u: UserBody) => u.version });

  it('issue 11 item 1: DELETE FROM users in SQL after a PUT: GET answers 404 once CDC applies the delete, and a late write-through of the old version does not bring the user back', async () => {
    const user = await putUser('deleted-in-sql');
    await sql.query('DELETE FROM users WHERE id = $1', [user.id]);
    await within(VISIBLE_MS, async () => (await api.http().get(`/users/${user.id}`)).status === 404);

    await lateWriteThrough(user);
    await api.http().get(`/users/${user.id}`).expect(404);
  });

  it('issue 11 item 1: DELETE /users/:id raises the version floor itself: with no CDC at all, a late write-through of the deleted user does not land', async () => {
    const user = await putUser('deleted-by-api');
    // Only the API's own eviction acts here: the CDC echo of the delete must not be what saves it.
    await api.app.get(PgNotifyListener).onApplicationShutdown();
    await api.http().delete(`/users/${user.id}`).expect(204);
    await api.http().get(`/users/${user.id}`).expect(404);

    await lateWriteThrough(user);
    await api.http().get(`/users/${user.id}`).expect(404);
  });
});
