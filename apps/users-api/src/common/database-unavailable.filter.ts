import { type ArgumentsHost, Catch, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import type { Response } from 'express';

// PostgreSQL connection_exception (class 08), admin_shutdown, cannot_connect_now; pg pool and socket failures.
const UNAVAILABLE_CODES = /^(08\d{3}|57P01|57P03|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE)$/;
// Also the bounds app.module sets: connect timeout, pg's query_timeout, the server's statement_timeout.
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED|Query read timeout|canceling statement due to statement timeout/i;

/** A request that needed PostgreSQL while it is away answers 503 in JSON, not 500. */
@Catch()
export class DatabaseUnavailableFilter extends BaseExceptionFilter {
  private readonly logger = new Logger('DatabaseUnavailable');

  override catch(error: unknown, host: ArgumentsHost): void {
    if (error instanceof HttpException || !isDatabaseUnavailable(error) || host.getType() !== 'http') {
      super.catch(error, host);
      return;
    }
    this.logger.warn(`database unavailable: ${(error as Error).message}`);
    host
      .switchToHttp()
      .getResponse<Response>()
      .status(HttpStatus.SERVICE_UNAVAILABLE)
      .json({ statusCode: 503, error: 'Service Unavailable', message: 'the database is unavailable; try again shortly' });
  }
}

function isDatabaseUnavailable(error: unknown): boolean {
  for (let cause: unknown = error, depth = 0; cause && depth < 4; cause = (cause as { cause?: unknown }).cause, depth++) {
    const { code, message, driverError } = cause as { code?: unknown; message?: unknown; driverError?: { code?: unknown } };
    if (typeof code === 'string' && UNAVAILABLE_CODES.test(code)) return true;
    if (typeof driverError?.code === 'string' && UNAVAILABLE_CODES.test(driverError.code)) return true;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message)) return true;
  }
  return false;
}
