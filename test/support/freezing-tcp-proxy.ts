// A TCP path that goes silent on demand: the library's test support, shared.
export * from '../../libs/cache/test-support/freezing-tcp-proxy.js';
