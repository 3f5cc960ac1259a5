import { Injectable, Scope, type Type } from '@nestjs/common';
import { CacheError } from '../cache.errors.js';
import { CacheService } from '../cache.service.js';
import { cacheModule, createTestingModule } from '../../test-support/cache-factory.js';
import { CacheEvict } from './cache-evict.decorator.js';
import { Cacheable, type CacheableOptions } from './cacheable.decorator.js';

@Injectable()
class PriceService {
  loads = 0;
  private readonly prices = new Map([['sku-1', 10]]);

  @Cacheable({ namespace: 'prices', key: (sku: string) => `price:${sku}`, ttl: '1m' })
  async price(sku: string): Promise<number | null> {
    this.loads++;
    return this.prices.get(sku) ?? null;
  }

  @Cacheable({ namespace: 'prices' })
  async quote(sku: string, quantity: number): Promise<number> {
    this.loads++;
    return (this.prices.get(sku) ?? 0) * quantity;
  }

  @CacheEvict({ namespace: 'prices', keys: (sku: string) => [`price:${sku}`] })
  async setPrice(sku: string, price: number): Promise<void> {
    this.prices.set(sku, price);
  }
}

describe('@Cacheable and @CacheEvict on provider methods', () => {
  it('caches results by key, evicts after the mutating method, and negative-caches null', async () => {
    const moduleRef = await createTestingModule({ imports: [cacheModule()], providers: [PriceService] });
    const prices = moduleRef.get(PriceService);
    const cache = moduleRef.get(CacheService).namespace('prices');

    expect(await prices.price('sku-1')).toBe(10);
    expect(await prices.price('sku-1')).toBe(10);
    expect(prices.loads).toBe(1);
    expect(await cache.get('price:sku-1')).toBe(10);

    await prices.setPrice('sku-1', 12);
    expect(await cache.get('price:sku-1')).toBeUndefined();
    expect(await prices.price('sku-1')).toBe(12);
    expect(prices.loads).toBe(2);

    expect(await prices.price('nope')).toBeNull();
    expect(await prices.price('nope')).toBeNull();
    expect(prices.loads).toBe(3);

    // Default key: class, method and arguments.
    expect(await prices.quote('sku-1', 3)).toBe(36);
    expect(await prices.quote('sku-1', 3)).toBe(36);
    expect(await prices.quote('sku-1', 4)).toBe(48);
    expect(prices.loads).toBe(5);
    expect(await cache.get('PriceService.quote:sku-1:3')).toBe(36);
  });
});

@Injectable({ scope: Scope.REQUEST })
class PerRequestService {
  @Cacheable({ key: 'per-request' })
  async value(): Promise<number> {
    return 1;
  }
}

@Injectable()
class SyncService {
  @Cacheable({ key: 'sync' })
  value(): number {
    return 1;
  }
}

@Injectable()
class BadOptionService {
  @Cacheable({ key: 'bad', jitter: 2 })
  async value(): Promise<number> {
    return 1;
  }
}

@Injectable()
class TypoService {
  @Cacheable({ key: 'typo', tll: '1m' } as CacheableOptions)
  async value(): Promise<number> {
    return 1;
  }
}

describe('cache decorators refused at start-up', () => {
  /** The error that stopped the module's start, or `undefined` if it started. */
  const init = (provider: Type): Promise<unknown> =>
    createTestingModule({ imports: [cacheModule({ bus: false })], providers: [provider] }).then(
      () => undefined,
      (error: unknown) => error,
    );

  it.each([
    [PerRequestService, /PerRequestService\.value .*request-scoped or transient/],
    [SyncService, /@Cacheable on SyncService\.value: .*must be declared `async`.*typed Number/],
    [BadOptionService, /@Cacheable on BadOptionService\.value option "jitter" is invalid: must be a fraction from 0 to 1 \(got 2\)/],
    [TypoService, /@Cacheable on TypoService\.value: unknown option "tll"/],
  ])('%p stops the app with a message naming the method', async (provider, message) => {
    const error = await init(provider);
    expect(error).toBeInstanceOf(CacheError);
    expect((error as Error).message).toMatch(message);
  });
});
