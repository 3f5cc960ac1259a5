import { startUsersApi } from './users-app.js';

describe('USERS_READ_DELAY_MS', () => {
  it('slows the database read of a user, and only that: a cache hit does not wait', async () => {
    const api = await startUsersApi('read_delay', { usersReadDelayMs: 300 });
    try {
      const user = (await api.http().post('/users').send({ email: 'slow@example.com', name: 'Slow' }).expect(201)).body;
      // The INSERT's CDC notification is applied first: arriving during the load, it would (rightly)
      // keep the loaded value out of the cache, and the second read would be a MISS too.
      await api.cdcCaughtUp();
      const started = Date.now();
      const miss = await api.http().get(`/users/${user.id}`).expect(200);
      expect(miss.headers['x-cache']).toBe('MISS');
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      // A hit never reads PostgreSQL: the delay is not paid (the header says where it came from).
      const hit = await api.http().get(`/users/${user.id}`).expect(200);
      expect(hit.headers['x-cache']).toBe('HIT');
    } finally {
      await api.stop();
    }
  });
});
