import { z } from 'zod';
import { redisName } from '../common/redis-names.js';

const member = z.string().min(1).max(128);

export const boardParamsSchema = z.object({ board: redisName });
export type BoardParams = z.output<typeof boardParamsSchema>;

export const memberParamsSchema = z.object({ board: redisName, member });
export type MemberParams = z.output<typeof memberParamsSchema>;

/** `score` is a JSON number (no numeric strings); zod 4 numbers are always finite. */
export const addScoreSchema = z.strictObject({
  member,
  score: z.number(),
});
export type AddScoreInput = z.output<typeof addScoreSchema>;

export const topQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(10),
});
export type TopQuery = z.output<typeof topQuerySchema>;
