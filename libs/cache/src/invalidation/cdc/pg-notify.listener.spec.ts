import pg from 'pg';
import { Registry } from 'prom-client';
import { CacheRuntime } from '../../cache.runtime.js';
import { CacheService } from '../../cache.service.js';
import { glob } from '../../keys/key-part.js';
import { CacheCdcModule } from './cache-cdc.module.js';
import type { CacheCdcOptions } from './cache-cdc.options.js';
import { PgNotifyListener } from './pg-notify.listener.js';
import { cacheModule, createTestingModule, keyPrefix, onTeardown } from '../../../test-support/cache-factory.js';
import { TcpProxy } from '../../../test-support/tcp-proxy.js';
import { createTestDatabase } from '../../../test-support/services.js';
import { waitFor } from '../../../test-support/wait.js';

/** A table of 20 things whose trigger notifies `cache_invalidation` as the users trigger does. */
const THINGS_SQL = `
  CREATE TABLE things (id int PRIMARY KEY, name text NOT NULL);
  CREATE FUNCTION things_notify() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_notify('cache_invalidation', json_build_object('table', TG_TABLE_NAME, 'op', TG_OP,
      'id', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END, 'ts', extract(epoch FROM clock_timestamp()))::text);
    RETURN NULL;
  END $$;
  CREATE TRIGGER things_notify AFTER INSERT OR UPDATE OR DELETE ON things FOR EACH ROW EXECUTE FUNCTION things_notify();
  INSERT INTO things SELECT g, 'v1' FROM generate_series(1, 20) g;`;

/** A database of its own with the things table, and a client on it; both go after the file, once the listeners on it are closed. */
async function thingsDatabase(label: string) {
  const database = await createTestDatabase(label);
  onTeardown(database.drop);
  const sql = new pg.Client({ connectionString: database.url });
  await sql.connect();
  onTeardown(() => sql.end());
  await sql.query(THINGS_SQL);
  return { database, sql };
}

/**
 * A cache with a CDC listener of the things table on `connectionString`, and its metrics. Its keys
 * (and bus) under `keyPrefix` + `label`: one describe's evictions never reach another's entries.
 */
