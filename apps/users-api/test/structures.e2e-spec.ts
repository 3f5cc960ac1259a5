import { escapeGlob } from '@cachekit/cache';
import { startRedisServer } from '../../../test/support/redis-server.js';
import { startUsersApi } from './users-app.js';

describe('users-api Redis structures: /leaderboards and /pages (real Redis)', () => {
  let api: Awaited<ReturnType<typeof startUsersApi>>;

  beforeAll(async () => {
    api = await startUsersApi('structures_e2e');
  });

  afterAll(async () => {
    await api?.stop();
  });

  const score = (board: string, member: unknown, value: unknown) =>
    api.http().post(`/leaderboards/${board}/scores`).send({ member, score: value });
  const today = () => new Date().toISOString().slice(0, 10);

  describe('leaderboards', () => {
    it('answers each score with its rank and lists the best first', async () => {
      expect((await score('game-1', 'ann', 10).expect(201)).body).toEqual({ member: 'ann', score: 10, rank: 1 });
      expect((await score('game-1', 'bob', 25.5).expect(201)).body).toEqual({ member: 'bob', score: 25.5, rank: 1 });
      expect((await score('game-1', 'cid', -3).expect(201)).body).toEqual({ member: 'cid', score: -3, rank: 3 });
      expect((await score('game-1', 'dan', 10.25).expect(201)).body).toEqual({ member: 'dan', score: 10.25, rank: 2 });

      const top = await api.http().get('/leaderboards/game-1/top').expect(200);
      expect(top.body).toEqual([
        { member: 'bob', score: 25.5, rank: 1 },
        { member: 'dan', score: 10.25, rank: 2 },
        { member: 'ann', score: 10, rank: 3 },
        { member: 'cid', score: -3, rank: 4 },
      ]);
      expect((await api.http().get('/leaderboards/game-1/top?limit=2').expect(200)).body.map((e: { member: string }) => e.member)).toEqual([
        'bob',
        'dan',
      ]);
      expect((await api.http().get('/leaderboards/game-1/members/ann').expect(200)).body).toEqual({ member: 'ann', score: 10, rank: 3 });
    });

    it('replaces a member score and moves its rank', async () => {
      await score('game-2', 'ann', 1).expect(201);
      await score('game-2', 'bob', 2).expect(201);
      expect((await score('game-2', 'ann', 3).expect(201)).body).toEqual({ member: 'ann', score: 3, rank: 1 });
      expect((await api.http().get('/leaderboards/game-2/members/bob').expect(200)).body).toEqual({ member: 'bob', score: 2, rank: 2 });
      expect(await api.redis.zcard(`${api.config.cacheKeyPrefix}~leaderboard:{leaderboards:game-2}`)).toBe(2);
    });

    it('keeps members with any characters as plain members', async () => {
      const member = 'a/b*c:d?[e] é';
      expect((await score('game-3', member, 7).expect(201)).body).toEqual({ member, score: 7, rank: 1 });
      const read = await api
        .http()
        .get(`/leaderboards/game-3/members/${encodeURIComponent(member)}`)
        .expect(200);
      expect(read.body).toEqual({ member, score: 7, rank: 1 });
    });

    it('answers [] for the top of an unknown board and 404 JSON for an unknown member', async () => {
      expect((await api.http().get('/leaderboards/nobody-played/top').expect(200)).body).toEqual([]);
      const unknownBoard = await api.http().get('/leaderboards/nobody-played/members/ann').expect(404);
      expect(unknownBoard.body).toMatchObject({ statusCode: 404, error: 'Not Found' });
      await score('game-4', 'ann', 1).expect(201);
      const unknownMember = await api.http().get('/leaderboards/game-4/members/zed').expect(404);
      expect(unknownMember.body).toMatchObject({ statusCode: 404, error: 'Not Found' });
    });

    it.each([
      ['a numeric string score', { member: 'ann', score: '5' }],
      ['a non-numeric score', { member: 'ann', score: 'lots' }],
      ['a null score', { member: 'ann', score: null }],
      ['a missing score', { member: 'ann' }],
      ['a missing member', { score: 5 }],
      ['an empty member', { member: '', score: 5 }],
      ['a member over 128 characters', { member: 'x'.repeat(129), score: 5 }],
      ['a numeric member', { member: 5, score: 5 }],
      ['an extra field', { member: 'ann', score: 5, rank: 1 }],
      ['an array body', [1, 2]],
    ])('refuses %s with a JSON 400 and writes nothing', async (_label, body) => {
      const response = await api.http().post('/leaderboards/bad-input/scores').send(body).expect(400);
      expect(response.body).toMatchObject({ statusCode: 400, message: 'Validation failed' });
      expect(await api.redis.exists(`${api.config.cacheKeyPrefix}~leaderboard:{leaderboards:bad-input}`)).toBe(0);
    });

    it('refuses a score that JSON numbers cannot hold finitely', async () => {
      const response = await api
        .http()
        .post('/leaderboards/bad-input/scores')
        .set('Content-Type', 'application/json')
        .send('{"member":"ann","score":1e999}');
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ statusCode: 400 });
    });

    it.each(['game*', 'a:b', 'Game', '-lead', 'x'.repeat(65), '%2A', 'a%3Ab', 'a%20b', '%5Bab%5D'])(
      'refuses the board name %p with a JSON 400 on every route',
      async (board) => {
        const write = await score(board, 'ann', 1).expect(400);
        expect(write.body).toMatchObject({ statusCode: 400 });
        expect((await api.http().get(`/leaderboards/${board}/top`).expect(400)).body).toMatchObject({ statusCode: 400 });
        expect((await api.http().get(`/leaderboards/${board}/members/ann`).expect(400)).body).toMatchObject({ statusCode: 400 });
      },
    );

    it('refuses a bad limit', async () => {
      for (const query of ['limit=0', 'limit=101', 'limit=abc', 'limit=1.5', 'offset=1']) {
        const response = await api.http().get(`/leaderboards/game-1/top?${query}`).expect(400);
        expect(response.body).toMatchObject({ statusCode: 400, message: 'Validation failed' });
      }
    });

    it('never writes a key outside its board for a refused name', async () => {
      const boardPrefix = `${api.config.cacheKeyPrefix}~leaderboard:{leaderboards:`;
      const boards: string[] = [];
      for await (const keys of api.redis.scanStream({ match: `${escapeGlob(boardPrefix)}*` }) as AsyncIterable<string[]>) {
        boards.push(...keys.map((key) => key.slice(boardPrefix.length, -1)));
      }
      boards.sort();
      expect(boards).toEqual(['game-1', 'game-2', 'game-3', 'game-4']);
    });
  });

  describe('unique visitors', () => {
    it('counts distinct visitors of today, however often they come back', async () => {
      for (const visitorId of ['v1', 'v2', 'v1', 'v3', 'v2', 'v1']) {
        const response = await api.http().post('/pages/home/visits').send({ visitorId }).expect(204);
        expect(response.text).toBe('');
      }
      expect((await api.http().get('/pages/home/visitors').expect(200)).body).toEqual({ page: 'home', date: today(), unique: 3 });
      expect((await api.http().get(`/pages/home/visitors?date=${today()}`).expect(200)).body).toEqual({
        page: 'home',
        date: today(),
        unique: 3,
      });
    });

    it('keeps pages and days apart', async () => {
      await api.http().post('/pages/about/visits').send({ visitorId: 'v1' }).expect(204);
      expect((await api.http().get('/pages/about/visitors').expect(200)).body).toEqual({ page: 'about', date: today(), unique: 1 });
      expect((await api.http().get('/pages/never-visited/visitors').expect(200)).body).toEqual({
        page: 'never-visited',
        date: today(),
        unique: 0,
      });
      const otherDay = await api.http().get('/pages/home/visitors?date=2024-02-29').expect(200);
      expect(otherDay.body).toEqual({ page: 'home', date: '2024-02-29', unique: 0 });
    });

    it.each(['2026-02-30', 'abc', '2026-13-01', '2026-1-5', '26-01-05', '2026-01-05T00:00:00Z', ''])(
      'refuses the date %p with a JSON 400',
      async (date) => {
        const response = await api
          .http()
          .get(`/pages/home/visitors?date=${encodeURIComponent(date)}`)
          .expect(400);
        expect(response.body).toMatchObject({ statusCode: 400, message: 'Validation failed' });
      },
    );

    it('refuses bad visits with a JSON 400 and counts nothing', async () => {
      const bad = [{}, { visitorId: '' }, { visitorId: 'x'.repeat(129) }, { visitorId: 7 }, { visitorId: 'v9', extra: 1 }];
      for (const body of bad) {
        const response = await api.http().post('/pages/bad-visits/visits').send(body).expect(400);
        expect(response.body).toMatchObject({ statusCode: 400 });
      }
      for (const page of ['home*', 'a:b', 'Home']) {
        await api.http().post(`/pages/${page}/visits`).send({ visitorId: 'v1' }).expect(400);
        await api.http().get(`/pages/${page}/visitors`).expect(400);
      }
      expect((await api.http().get('/pages/bad-visits/visitors').expect(200)).body.unique).toBe(0);
    });
  });

  it('answers a JSON 503 when Redis is away, not a 500', async () => {
    const redis = await startRedisServer();
    const away = await startUsersApi('structures_redis_away', { redisUrl: redis.url });
    await redis.kill();
    const write = await away.http().post('/leaderboards/game-1/scores').send({ member: 'ann', score: 1 });
    expect(write.status).toBe(503);
    expect(write.body).toMatchObject({ statusCode: 503 });
    const read = await away.http().get('/pages/home/visitors');
    expect(read.status).toBe(503);
    expect(read.body).toMatchObject({ statusCode: 503 });
    await away.stop();
  });
});
