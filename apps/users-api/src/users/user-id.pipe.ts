import { BadRequestException, type PipeTransform } from '@nestjs/common';
import { parseUserId } from './users.schemas.js';

export class UserIdPipe implements PipeTransform<string, number> {
  transform(value: string): number {
    const id = parseUserId(value);
    if (id === undefined) throw new BadRequestException('id must be a positive integer without leading zeros');
    return id;
  }
}
