// Bad options stop the app at start-up with a message that says what is wrong, instead of
// surfacing at the first request (or never).
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CacheModule, Cacheable } from '@cachekit/cache';
import { REDIS_URL, keyPrefixFor, startupError } from './support/harness.mjs';

const prefix = keyPrefixFor('startup-validation');
// abortOnError: false, or Nest would process.exit() on the start-up error.
const quiet = { logger: false as const, abortOnError: false };

// Options read from a file or built elsewhere: TypeScript's excess-property check does not see
// the typo, so only the module's own validation can.
const optionsWithTypo = { redis: { url: REDIS_URL }, keyPrefix: prefix, defaultTTL: '1m' };

@Module({ imports: [CacheModule.forRoot(optionsWithTypo)] })
class TypoModule {}

@Controller('reports')
class ReportsController {
  @Get()
  @Cacheable({ jitter: 2 })
  listReports() {
    return [];
  }
}

@Module({
  imports: [CacheModule.forRoot({ isGlobal: true, redis: { url: REDIS_URL }, keyPrefix: prefix })],
  controllers: [ReportsController],
})
class BadRouteModule {}

describe('start-up validation', () => {
  it('an unknown module option (defaultTTL) stops the start-up, naming the key', async () => {
    const error = await startupError(() => NestFactory.create(TypoModule, quiet), 'the unknown option "defaultTTL" should have stopped it');
    assert.match(error.message, /defaultTTL/, `the error names the unknown key; got: ${error.message}`);
  });

  it('@Cacheable({ jitter: 2 }) stops the start-up, naming controller, method and option', async () => {
    const error = await startupError(() => NestFactory.create(BadRouteModule, quiet), '@Cacheable({ jitter: 2 }) should have stopped it');
    for (const name of ['ReportsController', 'listReports', 'jitter']) {
      assert.ok(error.message.includes(name), `the error names ${name}; got: ${error.message}`);
    }
  });
});
