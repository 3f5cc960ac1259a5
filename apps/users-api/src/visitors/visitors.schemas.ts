import { z } from 'zod';
import { redisName } from '../common/redis-names.js';

export const pageParamsSchema = z.object({ page: redisName });
export type PageParams = z.output<typeof pageParamsSchema>;

export const recordVisitSchema = z.strictObject({
  visitorId: z.string().min(1).max(128),
});
export type RecordVisitInput = z.output<typeof recordVisitSchema>;

/** `z.iso.date()` checks the calendar too: 2026-02-30 is refused, 2028-02-29 accepted. */
export const visitorsQuerySchema = z.strictObject({
  date: z.iso.date().optional(),
});
export type VisitorsQuery = z.output<typeof visitorsQuerySchema>;
