// The services the e2e specs and benches talk to: the library's test support, shared.
export * from '../../libs/cache/test-support/services.js';