async function startListener(connectionString: string, label: string, options: Partial<CacheCdcOptions> = {}) {
  const moduleRef = await createTestingModule({
    imports: [
      cacheModule({ isGlobal: true, keyPrefix: `${keyPrefix}${label}:` }),
      CacheCdcModule.forRoot({
        connectionString,
        map: (change) => (change.table === 'things' ? { namespace: 'things', keys: [`thing:${change.id}`] } : undefined),
        resync: () => [{ namespace: 'things', patterns: [glob`thing:*`] }],
        reconnect: { minDelay: 50, maxDelay: 200 },
        ...options,
      }),
    ],
  });
  const runtime = moduleRef.get(CacheRuntime);
  return {
    things: moduleRef.get(CacheService).namespace('things'),
    listener: moduleRef.get(PgNotifyListener),
    close: () => moduleRef.close(),
    metric: async (name: string) => {
      const line = (await runtime.metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${name} `));
      return Number(line?.split(' ')[1] ?? NaN);
    },
  };
}

describe('PgNotifyListener (real PostgreSQL and Redis)', () => {
  let sql: pg.Client;
  let things: ReturnType<CacheService['namespace']>;
  let listener: PgNotifyListener;
  let metric: (name: string) => Promise<number>;
  let databaseUrl: string;

  beforeAll(async () => {
    const created = await thingsDatabase('cdc_listener');
    sql = created.sql;
    databaseUrl = created.database.url;
    ({ things, listener, metric } = await startListener(created.database.url, 'listener'));
    await waitFor(() => listener.up, { what: 'the listener up' });
  });

  const cacheAll = async (ids: number[]) => {
    for (const id of ids) await things.set(`thing:${id}`, 'v1');
  };

  it('evicts the key of a row changed directly in SQL', async () => {
    await cacheAll([1, 2]);
    const before = await metric('cdc_notifications_total');
    const updatedAt = Date.now();
    await sql.query(`UPDATE things SET name = 'v2' WHERE id = 1`);
    await waitFor(async () => (await things.get('thing:1')) === undefined, { what: 'the eviction of thing:1' });
    expect(await things.get('thing:2')).toBe('v1');
    expect(await metric('cdc_notifications_total')).toBe(before + 1);
    // In seconds, and no more than the time that really passed (the trigger's stamp is whole
    // seconds: up to one more); how fast CDC is, is the bench's to say.
    const lag = await metric('cdc_lag_seconds');
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(lag).toBeLessThanOrEqual((Date.now() - updatedAt) / 1000 + 1);
    expect(await metric('cdc_listener_up')).toBe(1);
  });

  it('invalidates nothing for a transaction that rolled back', async () => {
    await cacheAll([3]);
    const before = await metric('cdc_notifications_total');
    await sql.query('BEGIN');
    await sql.query(`UPDATE things SET name = 'never' WHERE id = 3`);
    await sql.query('ROLLBACK');
    await sql.query(`UPDATE things SET name = 'v2' WHERE id = 4`); // a later commit: its NOTIFY proves delivery went on
    await waitFor(async () => (await metric('cdc_notifications_total')) === before + 1, { what: 'the later notification' });
    expect(await things.get('thing:3')).toBe('v1');
  });

  it('ignores a payload that is not {table, op, id}', async () => {
    await cacheAll([5, 6]);
    const before = await metric('cdc_notifications_total');
    // Each names row 5 of things: applied as a change, any of them would evict thing:5.
    const ignored = [
      'not json',
      '{"table":"things","id":5}',
      '{"table":"things","op":"TRUNCATE","id":5}',
      '{"table":"things","op":"UPDATE","id":[5]}',
    ];
    for (const payload of ignored) await sql.query(`SELECT pg_notify('cache_invalidation', $1)`, [payload]);
    // A real change committed after them: the listener gets notifications in commit order, so once
    // this one is applied, the ones before it were handled (and would have been applied with it).
    await sql.query(`UPDATE things SET name = 'v2' WHERE id = 6`);
    await waitFor(async () => (await things.get('thing:6')) === undefined, { what: 'the eviction of thing:6' });
    expect(await things.get('thing:5')).toBe('v1');
    expect(await metric('cdc_notifications_total')).toBe(before + 1);
    expect(listener.up).toBe(true);
  });

  it('caughtUp() resolves once the changes committed before it are evicted, not when its own NOTIFY is back', async () => {
    await cacheAll([7, 8]);
    const notifications = await metric('cdc_notifications_total');
    // The eviction of the UPDATE is held at a gate until the test opens it.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const invalidate = things.invalidate.bind(things);
    things.invalidate = async (...args: Parameters<typeof invalidate>) => {
      await gate;
      return invalidate(...args);
    };
    try {
      await sql.query(`UPDATE things SET name = 'v2' WHERE id = 7`);
      let resolved = false;
      const caughtUp = listener.caughtUp().then(() => (resolved = true));
      // A change of another table, committed after the barrier's NOTIFY: once it is received, so is the barrier.
      await sql.query(`SELECT pg_notify('cache_invalidation', '{"table":"others","op":"UPDATE","id":1}')`);
      await waitFor(async () => (await metric('cdc_notifications_total')) === notifications + 2, { what: 'the later notification' });
      expect(resolved).toBe(false);
      expect(await things.get('thing:7')).toBe('v1');
      open();
      await caughtUp;
      expect(await things.get('thing:7')).toBeUndefined();
      expect(await things.get('thing:8')).toBe('v1');
    } finally {
      open();
      things.invalidate = invalidate;
    }
    // Its own NOTIFY is no change: neither counted nor applied.
    await listener.caughtUp();
    expect(await metric('cdc_notifications_total')).toBe(notifications + 2);
  });

  it('caughtUp() of two listeners on one channel: each catches up on its own NOTIFY, unseen on the CDC channel; a closed one rejects at once', async () => {
    const other = await startListener(databaseUrl, 'other');
    await waitFor(() => other.listener.up, { what: 'the second listener up' });
    // Another consumer of the CDC channel: it must see only the changes, never a barrier.
    const seen: string[] = [];
    const onNotification = (message: pg.Notification) => void seen.push(message.payload ?? '');
    sql.on('notification', onNotification);
    await sql.query('LISTEN cache_invalidation');
    try {
      const counts = async () => [await metric('cdc_notifications_total'), await other.metric('cdc_notifications_total')];
      const before = await counts();
      await Promise.all([listener.caughtUp(), other.listener.caughtUp(), listener.caughtUp()]);
      expect(await counts()).toEqual(before);
      await sql.query(`SELECT pg_notify('cache_invalidation', 'marker')`); // after the barriers, in commit order
      await waitFor(() => seen.includes('marker'), { what: 'the marker' });
      expect(seen).toEqual(['marker']);
    } finally {
      await sql.query('UNLISTEN cache_invalidation');
      sql.off('notification', onNotification);
    }
    await other.close();
    const closed = other.listener.caughtUp();
    await expect(closed).rejects.toThrow(/LISTEN connection is down/);
    await expect(closed).rejects.toMatchObject({ name: 'CacheUnavailableError', code: 'CACHE_CDC_UNAVAILABLE' });
  });

  it('after its connection is killed, reconnects and resyncs, so changes made meanwhile are not missed', async () => {
    const ids = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
    await cacheAll(ids);
    const resyncsBefore = await metric('cdc_resyncs_total');
    const { rows } = await sql.query(
      `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = 'cachekit-cdc' AND datname = current_database()`,
    );
    expect(rows).toHaveLength(1);
    for (const id of ids) await sql.query(`UPDATE things SET name = 'v3' WHERE id = $1`, [id]);
    await waitFor(() => listener.up, { what: 'the listener back up' });
    await waitFor(async () => (await metric('cdc_resyncs_total')) === resyncsBefore + 1, { what: 'the resync' });
    for (const id of ids) expect(await things.get(`thing:${id}`)).toBeUndefined();
  });
});

describe('PgNotifyListener through a network path that goes silent (issue 11 items 7 and 12)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let sql: pg.Client;
  let proxy: TcpProxy;
  let started: Awaited<ReturnType<typeof startListener>> | undefined;

  beforeAll(async () => {
    ({ database, sql } = await thingsDatabase('cdc_silent'));
    proxy = await TcpProxy.start(Number(new URL(database.url).port || 5432));
    onTeardown(() => proxy.stop());
  });

  // A test that failed while the path was frozen must not leave the listener's close waiting on it.
  afterAll(() => proxy?.thaw());

  it('issue 11 item 12: while the server accepts connections and never answers, each connect attempt ends after connectTimeout and the next one follows; once it answers, the listener is up', async () => {
    proxy.freeze();
    started = await startListener(proxy.url(database.url), 'silent', { connectTimeout: 300, heartbeat: { interval: 200, timeout: 200 } });
    await waitFor(() => proxy.accepted >= 3, { what: 'three connect attempts' });
    expect(started.listener.up).toBe(false);
    proxy.thaw();
    await waitFor(() => started!.listener.up, { what: 'the listener up' });
  });

  it('issue 11 item 7: the path goes silent: the heartbeat marks the listener down; after the thaw it reconnects and resyncs, so changes made meanwhile are not missed', async () => {
    const { things, listener, metric } = started!;
    const ids = [1, 2, 3, 4, 5];
    for (const id of ids) await things.set(`thing:${id}`, 'v1');
    const resyncs = await metric('cdc_resyncs_total');

    proxy.freeze();
    // Its NOTIFY cannot go out: the lost connection ends it, long before its own timeout.
    const barrier = listener.caughtUp('1m').then(
      () => 'resolved',
      (error: Error) => error.message,
    );
    for (const id of ids) await sql.query(`UPDATE things SET name = 'v2' WHERE id = $1`, [id]);
    await waitFor(async () => !listener.up && (await metric('cdc_listener_up')) === 0, { what: 'the listener marked down' });
    expect(await barrier).toMatch(/LISTEN connection was lost/);
    expect(await things.get('thing:1')).toBe('v1');

    proxy.thaw();
    await waitFor(async () => listener.up && (await metric('cdc_resyncs_total')) === resyncs + 1, { what: 'the reconnect and resync' });
    for (const id of ids) expect(await things.get(`thing:${id}`)).toBeUndefined();
    await listener.caughtUp();
  });
});

describe('PgNotifyListener under a flood (issue 11 item 3)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let sql: pg.Client;

  beforeAll(async () => {
    ({ database, sql } = await thingsDatabase('cdc_flood'));
  });

  it('issue 11 item 3: more notifications waiting than batch.maxQueued: the queue is dropped and a resync evicts everything instead', async () => {
    const { things, listener, metric } = await startListener(database.url, 'flood', { batch: { size: 1, maxQueued: 5 } });
    await waitFor(() => listener.up, { what: 'the listener up' });
    for (let id = 1; id <= 20; id++) await things.set(`thing:${id}`, 'v1');
    const [resyncs, notifications] = [await metric('cdc_resyncs_total'), await metric('cdc_notifications_total')];

    await sql.query(`UPDATE things SET name = 'v2'`);
    await waitFor(async () => (await metric('cdc_resyncs_total')) === resyncs + 1, { what: 'the resync' });
    expect(await metric('cdc_notifications_total')).toBe(notifications + 20);
    for (let id = 1; id <= 20; id++) expect(await things.get(`thing:${id}`)).toBeUndefined();
  });

  it('issue 11 items 3 and 7: batch and heartbeat options are checked at start-up, with the option named', () => {
    const runtime = { metrics: { registry: new Registry() } } as unknown as CacheRuntime;
    const listen = (options: Partial<CacheCdcOptions>) =>
      new PgNotifyListener(
        { connectionString: database.url, map: () => undefined, resync: () => [], ...options },
        {} as CacheService,
        runtime,
      );
    expect(() => listen({ heartbeat: { interval: 'soon' as never } })).toThrow(/heartbeat\.interval/);
    expect(() => listen({ heartbeat: { timeout: 0 } })).toThrow(/"heartbeat\.timeout" is invalid: must be above zero/);
    expect(() => listen({ connectTimeout: -1 })).toThrow(/connectTimeout/);
    expect(() => listen({ batch: { size: 0 } })).toThrow(/batch\.size/);
    expect(() => listen({ batch: { maxQueued: 1.5 } })).toThrow(/batch\.maxQueued/);
  });
});
