import { CacheService } from '@cachekit/cache';
import pg from 'pg';
import { startUsersApiCluster } from '../apps/users-api/test/users-app.js';
import { VISIBLE_MS, within } from './support/wait.js';

/** Polls until `check` holds; answers how long that took. */

describe('two users-api instances: CDC from PostgreSQL and the L1 bus', () => {
  let cluster: Awaited<ReturnType<typeof startUsersApiCluster>>;
  let sql: pg.Client;
  const ids: number[] = [];

  beforeAll(async () => {
    cluster = await startUsersApiCluster('instances', 2);
    sql = new pg.Client({ connectionString: cluster.databaseUrl });
    await sql.connect();
    const [a] = cluster.instances;
    for (let i = 0; i < 12; i++) {
      ids.push(
        (
          await a
            .http()
            .post('/users')
            .send({ email: `u${i}@example.com`, name: `user ${i}` })
            .expect(201)
        ).body.id,
      );
    }
    // Both CDC listeners are up once both have seen a notification of their own.
    for (const instance of cluster.instances) {
      await within(5000, async () => /cdc_listener_up 1/.test((await instance.app.get(CacheService).metrics()).body));
    }
  });

  afterAll(async () => {
    await sql?.end();
    await cluster?.stop();
  });

  const nameOn = async (instance: (typeof cluster.instances)[number], id: number) =>
    (await instance.http().get(`/users/${id}`).expect(200)).body.name as string;

  const warmBoth = async (id: number) => {
    for (const instance of cluster.instances) {
      await nameOn(instance, id);
      expect((await instance.http().get(`/users/${id}`)).headers['x-cache']).toBe('HIT');
    }
  };

  it('an UPDATE made directly in SQL is visible on both instances', async () => {
    for (const id of ids.slice(0, 5)) {
      await warmBoth(id);
      const name = `sql ${id} ${Date.now()}`;
      await sql.query('UPDATE users SET name = $1 WHERE id = $2', [name, id]);
      for (const instance of cluster.instances) {
        await within(VISIBLE_MS, async () => (await nameOn(instance, id)) === name);
      }
    }
  });

  it('a PUT on A: B no longer serves the old value from its L1', async () => {
    const [a, b] = cluster.instances;
    const id = ids[5];
    await warmBoth(id);
    const put = await a.http().put(`/users/${id}`).send({ email: 'u5@example.com', name: 'renamed on A' }).expect(200);
    expect(put.body.name).toBe('renamed on A');
    await within(VISIBLE_MS, async () => (await nameOn(b, id)) === 'renamed on A');
  });

  it('a change made in SQL bumps the version, and a write-through of the older version arriving late does not land', async () => {
    const [a, b] = cluster.instances;
    const id = ids[11];
    await warmBoth(id);
    const before = (await a.http().get(`/users/${id}`).expect(200)).body;
    await sql.query('UPDATE users SET name = $1 WHERE id = $2', ['changed in SQL', id]);
    await within(VISIBLE_MS, async () => (await nameOn(a, id)) === 'changed in SQL' && (await nameOn(b, id)) === 'changed in SQL');
    const [{ version }] = (await sql.query('SELECT version FROM users WHERE id = $1', [id])).rows;
    expect(version).toBe(before.version + 1);
    // A write-through of the row as it was, as a PUT that committed before the SQL change would make late.
    await a.app
      .get(CacheService)
      .namespace('users')
      .writeThrough(`user:${id}`, async () => before, { version: (u: { version: number }) => u.version });
    for (const instance of cluster.instances) expect(await nameOn(instance, id)).toBe('changed in SQL');
  });

  it('LISTEN connections killed, ten updates made meanwhile: all ten read fresh after the resync', async () => {
    const ten = ids.slice(0, 10);
    for (const id of ten) await warmBoth(id);
    const resyncs = async () => {
      let total = 0;
      for (const instance of cluster.instances) {
        const line = (await instance.app.get(CacheService).metrics()).body.split('\n').find((l) => l.startsWith('cdc_resyncs_total '));
        total += Number(line?.split(' ')[1] ?? 0);
      }
      return total;
    };
    const before = await resyncs();
    const killed = await sql.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cachekit-cdc' AND datname = current_database()`,
    );
    expect(killed.rowCount).toBe(2);
    for (const id of ten) await sql.query('UPDATE users SET name = $1 WHERE id = $2', [`while down ${id}`, id]);
    await within(5000, async () => (await resyncs()) >= before + 2);
    for (const instance of cluster.instances) {
      for (const id of ten) expect(await nameOn(instance, id)).toBe(`while down ${id}`);
    }
  });
});
