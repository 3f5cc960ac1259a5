/** Jest 30 in native ESM mode (NestJS 12 is ESM only); run through `npm test`. */
export default {
  testEnvironment: 'node',
  rootDir: '.',
  roots: ['<rootDir>/libs', '<rootDir>/apps', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts', '**/*.e2e-spec.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^@cachekit/cache$': '<rootDir>/libs/cache/src/index.ts',
    '^@cachekit/cache/health$': '<rootDir>/libs/cache/src/health/index.ts',
    '^@cachekit/cache/cdc$': '<rootDir>/libs/cache/src/invalidation/cdc/index.ts',
    '^@cachekit/cache/write-behind$': '<rootDir>/libs/cache/src/write-behind/index.ts',
    '^@cachekit/users-domain$': '<rootDir>/libs/users-domain/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  },
  testTimeout: 30000,
  maxWorkers: 2,
  // A worker that exits on its own still frees a heap of a few hundred MB (one module graph per spec
  // file under ESM), which takes longer than Jest's default 500 ms on a busy machine; a real leak
  // (a socket, a timer) keeps a worker alive for good and is still reported after this.
  workerGracefulExitTimeout: 2000,
};
