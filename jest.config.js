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
};
