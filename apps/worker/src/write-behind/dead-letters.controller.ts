import { BadRequestException, Controller, Get, Inject, Query, UseGuards } from '@nestjs/common';
import { CacheAdminGuard } from '@cachekit/cache';
import { WriteBehindQueue } from '@cachekit/cache/write-behind';
import { z } from 'zod';

const querySchema = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) });

/** The dead-letter view: write-behind jobs that exhausted their retries or could never be written (admin). */
@Controller('write-behind')
@UseGuards(CacheAdminGuard)
export class DeadLettersController {
  constructor(@Inject(WriteBehindQueue) private readonly queue: WriteBehindQueue) {}

  @Get('dead-letters')
  async deadLetters(@Query() query: Record<string, unknown>) {
    const parsed = querySchema.safeParse(query);
    if (!parsed.success) throw new BadRequestException('limit must be an integer from 1 to 1000');
    return this.queue.deadLetters(parsed.data.limit);
  }
}
