import { registerCacheConformance } from './conformance/cache-conformance.js';
import { REDIS_URL } from './support/services.js';

registerCacheConformance('a single Redis', () => ({ url: REDIS_URL }));
