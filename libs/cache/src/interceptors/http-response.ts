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
