// @Cacheable and @CacheEvict on a TCP microservice: message patterns are cached like GET routes,
// and an event evicts.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import type { AddressInfo, Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Controller, type INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  type ClientProxy,
  ClientProxyFactory,
  EventPattern,
  MessagePattern,
  type MicroserviceOptions,
  Payload,
  Transport,
} from '@nestjs/microservices';
import { firstValueFrom, timeout } from 'rxjs';
import { CacheEvict, CacheModule, CacheService, Cacheable, keyPart } from '@cachekit/cache';
import { REDIS_URL, REQUEST_TIMEOUT_MS, closeApp, eventually, keyPrefixFor } from './support/harness.mjs';

interface Quote {
  sku: string;
  quantity: number;
}

@Controller()
class PricingController {
  calls = { quote: 0, item: 0, sum: 0 };

  // Default key: the pattern and the payload.
  @MessagePattern('price.quote')
  @Cacheable()
  quote(@Payload() data: Quote) {
    this.calls.quote++;
    return { sku: data.sku, total: data.quantity * 10 };
  }

  // Key function, default namespace ("rpc").
  @MessagePattern('math.sum')
  @Cacheable({ key: (data: { a: number; b: number }) => `sum:${data.a}:${data.b}` })
  sum(@Payload() data: { a: number; b: number }) {
    this.calls.sum++;
    return data.a + data.b;
  }

  // Explicit key and namespace, so that the event below can evict exactly this entry.
  @MessagePattern('item.get')
  @Cacheable({ namespace: 'items', key: (data: { id: string }) => `item:${keyPart(data.id)}` })
  item(@Payload() data: { id: string }) {
    this.calls.item++;
    return { id: data.id, version: this.calls.item };
  }

  @EventPattern('item.changed')
  @CacheEvict({ namespace: 'items', keys: (data: { id: string }) => [`item:${keyPart(data.id)}`] })
  itemChanged(@Payload() data: { id: string }) {
    return { changed: data.id };
  }

  // One key from the message data, one from the handler's result: proves both reach the function.
  @EventPattern('item.merged')
  @CacheEvict({
    namespace: 'items',
    keys: (data: { id: string; into: string }, result: { mergedInto: string }) => [
      `item:${keyPart(data.id)}`,
      `item:${keyPart(result.mergedInto)}`,
    ],
  })
  itemMerged(@Payload() data: { id: string; into: string }) {
    return { mergedInto: data.into };
  }
}

@Module({
  imports: [CacheModule.forRoot({ isGlobal: true, redis: { url: REDIS_URL }, keyPrefix: keyPrefixFor('microservice-tcp') })],
  controllers: [PricingController],
})
class AppModule {}

describe('@Cacheable / @CacheEvict on a TCP microservice', () => {
  let app: INestMicroservice;
  let client: ClientProxy;
  let controller: PricingController;
  let cache: CacheService;

  before(async () => {
    app = await NestFactory.createMicroservice<MicroserviceOptions>(AppModule, {
      transport: Transport.TCP,
      options: { host: '127.0.0.1', port: 0 },
      logger: ['error'],
      abortOnError: false,
    });
    await app.listen();
    const { port } = app.unwrap<Server>().address() as AddressInfo;
    client = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: '127.0.0.1', port } });
    await client.connect();
    controller = app.get(PricingController);
    cache = app.get(CacheService);
  });
  after(async () => {
    await client?.close();
    await closeApp(app);
  });

  const send = <T,>(pattern: string, data: unknown): Promise<T> =>
    firstValueFrom(client.send<T>(pattern, data).pipe(timeout(REQUEST_TIMEOUT_MS))).catch((error: Error) => {
      throw new Error(`send('${pattern}', ${JSON.stringify(data)}) failed: ${error.name}: ${error.message}`);
    });

  it('answers the second identical message from the cache (default key: pattern + payload)', async () => {
    const first = await send('price.quote', { sku: 'a-1', quantity: 3 });
    const second = await send('price.quote', { sku: 'a-1', quantity: 3 });
    assert.deepEqual(second, first);
    assert.equal(controller.calls.quote, 1, 'handler calls for two identical messages');
    await send('price.quote', { sku: 'a-1', quantity: 4 });
    assert.equal(controller.calls.quote, 2, 'another payload is another entry');
  });

  it('takes a key function of the message data; the default namespace is "rpc"', async () => {
    assert.equal(await send('math.sum', { a: 1, b: 2 }), 3);
    assert.equal(await send('math.sum', { a: 1, b: 2 }), 3);
    assert.equal(controller.calls.sum, 1, 'handler calls for two identical messages');
    assert.equal(await cache.namespace('rpc').get('sum:1:2'), 3, 'entry "sum:1:2" in namespace "rpc"');
  });

  it('@CacheEvict on an @EventPattern handler evicts the entry', async () => {
    await send('item.get', { id: 'x1' });
    await send('item.get', { id: 'x1' });
    assert.equal(controller.calls.item, 1, 'cached before the event');
    await firstValueFrom(client.emit('item.changed', { id: 'x1' }).pipe(timeout(REQUEST_TIMEOUT_MS)), { defaultValue: undefined });
    await eventually(
      async () => !(await cache.namespace('items').has('item:x1')),
      'entry "item:x1" still cached after the item.changed event',
    );
    const callsBefore = controller.calls.item;
    await send('item.get', { id: 'x1' });
    assert.equal(controller.calls.item, callsBefore + 1, 'the next message runs the handler again');
  });

  it('@CacheEvict on an event gets the message data and the handler result', async () => {
    const items = cache.namespace('items');
    for (const id of ['m1', 'm2']) {
      await send('item.get', { id });
      assert.equal(await items.has(`item:${id}`), true, `item:${id} cached before the event`);
    }
    await firstValueFrom(client.emit('item.merged', { id: 'm1', into: 'm2' }).pipe(timeout(REQUEST_TIMEOUT_MS)), {
      defaultValue: undefined,
    });
    await eventually(async () => !(await items.has('item:m1')), 'key from the data (item:m1) still cached after the item.merged event');
    await eventually(async () => !(await items.has('item:m2')), 'key from the result (item:m2) still cached after the item.merged event');
  });
});
