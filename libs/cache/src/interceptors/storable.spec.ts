import { whyNotStorable } from './storable.js';

describe('whyNotStorable', () => {
  it('review: refuses a Fastify reply holding cookies that @fastify/cookie writes only when it sends', () => {
    // What @fastify/cookie keeps on the reply: a Map under a symbol of that description.
    const reply = {
      statusCode: 200,
      getHeader: () => undefined,
      [Symbol('fastify.reply.setCookies')]: new Map([['csrf', { value: 't1' }]]),
    };
    expect(whyNotStorable(reply, { token: 't1' }, false, [])).toMatchObject({ reason: 'it sets a cookie' });
    const clean = { statusCode: 200, getHeader: () => undefined, [Symbol('fastify.reply.setCookies')]: new Map() };
    expect(whyNotStorable(clean, { ok: true }, false, [])).toBeUndefined();
  });
});
