/** Sets a response header on Express (`setHeader`) or Fastify (`header`) alike. */
export function setResponseHeader(response: unknown, name: string, value: string): void {
  const target = response as { setHeader?: (n: string, v: string) => void; header?: (n: string, v: string) => void };
  if (typeof target.setHeader === 'function') target.setHeader(name, value);
  else target.header?.(name, value);
}
