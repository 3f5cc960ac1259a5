import { startUsersApi } from './users-app.js';

describe('USERS_READ_DELAY_MS', () => {
  it('slows the database read of a user, and only that: a cache hit does not wait', async () => {
    const api = await startUsersApi('read_delay', { usersReadDelayMs: 300 });
    try {
      const user = (await api.http().post('/users').send({ email: 'slow@example.com', name: 'Slow' }).expect(201)).body;
      let started = Date.now();
      const miss = await api.http().get(`/users/${user.id}`).expect(200);
      expect(miss.headers['x-cache']).toBe('MISS');
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      started = Date.now();
      const hit = await api.http().get(`/users/${user.id}`).expect(200);
      expect(hit.headers['x-cache']).toBe('HIT');
      expect(Date.now() - started).toBeLessThan(300);
    } finally {
      await api.stop();
    }
  });
});
