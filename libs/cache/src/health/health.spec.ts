import { HealthIndicatorService } from '@nestjs/terminus';
import type { CacheRuntime } from '../cache.runtime.js';
import type { PgNotifyListener } from '../invalidation/cdc/pg-notify.listener.js';
import { CacheHealthIndicator } from './cache.health.js';
import { CdcHealthIndicator } from './cdc.health.js';

// The runtime's Redis client is replaced by a stub: what is under test is how the indicator maps
// answers, failures and silence to a report (the e2e specs kill a real Redis).
const runtimeWith = (ping: () => Promise<string>, bus?: { up: boolean }, l1 = { size: 3, bytes: 300 }) =>
  ({ redis: { ping }, bus, l1Size: () => ({ entries: l1.size, bytes: l1.bytes }) }) as unknown as CacheRuntime;

describe('CacheHealthIndicator', () => {
  const health = new HealthIndicatorService();

  it('reports up, not degraded, when Redis answers PONG and the bus is up', async () => {
    const indicator = new CacheHealthIndicator(
      health,
      runtimeWith(async () => 'PONG', { up: true }),
    );
    expect(await indicator.isHealthy()).toEqual({
      cache: { status: 'up', redis: 'up', bus: 'up', l1Entries: 3, l1Bytes: 300, degraded: false },
    });
  });

  it('never reports down: a failing Redis is up with degraded: true', async () => {
    const indicator = new CacheHealthIndicator(
      health,
      runtimeWith(() => Promise.reject(new Error('Connection is closed.')), { up: false }),
    );
    expect(await indicator.isHealthy('l2')).toEqual({
      l2: { status: 'up', redis: 'down', bus: 'down', l1Entries: 3, l1Bytes: 300, degraded: true, message: expect.any(String) },
    });
  });

  it('bounds the PING: a Redis that never answers reads as down after the timeout', async () => {
    let pings = 0;
    // A PING that never answers: a report can only come from the timeout.
    const indicator = new CacheHealthIndicator(
      health,
      runtimeWith(() => (pings++, new Promise<string>(() => undefined))),
    );
    const result = await indicator.isHealthy('cache', { timeoutMs: 50 });
    expect(pings).toBe(1);
    expect(result.cache).toMatchObject({ status: 'up', redis: 'down', bus: 'off', degraded: true });
  });

  it('reports a bus that is down (Redis up) as degraded, and no bus as off', async () => {
    expect(
      (
        await new CacheHealthIndicator(
          health,
          runtimeWith(async () => 'PONG', { up: false }),
        ).isHealthy()
      ).cache,
    ).toMatchObject({
      bus: 'down',
      degraded: true,
    });
    expect(
      (
        await new CacheHealthIndicator(
          health,
          runtimeWith(async () => 'PONG'),
        ).isHealthy()
      ).cache,
    ).toMatchObject({
      bus: 'off',
      degraded: false,
    });
  });
});

describe('CdcHealthIndicator', () => {
  const health = new HealthIndicatorService();
  const noModules = {
    get: () => {
      throw new Error('not found');
    },
  } as never;

  it('reports the listener up or down (degraded), never down', () => {
    const listener = { up: true } as PgNotifyListener;
    const indicator = new CdcHealthIndicator(health, noModules, listener);
    expect(indicator.isHealthy()).toEqual({ cdc: { status: 'up', listener: 'up', degraded: false } });
    listener.up = false;
    expect(indicator.isHealthy()).toEqual({ cdc: { status: 'up', listener: 'down', degraded: true, message: expect.any(String) } });
  });

  it('finds a listener it could not inject in the whole app, and reports off without one', () => {
    const found = new CdcHealthIndicator(health, { get: () => ({ up: true }) } as never);
    found.onModuleInit();
    expect(found.isHealthy().cdc).toMatchObject({ listener: 'up' });
    const none = new CdcHealthIndicator(health, noModules);
    none.onModuleInit();
    expect(none.isHealthy().cdc).toEqual({ status: 'up', listener: 'off', degraded: false });
  });
});
