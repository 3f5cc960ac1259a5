import { z } from 'zod';

const MAX_SETTINGS_BYTES = 8 * 1024;

/** Positive 32-bit integer, written without sign or leading zeros, so one user has one cache key. */
export const USER_ID_PATTERN = /^[1-9]\d{0,9}$/;
export const MAX_USER_ID = 2_147_483_647;

export function parseUserId(raw: unknown): number | undefined {
  if (typeof raw !== 'string' || !USER_ID_PATTERN.test(raw)) return undefined;
  const id = Number(raw);
  return id <= MAX_USER_ID ? id : undefined;
}

const settings = z
  .record(z.string().min(1).max(100), z.json())
  .refine((value) => JSON.stringify(value).length <= MAX_SETTINGS_BYTES, `settings must be at most ${MAX_SETTINGS_BYTES} bytes of JSON`);

export const createUserSchema = z.strictObject({
  email: z.string().trim().toLowerCase().pipe(z.email().max(254)),
  name: z.string().trim().min(1).max(200),
  settings: settings.default({}),
});
export type CreateUserInput = z.output<typeof createUserSchema>;

/** PUT replaces email and name; settings change only through PATCH /users/:id/settings (write-behind). */
export const replaceUserSchema = z.strictObject({
  email: createUserSchema.shape.email,
  name: createUserSchema.shape.name,
});
export type ReplaceUserInput = z.output<typeof replaceUserSchema>;

/** The body of PATCH /users/:id/settings: the user's new settings, whole. */
export const settingsSchema = settings;
export type SettingsInput = z.output<typeof settingsSchema>;

export const listUsersSchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});
export type ListUsersQuery = z.output<typeof listUsersSchema>;

/** The fields of a user that GET /users/:id/fields/:field serves. */
export const USER_FIELDS = ['id', 'email', 'name', 'settings', 'version', 'createdAt', 'updatedAt'] as const;
export const userFieldSchema = z.enum(USER_FIELDS);
export type UserField = z.output<typeof userFieldSchema>;
