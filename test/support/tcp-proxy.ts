// The library's test support, shared: a TCP proxy that can block, stall or freeze a path.
export * from '../../libs/cache/test-support/tcp-proxy.js';
