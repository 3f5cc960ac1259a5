/** Sets a response header on Express (`setHeader`) or Fastify (`header`) alike. */
export function setResponseHeader(response: unknown, name: string, value: string): void {
  const target = response as { setHeader?: (n: string, v: string) => void; header?: (n: string, v: string) => void };
  if (typeof target.setHeader === 'function') target.setHeader(name, value);
  else target.header?.(name, value);
}

/** A response header as one string (values of a repeated header joined with `, `), Express or Fastify. */
export function getResponseHeader(response: unknown, name: string): string | undefined {
  const value = (response as { getHeader?: (n: string) => unknown }).getHeader?.(name);
  if (value === undefined || value === null) return undefined;
  return Array.isArray(value) ? value.join(', ') : String(value);
}

/** The status code set so far, Express (`statusCode`) or Fastify (`statusCode` on the reply). */
export function responseStatus(response: unknown): number | undefined {
  const status = (response as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' ? status : undefined;
}

type ExpressLikeResponse = {
  json: (body: unknown) => unknown;
  send: (body: string) => unknown;
  get: (name: string) => string | undefined;
  set: (name: string, value: string) => unknown;
  app?: { get: (setting: string) => unknown };
};
type FastifyLikeReply = {
  serializer: (serialize: (payload: unknown) => string) => unknown;
  getHeader: (name: string) => unknown;
  header: (name: string, value: string) => unknown;
};

/**
 * Makes the adapter send `storedJson()` (the stored JSON of `body`) as the JSON of `body`, instead of
 * serializing `body` again: on Fastify through the reply's serializer, on Express through this
 * response's `json`. Only for `body` itself: if an interceptor outside the cache hands the adapter
 * another value, that one is serialized as usual. Express apps with their own JSON settings
 * (`json replacer`, `json spaces`, `json escape`) keep the usual path.
 */
export function sendStoredJson(response: unknown, body: object, storedJson: () => string): void {
  const reply = response as FastifyLikeReply;
  if (typeof reply.serializer === 'function' && typeof (response as { raw?: unknown }).raw === 'object') {
    // As Fastify's own JSON path does, but for `body`; a reply serializer leaves the content type to us.
    reply.serializer((payload) => {
      if (typeof payload === 'string') return payload; // the app set a content type and sends text
      if (reply.getHeader('content-type') === undefined) reply.header('content-type', 'application/json; charset=utf-8');
      return payload === body ? storedJson() : JSON.stringify(payload);
    });
    return;
  }
  const res = response as Partial<ExpressLikeResponse>;
  const { json, send, app } = res;
  if (typeof json !== 'function' || typeof send !== 'function' || typeof res.set !== 'function' || typeof res.get !== 'function') return;
  if (app?.get('json replacer') !== undefined || app?.get('json spaces') !== undefined || app?.get('json escape')) return;
  res.json = function (this: ExpressLikeResponse, payload: unknown) {
    if (payload !== body) return json.call(this, payload);
    if (!this.get('Content-Type')) this.set('Content-Type', 'application/json; charset=utf-8');
    return send.call(this, storedJson());
  };
}
