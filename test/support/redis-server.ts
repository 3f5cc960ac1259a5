// A throwaway redis-server per test: the library's test support, shared.
export * from '../../libs/cache/test-support/redis-server.js';
