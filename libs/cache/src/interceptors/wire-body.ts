import type { ExecutionContext } from '@nestjs/common';
import type { Reflector } from '@nestjs/core';

/** `@SerializeOptions()` metadata, as `ClassSerializerInterceptor` reads it. */
const CLASS_SERIALIZER_OPTIONS = 'class_serializer:options';

type InstanceToPlain = (value: unknown, options?: Record<string, unknown>) => unknown;
let instanceToPlain: Promise<InstanceToPlain | undefined> | undefined;

/**
 * What goes on the wire for a handler's result, as stored and as passed on: class instances
 * become plain objects through class-transformer's `instanceToPlain` with the route's
 * `@SerializeOptions()` (what `ClassSerializerInterceptor` would send), so that `@Exclude()`d
 * fields are gone from a hit as from the miss. Without class-transformer, values go as they are
 * (JSON, as Nest would send them).
 */
export async function toWireBody(result: unknown, reflector: Reflector, context: ExecutionContext): Promise<unknown> {
  if (!holdsClassInstance(result)) return result;
  const transform = await (instanceToPlain ??= loadInstanceToPlain());
  if (!transform) return result;
  const options = reflector.getAllAndOverride<Record<string, unknown> | undefined>(CLASS_SERIALIZER_OPTIONS, [
    context.getHandler(),
    context.getClass(),
  ]);
  return transform(result, options);
}

async function loadInstanceToPlain(): Promise<InstanceToPlain | undefined> {
  try {
    const module = (await import('class-transformer' as string)) as { instanceToPlain?: InstanceToPlain; classToPlain?: InstanceToPlain };
    return module.instanceToPlain ?? module.classToPlain;
  } catch {
    return undefined; // not installed: no class-transformer metadata to honour either
  }
}

function holdsClassInstance(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(holdsClassInstance);
  if (typeof value !== 'object' || value === null || value instanceof Date) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype !== Object.prototype && prototype !== null;
}
